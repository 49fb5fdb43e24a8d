"""SSH servers measured with the real OpenSSH client, on 127.0.0.1, in one run.

Contestants (each its own process, so its CPU time is its own): ``ptycore serve
--adapter anyio`` on asyncio and on trio, ``ptycore serve --adapter twisted``
(Twisted Conch's transport with ptycore's sessions), and an AsyncSSH server that
runs commands the way the others do (through ``/bin/sh -c``). OpenSSH's ``sshd``
joins when ``--sshd PATH`` is given. Figures:

- bulk MB/s per cipher and direction (``cat > /dev/null`` up, ``head -c`` down),
  with the server's own CPU seconds per GiB (the ``ssh`` client saturates a core);
- connect, authenticate, ``exec true``, close: median and worst latency, and how
  many runs took 40 ms or more (the delayed-ACK stall);
- connections per second with 4 clients in parallel;
- resident memory added per idle PTY session.

Run: ``python3 benchmarks/bench_servers.py`` (about a minute; ``--size``,
``--runs``, ``--sessions`` to change the work).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WAIT = 60.0
CIPHERS = ("aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com")
TICKS = os.sysconf("SC_CLK_TCK")

ASYNCSSH_SERVER = """
import asyncio, subprocess, sys
import asyncssh

async def handle(process):
    if process.command is None:
        process.exit(0)
        return
    child = await asyncio.create_subprocess_shell(
        process.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    await process.redirect(stdin=child.stdin, stdout=child.stdout, stderr=child.stderr)
    process.exit(await child.wait())

async def main(host_key, authorized_keys):
    server = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[host_key], authorized_client_keys=authorized_keys,
        process_factory=handle, encoding=None, line_editor=False)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    lines: list[str] = field(default_factory=list)

    def cpu(self) -> float:
        """The server process's own user plus system CPU seconds so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@dataclass(frozen=True)
class Keys:
    client: Path
    host: Path
    authorized: Path


def make_keys(directory: Path) -> Keys:
    for name in ("client", "host"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)],
            check=True,
        )
    authorized = directory / "authorized_keys"
    shutil.copy(directory / "client.pub", authorized)
    return Keys(client=directory / "client", host=directory / "host", authorized=authorized)


def commands(keys: Keys, directory: Path, sshd: str | None) -> dict[str, list[str]]:
    serve = [sys.executable, "-m", "ptycore_cli", "serve", "--port", "0", "--app", "shell"]
    creds = ["--host-key", str(keys.host), "--authorized-keys", str(keys.authorized)]
    script = directory / "asyncssh_server.py"
    script.write_text(ASYNCSSH_SERVER)
    found = {
        "ptycore-anyio-asyncio": [*serve, *creds, "--adapter", "anyio", "--backend", "asyncio"],
        "ptycore-anyio-trio": [*serve, *creds, "--adapter", "anyio", "--backend", "trio"],
        "ptycore-twisted": [*serve, *creds, "--adapter", "twisted"],
        "asyncssh": [sys.executable, str(script), str(keys.host), str(keys.authorized)],
    }
    if sshd:
        config = directory / "sshd_config"
        config.write_text(
            f"Port 0\nListenAddress 127.0.0.1\nHostKey {keys.host}\n"
            f"AuthorizedKeysFile {keys.authorized}\nStrictModes no\nUsePAM no\n"
        )
        found["sshd"] = [sshd, "-D", "-e", "-f", str(config)]
    return found


@contextmanager
def running(name: str, command: list[str], directory: Path) -> Iterator[Server]:
    env = dict(os.environ, SHELL="/bin/sh", XDG_STATE_HOME=str(directory / "state"))
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=env, cwd=directory,
    )  # fmt: skip
    assert process.stderr is not None
    stream = process.stderr
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(raw.decode(errors="replace") for raw in stream), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + WAIT
    port = None
    while port is None:
        for line in list(lines):
            match = re.search(r"listening on 127\.0\.0\.1[: ]+(?:port )?(\d+)", line)
            if match:
                port = int(match.group(1))
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start:\n{''.join(lines)}")
        time.sleep(0.02)
    try:
        yield Server(name=name, process=process, port=port, lines=lines)
    finally:
        process.terminate()
        process.wait(timeout=WAIT)
        reader.join(timeout=WAIT)
        stream.close()


def ssh(server: Server, keys: Keys, *options: str) -> list[str]:
    return [
        "ssh", "-F", "/dev/null", "-p", str(server.port), "-i", str(keys.client),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=20", *options,
    ]  # fmt: skip


def bulk(server: Server, keys: Keys, cipher: str, size: int, zeros: Path) -> tuple[float, ...]:
    """(MB/s up, CPU s/GiB up, MB/s down, CPU s/GiB down)."""
    figures: list[float] = []
    base = ssh(server, keys, "-c", cipher, "127.0.0.1")
    for command, stdin in (("cat > /dev/null", zeros), (f"head -c {size} /dev/zero", None)):
        cpu, start = server.cpu(), time.perf_counter()
        with open(stdin or os.devnull, "rb") as source:
            done = subprocess.run(  # no timeout=, as in latency()
                [*base, command], stdin=source, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        if done.returncode != 0:  # the server does not offer this cipher
            return (math.nan,) * 4
        elapsed, used = time.perf_counter() - start, server.cpu() - cpu
        figures += [size / elapsed / 1e6, used * (1 << 30) / size]
    return tuple(figures)


def latency(server: Server, keys: Keys, runs: int) -> tuple[float, float, int]:
    """(median ms, worst ms, runs >= 40 ms) of connect-authenticate-exec true-close."""
    command = [*ssh(server, keys, "127.0.0.1"), "true"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        # No timeout=: with one, Popen.wait polls with sleeps growing to 50 ms and every
        # run looks about 15 ms slower. ssh's ConnectTimeout and ServerAliveInterval
        # bound the run instead.
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times), sum(1 for t in times if t >= 40)


def rate(server: Server, keys: Keys, per_worker: int) -> float:
    """Connections per second with 4 clients running ``ssh host true`` in a loop."""
    command = [*ssh(server, keys, "127.0.0.1"), "true"]

    def worker(_: int) -> None:
        for _ in range(per_worker):
            subprocess.run(command, check=True, stdin=subprocess.DEVNULL)  # as in latency()

    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    return 4 * per_worker / (time.perf_counter() - start)


def idle_memory(server: Server, keys: Keys, sessions: int) -> float:
    """KiB of server RSS per idle PTY session (``ssh -tt host 'echo ready; sleep'``)."""
    before = server.rss_kib()
    clients = []
    try:
        for _ in range(sessions):
            client = subprocess.Popen(
                [*ssh(server, keys, "-tt", "127.0.0.1"), "echo ready; sleep 600"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            assert client.stdout is not None
            client.stdout.readline()
            clients.append(client)
        time.sleep(0.5)  # let allocations settle; a measurement, not a test
        return (server.rss_kib() - before) / sessions
    finally:
        for client in clients:
            client.kill()
            client.wait(timeout=WAIT)


def ratio(mine: float, theirs: float, higher_is_better: bool) -> str:
    if theirs == 0 or mine == 0 or math.isnan(theirs) or math.isnan(mine):
        return "-"
    return f"{(mine / theirs) if higher_is_better else (theirs / mine):.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="MiB per bulk transfer (64)")
    parser.add_argument("--runs", type=int, default=20, help="latency runs (20)")
    parser.add_argument("--per-worker", type=int, default=10, help="connections per client (10)")
    parser.add_argument("--sessions", type=int, default=20, help="idle PTY sessions (20)")
    parser.add_argument("--sshd", help="path of OpenSSH's sshd, to include it")
    parser.add_argument("--only", action="append", help="run only these contestants")
    args = parser.parse_args()
    size = args.size << 20
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        keys = make_keys(directory)
        zeros = directory / "zeros"
        with open(zeros, "wb") as file:
            file.truncate(size)
        for name, command in commands(keys, directory, args.sshd).items():
            if args.only and name not in args.only:
                continue
            with running(name, command, directory) as server:
                row: dict[str, float] = {}
                for cipher in CIPHERS:
                    short = cipher.split("@")[0]
                    up, up_cpu, down, down_cpu = bulk(server, keys, cipher, size, zeros)
                    row |= {
                        f"{short} up MB/s": up,
                        f"{short} up CPU s/GiB": up_cpu,
                        f"{short} down MB/s": down,
                        f"{short} down CPU s/GiB": down_cpu,
                    }
                median, worst, stalls = latency(server, keys, args.runs)
                row |= {"exec true median ms": median, "exec true worst ms": worst}
                row["runs >= 40 ms"] = stalls
                row["conn/s (4 clients)"] = rate(server, keys, args.per_worker)
                row["idle PTY KiB"] = idle_memory(server, keys, args.sessions)
                results[name] = row
            print(f"{name}: done", file=sys.stderr, flush=True)
    report(results)


def report(results: dict[str, dict[str, float]]) -> None:
    names = list(results)
    metrics = list(next(iter(results.values())))
    peers = [n for n in names if not n.startswith("ptycore-anyio")]
    print("| figure | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for metric in metrics:
        cells = [f"{results[n][metric]:.1f}" for n in names]
        print(f"| {metric} | " + " | ".join(cells) + " |")
    print()
    print("ptycore-anyio's ratio to each peer (above 1 is better for ptycore):")
    for mine in (n for n in names if n.startswith("ptycore-anyio")):
        for peer in peers:
            parts = []
            for metric in metrics:
                better_high = "MB/s" in metric or "conn/s" in metric
                parts.append(
                    f"{metric}: {ratio(results[mine][metric], results[peer][metric], better_high)}"
                )
            print(f"- {mine} vs {peer}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
