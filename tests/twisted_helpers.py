"""Real peers for the Twisted adapter's tests: a `ptycore serve` subprocess, keys
made at test time, the OpenSSH client under tmux, and waits with deadlines."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

T = TypeVar("T")

WAIT = 20.0
"""Deadline for any one condition; generous for a loaded 2-core machine."""


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True, kw_only=True)
class Keys:
    """A client key pair and a host key, written into a test's temporary directory."""

    client: Path
    client_public: Path
    authorized_keys: Path
    host: Path


def make_keys(directory: Path) -> Keys:
    """Generate an Ed25519 client key (OpenSSH format) and host key at test time."""
    directory.mkdir(parents=True, exist_ok=True)

    def private(path: Path) -> ed25519.Ed25519PrivateKey:
        key = ed25519.Ed25519PrivateKey.generate()
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return key

    client = private(directory / "client_ed25519")
    public = client.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    client_public = directory / "client_ed25519.pub"
    client_public.write_bytes(public + b" test@ptycore\n")
    authorized = directory / "authorized_keys"
    authorized.write_bytes(
        b"# test keys\n" + b'no-agent-forwarding,environment="NOTE=a b" ' + public + b"\n"
    )
    host = directory / "ssh_host_ed25519_key"
    private(host)
    return Keys(
        client=directory / "client_ed25519",
        client_public=client_public,
        authorized_keys=authorized,
        host=host,
    )


@dataclass
class Server:
    """A running ``ptycore serve`` subprocess and what it logged."""

    process: subprocess.Popen[bytes]
    port: int
    keys: Keys
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return "\n".join(self.lines)

    def ssh_args(self, *extra: str) -> list[str]:
        """An OpenSSH client command line for this server, config-file free."""
        return [
            "ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.keys.client),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", *extra, "127.0.0.1",
        ]  # fmt: skip

    def idle(self) -> bool:
        """Every connection the server logged has been logged closed too, and it has
        no child process."""
        opened = sum(1 for line in self.lines if re.search(r"connection from \S+$", line))
        closed = sum(1 for line in self.lines if re.search(r"connection from \S+ closed$", line))
        return opened == closed and not self.children()

    def children(self) -> list[int]:
        """PIDs of the server's child processes."""
        found: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(pid) for pid in text)
        return found

    def fds(self) -> set[str]:
        """What the server's open file descriptors point at."""
        found = set()
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                found.add(f"{fd.name}->{os.readlink(fd)}")
            except FileNotFoundError:
                continue
        return found


TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
"""``twistd`` of the Python that runs the tests, wherever pip put its script."""


@contextmanager
def run_server(
    tmp: Path,
    app: str,
    *extra: str,
    adapter: str = "twisted",
    env: dict[str, str] | None = None,
    twistd: bool = False,
) -> Iterator[Server]:
    """Start ``ptycore serve --adapter ADAPTER`` (or, with ``twistd``, ``twistd -n
    ptycore``) on 127.0.0.1 port 0; stop it with SIGTERM afterwards."""
    keys = make_keys(tmp / "keys")
    environment = dict(os.environ)
    environment.update(XDG_STATE_HOME=str(tmp / "state"), PYTHONUNBUFFERED="1")
    environment.update(env or {})
    credentials = [
        "--host-key", str(keys.host), "--authorized-keys", str(keys.authorized_keys),
        "--app", app, *extra,
    ]  # fmt: skip
    if twistd:
        command = [
            sys.executable, "-c", TWISTD, "--nodaemon", "--pidfile=", "--logfile=-",
            "ptycore", "--listen", "tcp:0:interface=127.0.0.1", *credentials,
        ]  # fmt: skip
        banner = r"starting on (\d+)$"
    else:
        command = [
            sys.executable, "-m", "ptycore_cli", "serve", "--adapter", adapter, "--port", "0",
            *credentials,
        ]  # fmt: skip
        banner = r"listening on 127\.0\.0\.1:(\d+)"
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if twistd else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if twistd else subprocess.PIPE,
        env=environment, cwd=tmp,
    )  # fmt: skip
    lines: list[str] = []
    stream = process.stdout if twistd else process.stderr
    assert stream is not None

    def read() -> None:
        for raw in stream:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def listening() -> int | None:
        for line in lines:
            match = re.search(banner, line)
            if match:
                return int(match.group(1))
        if process.poll() is not None:
            raise AssertionError("server exited:\n" + "\n".join(lines))
        return None

    try:
        port = wait_for(listening, "the server to listen")
        yield Server(process=process, port=port, keys=keys, lines=lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=WAIT)
        reader.join(timeout=WAIT)
        stream.close()


class Tmux:
    """A private tmux server (its own socket) running one pane at a given size."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True, text=True, timeout=WAIT, check=True,
        )  # fmt: skip
        return done.stdout

    def start(self, command: Sequence[str], *, cols: int, rows: int) -> None:
        # The pane's shell prints the command's exit status; remain-on-exit keeps it.
        wrapped = ["sh", "-c", '"$@"; echo "pane-exit-status=$?"', "sh", *command]
        shell_line = " ".join(_quote(part) for part in wrapped)
        self.run(
            "-f", "/dev/null", "new-session", "-d", "-x", str(cols), "-y", str(rows), shell_line
        )
        self.run("set-option", "-g", "remain-on-exit", "on")
        self.run("set-option", "-g", "window-size", "manual")

    def screen(self) -> str:
        """The pane's text, lines joined, trailing blanks dropped."""
        return self.run("capture-pane", "-p", "-J", "-S", "-200")

    def wait_screen(self, pattern: str, what: str) -> re.Match[str]:
        return wait_for(lambda: re.search(pattern, self.screen()), what)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def resize(self, cols: int, rows: int) -> None:
        self.run("resize-window", "-x", str(cols), "-y", str(rows))

    def wait_exit(self) -> int:
        """Wait for the pane's command to end; return its exit status."""
        try:
            found = self.wait_screen(r"pane-exit-status=(\d+)", "the pane's command to exit")
        except AssertionError as error:
            raise AssertionError(f"{error}; the screen:\n{self.screen()}") from None
        return int(found.group(1))

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"],
            capture_output=True,
            timeout=WAIT,
            check=False,
        )


def _quote(part: str) -> str:
    return part if re.fullmatch(r"[\w./=:@%+-]+", part) else "'" + part.replace("'", "'\\''") + "'"


@contextmanager
def tmux_session(tmp: Path, command: Sequence[str], *, cols: int, rows: int) -> Iterator[Tmux]:
    """Run ``command`` in a detached tmux pane of ``cols`` x ``rows``."""
    if shutil.which("tmux") is None:  # .ci/run installs it; say so plainly otherwise
        raise AssertionError("tmux is required for these tests")
    tmux = Tmux(tmp / "tmux.sock")
    tmux.start(command, cols=cols, rows=rows)
    try:
        yield tmux
    finally:
        tmux.kill()


def ssh(
    server: Server, *args: str, command: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the OpenSSH client against ``server`` to the end, stdin empty, text out."""
    argv = server.ssh_args(*args)
    if command is not None:
        argv.append(command)
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL, check=False
    )


def run_in_pane(tmux: Tmux, command: str, marker: str) -> str:
    """Type ``command`` followed by an echo of ``marker`` computed by the shell (so the
    typed line itself never matches), and return the screen once it appeared."""
    left, right = marker.split("-")
    tmux.keys(f"{command}; echo {left}-$(({right}+0))", "Enter")
    tmux.wait_screen(rf"(?m)^{left}-{right}\s*$", f"output of {command!r}")
    return tmux.screen()
