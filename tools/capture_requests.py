"""Capture the channel requests real SSH clients send, as test fixtures.

A small Twisted Conch server on 127.0.0.1 (random port, host key made at run time)
records every ``SSH_MSG_CHANNEL_REQUEST`` on each session channel in order: type,
want_reply and the payload bytes exactly as they arrived (read from the raw packet,
before Conch parses anything). It accepts any key or password and answers every
request with success, so each client goes on to its next step. Real clients then
run scenarios against it: the OpenSSH ``ssh`` binary inside tmux, Paramiko and
AsyncSSH. Each session becomes ``tests/fixtures/clients/<client>-<scenario>.json``.

Usage::

    python3 tools/capture_requests.py               # every scenario
    python3 tools/capture_requests.py --list        # scenario names
    python3 tools/capture_requests.py openssh-shell-xterm-256color asyncssh-shell

Only 127.0.0.1 is used; client keys, host key, agent and tmux socket live in a
temporary directory that is removed at the end.
"""

# Twisted Conch's methods are unannotated; everything of ours is strictly typed.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import shlex
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import asyncssh
import paramiko
from asyncssh import SSHClientConnection
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.avatar import ConchUser
from twisted.conch.error import ConchError, ValidPublicKey
from twisted.conch.ssh import keys
from twisted.conch.ssh.channel import SSHChannel
from twisted.conch.ssh.connection import OPEN_UNKNOWN_CHANNEL_TYPE, SSHConnection
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.userauth import SSHUserAuthServer
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer, threads
from twisted.internet import reactor as _reactor
from zope.interface import implementer  # type: ignore[import-untyped]

REACTOR: Any = _reactor
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "clients"
WAIT = 20.0
"""Deadline in seconds for any one condition (a request arriving, a session ending)."""

PROGRAMS = frozenset({b"shell", b"exec", b"subsystem"})


# --------------------------------------------------------------------------- records


@dataclass
class ConnectionRecord:
    """One client connection: its version banner and the global requests it sent."""

    version: str
    global_requests: list[str] = field(default_factory=list)


@dataclass
class SessionRecord:
    """One session channel: every channel request as received, in order."""

    connection: ConnectionRecord
    requests: list[tuple[str, bool, bytes]] = field(default_factory=list)
    closed: bool = False


class Recorder:
    """Sessions as the reactor thread records them; waited on by the driver thread."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.sessions: list[SessionRecord] = []

    def changed(self) -> None:
        with self.condition:
            self.condition.notify_all()

    def wait(self, predicate: Callable[[], bool], what: str) -> None:
        with self.condition:
            if not self.condition.wait_for(predicate, timeout=WAIT):
                raise TimeoutError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------- server


def _string(data: bytes, offset: int) -> tuple[bytes, int]:
    """RFC 4251 section 5 ``string`` at ``offset``; returns it and the next offset."""
    (length,) = struct.unpack_from(">I", data, offset)
    end = offset + 4 + length
    if end > len(data):
        raise ValueError("string runs past the end of the packet")
    return data[offset + 4 : end], end


class CaptureConnection(SSHConnection):
    """Conch's connection service, recording requests from the raw packets."""

    transport: Any
    record: ConnectionRecord

    def serviceStarted(self) -> None:
        super().serviceStarted()
        version = self.transport.otherVersionString.decode("ascii", "backslashreplace")
        self.record = ConnectionRecord(version=version)

    def ssh_GLOBAL_REQUEST(self, packet: bytes) -> None:
        # RFC 4254 4: string request name, boolean want reply, data.
        name, _ = _string(packet, 0)
        self.record.global_requests.append(name.decode("ascii", "backslashreplace"))
        self.transport.factory.recorder.changed()
        super().ssh_GLOBAL_REQUEST(packet)

    def ssh_CHANNEL_REQUEST(self, packet: bytes) -> Any:
        # RFC 4254 5.4: uint32 recipient channel, string request type,
        # boolean want reply, type-specific data (kept as raw bytes).
        (local,) = struct.unpack_from(">I", packet, 0)
        request_type, offset = _string(packet, 4)
        want_reply = packet[offset] != 0
        channel = self.channels.get(local)
        if isinstance(channel, CaptureChannel):
            channel.record.requests.append(
                (request_type.decode("ascii", "backslashreplace"), want_reply,
                 bytes(packet[offset + 1 :]))
            )  # fmt: skip
            self.transport.factory.recorder.changed()
        return super().ssh_CHANNEL_REQUEST(packet)


class CaptureChannel(SSHChannel):
    """A session channel that says yes to everything and ends when told to.

    ``shell`` echoes input until ``q`` or EOF; ``exec`` and ``subsystem`` print a line
    and end at once. Ending sends exit-status 0, EOF and CLOSE, as sshd does when the
    program exits.
    """

    name = b"session"
    conn: Any

    def __init__(self, recorder: Recorder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorder = recorder
        self.interactive = False
        self.finished = False
        self.record: SessionRecord

    def channelOpen(self, specificData: bytes) -> None:
        self.record = SessionRecord(connection=self.conn.record)
        with self.recorder.condition:
            self.recorder.sessions.append(self.record)
            self.recorder.condition.notify_all()

    def requestReceived(self, requestType: bytes, data: bytes) -> bool:
        # Deliberately no Conch parsing: the connection already kept the raw bytes.
        if requestType in PROGRAMS:
            self.interactive = requestType == b"shell"
            # Start after Conch has sent CHANNEL_SUCCESS for this request.
            REACTOR.callLater(0, self.start, requestType, data)
        return True

    def start(self, request_type: bytes, data: bytes) -> None:
        if self.interactive:
            self.write(b"capture server: session open, type q to end\r\n")
        else:
            what = request_type + b" " + (_string(data, 0)[0] if data else b"")
            self.write(b"capture server: " + what + b"\r\n")
            self.finish()

    def dataReceived(self, data: bytes) -> None:
        if not self.interactive:
            return
        self.write(data)
        if b"q" in data:
            self.finish()

    def eofReceived(self) -> None:
        self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.conn.sendRequest(self, b"exit-status", struct.pack(">I", 0))
        self.conn.sendEOF(self)
        self.loseConnection()

    def closed(self) -> None:
        self.record.closed = True
        self.recorder.changed()


class CaptureUser(ConchUser):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def lookupChannel(
        self, channelType: bytes, windowSize: int, maxPacket: int, data: bytes
    ) -> CaptureChannel:
        if channelType != b"session":
            raise ConchError("unknown channel", OPEN_UNKNOWN_CHANNEL_TYPE)
        return CaptureChannel(
            self.recorder, remoteWindow=windowSize, remoteMaxPacket=maxPacket, data=data,
            avatar=self,
        )  # fmt: skip


@implementer(IRealm)
class CaptureRealm:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def requestAvatar(
        self, avatarId: bytes, mind: object, *interfaces: Any
    ) -> tuple[Any, CaptureUser, Callable[[], None]]:
        user = CaptureUser(self.recorder)
        return interfaces[0], user, lambda: None


@implementer(ICredentialsChecker)
class AnyoneChecker:
    """Accepts any password, and any public key whose signature verifies."""

    credentialInterfaces = (ISSHPrivateKey, IUsernamePassword)

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[bytes]:
        if IUsernamePassword.providedBy(credentials):
            return defer.succeed(credentials.username)
        if credentials.signature is None:
            return defer.fail(ValidPublicKey())  # RFC 4252 7: the key is acceptable
        key = keys.Key.fromString(credentials.blob)
        if key.verify(credentials.signature, credentials.sigData):
            return defer.succeed(credentials.username)
        return defer.fail(UnauthorizedLogin("bad signature"))


class CaptureFactory(SSHFactory):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.services = {b"ssh-userauth": SSHUserAuthServer, b"ssh-connection": CaptureConnection}
        host_key = keys.Key(ed25519.Ed25519PrivateKey.generate())
        self.privateKeys = {host_key.sshType(): host_key}
        self.publicKeys = {host_key.sshType(): host_key.public()}
        portal = Portal(cast(IRealm, CaptureRealm(recorder)))
        portal.registerChecker(cast(ICredentialsChecker, AnyoneChecker()))
        self.portal = portal


@dataclass
class Server:
    recorder: Recorder
    port: int
    fingerprint: str
    """The host key's ``SHA256:...`` fingerprint, for clients that must be told it."""


@contextmanager
def running_server() -> Iterator[Server]:
    """Run the reactor in a thread with the capture server listening on 127.0.0.1."""
    recorder = Recorder()
    thread = threading.Thread(
        target=REACTOR.run, kwargs={"installSignalHandlers": False}, daemon=True
    )
    thread.start()
    factory = CaptureFactory(recorder)
    listening: Any = threads.blockingCallFromThread(
        REACTOR, REACTOR.listenTCP, 0, factory, interface="127.0.0.1"
    )
    try:
        blob = factory.publicKeys[b"ssh-ed25519"].blob()
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        yield Server(
            recorder=recorder, port=listening.getHost().port, fingerprint=f"SHA256:{digest}"
        )
    finally:
        threads.blockingCallFromThread(REACTOR, listening.stopListening)
        REACTOR.callFromThread(REACTOR.stop)
        thread.join(timeout=WAIT)


# --------------------------------------------------------------------------- scenarios


@dataclass
class Context:
    """What every scenario needs: the server, keys, a tmux server and a scratch dir."""

    server: Server
    directory: Path
    key: Path
    out: Path
    tmux: Tmux

    def ssh(self, *extra: str) -> list[str]:
        """The OpenSSH client command line, free of any config file."""
        return [
            "/usr/bin/ssh", "-F", "/dev/null", "-p", str(self.server.port),
            "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-l", "capture", *extra,
        ]  # fmt: skip


class Session:
    """The session the current scenario produced, once it shows up on the server."""

    def __init__(self, recorder: Recorder, before: int) -> None:
        self.recorder = recorder
        recorder.wait(lambda: len(recorder.sessions) > before, "a session channel")
        self.record = recorder.sessions[before]

    def wait_for(self, request_type: str, count: int = 1) -> None:
        def seen() -> bool:
            return sum(r[0] == request_type for r in self.record.requests) >= count

        self.recorder.wait(seen, f"{count} {request_type!r} request(s)")

    def wait_global(self, request_type: str, count: int) -> None:
        def seen() -> bool:
            return self.record.connection.global_requests.count(request_type) >= count

        self.recorder.wait(seen, f"{count} global {request_type!r} request(s)")

    def wait_closed(self) -> None:
        self.recorder.wait(lambda: self.record.closed, "the session to close")


class Tmux:
    """A private tmux server (own socket, no user config, no status line)."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "tmux.sock"
        self.config = directory / "tmux.conf"
        self.config.write_text(
            "set -g status off\nset -g remain-on-exit on\nset -g default-shell /bin/sh\n"
        )

    def __call__(self, *args: str) -> str:
        command = ["tmux", "-S", str(self.socket), "-f", str(self.config), *args]
        done = subprocess.run(  # noqa: S603 (our own fixed argument lists)
            command, check=True, capture_output=True, text=True, timeout=WAIT
        )
        return done.stdout

    def pane(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name)

    def close(self) -> None:
        """Stop our tmux server if it is still there (it exits with its last session)."""
        if self.socket.exists():
            subprocess.run(  # noqa: S603
                ["tmux", "-S", str(self.socket), "kill-server"],  # noqa: S607
                check=False,
                capture_output=True,
                timeout=WAIT,
            )


@dataclass(frozen=True, kw_only=True)
class PaneRun:
    """A client run in a tmux pane of ``cols`` x ``rows``: ``argv`` if given, else
    OpenSSH's ``ssh`` with ``args``, the host and ``command``."""

    term: str = "xterm-256color"
    cols: int = 100
    rows: int = 30
    stty: str = ""
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()


def run_in_pane(
    context: Context,
    name: str,
    run: PaneRun,
    drive: Callable[[Session, Callable[..., str]], None],
) -> tuple[SessionRecord, str]:
    """Start the client in a fresh tmux session, let ``drive`` steer it, wait for the end."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in (("TERM", run.term), *run.env))
    argv = run.argv or (*context.ssh(*run.args), "127.0.0.1", *run.command)
    ssh = shlex.join(argv)
    shown = " ".join(
        "$PORT" if a == str(context.server.port) else
        "$FINGERPRINT" if a == context.server.fingerprint else
        shlex.quote(a)
        for a in argv
    )  # fmt: skip
    prefix = f"stty {run.stty}; " if run.stty else ""
    line = f"{prefix}exec env {env} {ssh}"
    how = (
        f"tmux {tmux_version()} new-session -d -x {run.cols} -y {run.rows} "
        f"(status off, default-shell /bin/sh), pane command: "
        f"{prefix}exec env {env} {shown}"
    ).replace(str(context.directory), "$TMP")
    before = len(context.server.recorder.sessions)
    context.tmux("new-session", "-d", "-s", name, "-x", str(run.cols), "-y", str(run.rows), line)
    try:
        session = Session(context.server.recorder, before)

        def tmux(*args: str) -> str:
            return context.tmux(*[a.replace("%%", name) for a in args])

        drive(session, tmux)
        session.wait_closed()
        wait_pane_dead(context.tmux, name)
    except Exception:
        print(context.tmux.pane(name), file=sys.stderr)
        raise
    finally:
        context.tmux("kill-session", "-t", name)
    return session.record, how


def poll(predicate: Callable[[], bool], what: str) -> None:
    """Check ``predicate`` every 50 ms until it holds; fail after ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_pane_dead(tmux: Tmux, name: str) -> None:
    """Wait until ``ssh`` in the pane has exited (remain-on-exit keeps the pane)."""
    poll(
        lambda: tmux("display-message", "-p", "-t", name, "#{pane_dead}").strip() == "1",
        f"ssh in tmux session {name} to exit",
    )


def tmux_version() -> str:
    out = subprocess.run(["tmux", "-V"], check=True, capture_output=True, text=True).stdout  # noqa: S607
    return out.strip().removeprefix("tmux ")


def interactive(session: Session, tmux: Callable[..., str]) -> None:
    """Wait for the shell request, then end the session with ``q``."""
    session.wait_for("shell")
    tmux("send-keys", "-t", "%%", "-l", "q")


def program(session: Session, tmux: Callable[..., str]) -> None:
    """Nothing to steer: the server ends exec and subsystem sessions itself."""


def fixture(
    context: Context,
    name: str,
    record: SessionRecord,
    *,
    how: str,
    scenario: str,
    expect: dict[str, Any],
) -> None:
    """Write one session as ``<name>.json``."""
    document = {
        "client": record.connection.version,
        "how": how,
        "scenario": scenario,
        "expect": expect,
        "requests": [
            {"type": t, "want_reply": w, "payload_hex": p.hex()} for t, w, p in record.requests
        ],
    }
    path = context.out / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path} ({len(record.requests)} requests)")


def capture_in_pane(
    context: Context,
    name: str,
    run: PaneRun,
    drive: Callable[[Session, Callable[..., str]], None],
    *,
    scenario: str,
    expect: dict[str, Any],
    then: str = "",
) -> None:
    """Run the client in a tmux pane and write its session as ``<name>.json``;
    ``then`` adds what ``drive`` did to the description."""
    record, how = run_in_pane(context, name, run, drive)
    fixture(context, name, record, how=how + then, scenario=scenario, expect=expect)


def pty_shell(run: PaneRun, **more: Any) -> dict[str, Any]:
    """What a shell session in ``run``'s pane should show, and ``more``."""
    return {"pty": True, "term": run.term, "cols": run.cols, "rows": run.rows,
            "program": "shell", **more}  # fmt: skip


ECHO_HELLO = {"pty": False, "program": "exec", "command": "echo hello"}
"""What ``ssh host echo hello`` without a PTY should show."""


def openssh_shell(term: str, cols: int, rows: int) -> Callable[[Context, str], None]:
    def scenario(context: Context, name: str) -> None:
        run = PaneRun(term=term, cols=cols, rows=rows)
        capture_in_pane(
            context,
            name,
            run,
            interactive,
            scenario=f"interactive shell, TERM={term}, {cols}x{rows}",
            expect=pty_shell(run),
        )

    return scenario


def openssh_stty(context: Context, name: str) -> None:
    stty = "-icanon -echo intr ^X iutf8 ixoff 9600"
    run = PaneRun(stty=stty)
    modes = {"VINTR": 0x18, "ICANON": 0, "ECHO": 0, "IUTF8": 1, "IXOFF": 1,
             "TTY_OP_ISPEED": 9600, "TTY_OP_OSPEED": 9600}  # fmt: skip
    capture_in_pane(
        context,
        name,
        run,
        interactive,
        scenario=f"interactive shell after `stty {stty}`",
        expect=pty_shell(run, modes=modes),
    )


def openssh_no_pty(context: Context, name: str) -> None:
    def drive(session: Session, tmux: Callable[..., str]) -> None:
        session.wait_for("shell")
        tmux("send-keys", "-t", "%%", "-l", "q")
        tmux("send-keys", "-t", "%%", "Enter")

    capture_in_pane(
        context,
        name,
        PaneRun(args=("-T",)),
        drive,
        scenario="shell without a pty (-T)",
        expect={"pty": False, "program": "shell"},
    )


def openssh_exec(context: Context, name: str) -> None:
    capture_in_pane(
        context,
        name,
        PaneRun(command=("echo", "hello")),
        program,
        scenario="a command (ssh host echo hello)",
        expect=ECHO_HELLO,
    )


def openssh_exec_tt(context: Context, name: str) -> None:
    run = PaneRun(cols=90, rows=25, args=("-tt",), command=("echo", "hello"))
    capture_in_pane(
        context,
        name,
        run,
        program,
        scenario="a command with a forced pty (-tt)",
        expect=pty_shell(run, program="exec", command="echo hello"),
    )


def openssh_sftp(context: Context, name: str) -> None:
    capture_in_pane(
        context,
        name,
        PaneRun(args=("-s",), command=("sftp",)),
        program,
        scenario="sftp subsystem (ssh -s host sftp)",
        expect={"pty": False, "program": "subsystem", "subsystem": "sftp"},
    )


def openssh_sendenv(context: Context, name: str) -> None:
    env = (("LANG", "en_US.UTF-8"), ("LC_FOO", "bar baz"))
    run = PaneRun(env=env, args=("-o", "SendEnv=LANG LC_FOO"))
    capture_in_pane(
        context,
        name,
        run,
        interactive,
        scenario="SendEnv LANG LC_FOO with both set",
        expect=pty_shell(run, env=dict(env)),
    )


def openssh_break(context: Context, name: str) -> None:
    def drive(session: Session, tmux: Callable[..., str]) -> None:
        session.wait_for("shell")
        tmux("send-keys", "-t", "%%", "Enter")
        tmux("send-keys", "-t", "%%", "-l", "~B")
        session.wait_for("break")
        tmux("send-keys", "-t", "%%", "-l", "q")

    run = PaneRun()
    capture_in_pane(
        context,
        name,
        run,
        drive,
        scenario="escape ~B (break)",
        expect=pty_shell(run, break_ms=1000),
        then="; then send-keys Enter, ~B, q",
    )


def openssh_resize(context: Context, name: str) -> None:
    sizes = [(120, 40), (80, 24)]

    def drive(session: Session, tmux: Callable[..., str]) -> None:
        session.wait_for("shell")
        for count, (cols, rows) in enumerate(sizes, 1):
            tmux("resize-window", "-t", "%%", "-x", str(cols), "-y", str(rows))
            session.wait_for("window-change", count)
        tmux("send-keys", "-t", "%%", "-l", "q")

    run = PaneRun()
    resizes = ", ".join(f"resize-window -x {c} -y {r}" for c, r in sizes)
    capture_in_pane(
        context,
        name,
        run,
        drive,
        scenario="tmux resizes (window-change)",
        expect=pty_shell(run, window_changes=[[c, r] for c, r in sizes]),
        then=f"; then tmux {resizes}",
    )


def openssh_agent(context: Context, name: str) -> None:
    agent_socket = context.directory / "agent.sock"
    agent = subprocess.Popen(  # noqa: S603
        ["ssh-agent", "-D", "-a", str(agent_socket)],  # noqa: S607
        stdout=subprocess.DEVNULL,
    )
    try:
        poll(agent_socket.exists, "ssh-agent's socket")
        run = PaneRun(env=(("SSH_AUTH_SOCK", str(agent_socket)),), args=("-A",))
        capture_in_pane(
            context,
            name,
            run,
            interactive,
            scenario="agent forwarding (-A) with ssh-agent running",
            expect=pty_shell(run, agent=True),
            then=" (ssh-agent -D -a $TMP/agent.sock)",
        )
    finally:
        agent.terminate()
        agent.wait(timeout=WAIT)


def openssh_setenv(context: Context, name: str) -> None:
    run = PaneRun(env=(("LANG", "C.UTF-8"),),
                  args=("-o", "SendEnv=LANG", "-o", "SetEnv=FOO=bar"))  # fmt: skip
    capture_in_pane(
        context,
        name,
        run,
        interactive,
        scenario="SendEnv LANG and SetEnv FOO=bar together (order of the env requests)",
        expect=pty_shell(run, env={"LANG": "C.UTF-8", "FOO": "bar"}),
    )


def openssh_x11(context: Context, name: str) -> None:
    # -Y (trusted) with an empty XAUTHORITY: OpenSSH warns "No xauth data; using fake
    # authentication data" and still sends x11-req (clientloop.c client_x11_get_proto),
    # so no X server is needed. The cookie is random at every capture.
    xauthority = context.directory / "xauthority"
    xauthority.touch()
    run = PaneRun(env=(("DISPLAY", ":99"), ("XAUTHORITY", str(xauthority))), args=("-Y",))
    x11 = {"single_connection": False, "auth_protocol": "MIT-MAGIC-COOKIE-1", "screen": 0}
    capture_in_pane(
        context,
        name,
        run,
        interactive,
        scenario="trusted X11 forwarding (-Y) with DISPLAY=:99 and no xauth data",
        expect=pty_shell(run, x11=x11),
        then=" ($TMP/xauthority empty)",
    )


def openssh_keepalive(context: Context, name: str) -> None:
    seen: list[str] = []  # the expected global requests: filled in by drive

    def drive(session: Session, tmux: Callable[..., str]) -> None:
        session.wait_for("shell")
        session.wait_global("keepalive@openssh.com", 2)
        seen.extend(session.record.connection.global_requests)
        tmux("send-keys", "-t", "%%", "-l", "q")

    run = PaneRun(args=("-o", "ServerAliveInterval=1"))
    capture_in_pane(
        context,
        name,
        run,
        drive,
        scenario="ServerAliveInterval=1 (keepalive is a global request, not a channel one)",
        expect=pty_shell(run, global_requests=seen),
        then="; kept open until 2 keepalives arrived",
    )


def putty_argv(context: Context, *extra: str) -> tuple[str, ...]:
    """PuTTY's ``plink`` with a .ppk copy of the client key and the host key pinned."""
    ppk = context.directory / "id_ed25519.ppk"
    if not ppk.exists():
        subprocess.run(  # noqa: S603
            ["puttygen", str(context.key), "-O", "private", "-o", str(ppk)],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=WAIT,
        )
    return (
        "/usr/bin/plink", "-ssh", "-batch", "-noagent", "-P", str(context.server.port),
        "-hostkey", context.server.fingerprint, "-i", str(ppk), "-l", "capture", *extra,
        "127.0.0.1",
    )  # fmt: skip


def putty_shell(context: Context, name: str) -> None:
    run = PaneRun(argv=putty_argv(context, "-t"))
    # PuTTY sends its configured terminal type ("xterm" by default), not $TERM.
    capture_in_pane(
        context,
        name,
        run,
        interactive,
        scenario="plink -t: interactive shell",
        expect=pty_shell(run, term="xterm"),
    )


def putty_exec(context: Context, name: str) -> None:
    run = PaneRun(argv=(*putty_argv(context), "echo", "hello"))
    capture_in_pane(
        context, name, run, program, scenario="plink host echo hello", expect=ECHO_HELLO
    )


def dropbear_argv(context: Context, *extra: str) -> tuple[str, ...]:
    """Dropbear's ``dbclient`` with a Dropbear-format copy of the client key; ``-y -y``
    skips host key checking (there is no option to pin a key)."""
    key = context.directory / "id_ed25519.dropbear"
    if not key.exists():
        subprocess.run(  # noqa: S603
            ["dropbearconvert", "openssh", "dropbear", str(context.key), str(key)],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=WAIT,
        )
    return (
        "/usr/bin/dbclient", "-y", "-y", "-p", str(context.server.port), "-i", str(key),
        "-l", "capture", *extra, "127.0.0.1",
    )  # fmt: skip


def dropbear_shell(context: Context, name: str) -> None:
    run = PaneRun(argv=dropbear_argv(context))
    capture_in_pane(
        context,
        name,
        run,
        interactive,
        scenario="dbclient: interactive shell",
        expect=pty_shell(run),
    )


def dropbear_exec(context: Context, name: str) -> None:
    run = PaneRun(argv=(*dropbear_argv(context), "echo", "hello"))
    capture_in_pane(
        context, name, run, program, scenario="dbclient host echo hello", expect=ECHO_HELLO
    )


def paramiko_connect(context: Context) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    # A host key made a moment ago by our own server on 127.0.0.1.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507
    client.connect("127.0.0.1", port=context.server.port, username="capture",
                   key_filename=str(context.key), look_for_keys=False, allow_agent=False,
                   timeout=WAIT)  # fmt: skip
    return client


def paramiko_shell(context: Context, name: str) -> None:
    before = len(context.server.recorder.sessions)
    client = paramiko_connect(context)
    try:
        channel = client.invoke_shell(term="vt220", width=132, height=43,
                                      width_pixels=1056, height_pixels=688)  # fmt: skip
        session = Session(context.server.recorder, before)
        session.wait_for("shell")
        channel.resize_pty(width=100, height=50)
        session.wait_for("window-change")
        channel.sendall(b"q")
        channel.settimeout(WAIT)
        channel.recv_exit_status()
        session.wait_closed()
    finally:
        client.close()
    how = ("client.invoke_shell(term='vt220', width=132, height=43, width_pixels=1056, "
           "height_pixels=688); channel.resize_pty(width=100, height=50); send 'q'")  # fmt: skip
    expect = {"pty": True, "term": "vt220", "cols": 132, "rows": 43, "width_px": 1056,
              "height_px": 688, "program": "shell",
              "window_changes": [[100, 50, 0, 0]]}  # fmt: skip
    fixture(
        context,
        name,
        session.record,
        how=how,
        scenario="invoke_shell then resize_pty",
        expect=expect,
    )


def paramiko_exec(context: Context, name: str) -> None:
    before = len(context.server.recorder.sessions)
    client = paramiko_connect(context)
    env = {"LANG": "C.UTF-8", "LC_FOO": "bar baz"}
    try:
        _, stdout, _ = client.exec_command("echo hello", timeout=WAIT, environment=env)
        stdout.channel.recv_exit_status()
        session = Session(context.server.recorder, before)
        session.wait_closed()
    finally:
        client.close()
    how = f"client.exec_command('echo hello', environment={env!r})"
    expect = {**ECHO_HELLO, "env": env}
    fixture(
        context,
        name,
        session.record,
        how=how,
        scenario="exec_command with an environment",
        expect=expect,
    )


def asyncssh_connect(context: Context) -> AbstractAsyncContextManager[SSHClientConnection]:
    """AsyncSSH's client with the scenario key, no agent and no known_hosts check."""
    return asyncssh.connect(
        "127.0.0.1", context.server.port, username="capture",
        client_keys=[str(context.key)], known_hosts=None, agent_path=None,
    )  # fmt: skip


def asyncssh_shell(context: Context, name: str) -> None:
    modes = {asyncssh.PTY_VINTR: 0x18, asyncssh.PTY_ECHO: 0, asyncssh.PTY_ICANON: 1,
             asyncssh.PTY_IUTF8: 1, asyncssh.PTY_OP_ISPEED: 38400,
             asyncssh.PTY_OP_OSPEED: 38400}  # fmt: skip
    env = {"LANG": "C.UTF-8", "LC_FOO": "bar"}
    before = len(context.server.recorder.sessions)

    async def drive() -> None:
        async with asyncssh_connect(context) as connection:
            process = await connection.create_process(
                term_type="xterm-256color", term_size=(100, 30, 800, 600),
                term_modes=modes, env=env,
            )  # fmt: skip
            session = await asyncio.to_thread(Session, context.server.recorder, before)
            await asyncio.to_thread(session.wait_for, "shell")
            process.change_terminal_size(120, 40, 960, 800)
            process.send_signal("INT")
            process.send_break(1000)
            await asyncio.to_thread(session.wait_for, "break")
            process.stdin.write("q")
            await asyncio.wait_for(process.wait(), WAIT)
            await asyncio.to_thread(session.wait_closed)

    asyncio.run(drive())
    record = context.server.recorder.sessions[before]
    how = (f"conn.create_process(term_type='xterm-256color', term_size=(100, 30, 800, 600), "
           f"term_modes={{VINTR: 0x18, ECHO: 0, ICANON: 1, IUTF8: 1, ISPEED/OSPEED: 38400}}, "
           f"env={env!r}); change_terminal_size(120, 40, 960, 800); send_signal('INT'); "
           f"send_break(1000); write 'q'")  # fmt: skip
    names = {"VINTR": 0x18, "ECHO": 0, "ICANON": 1, "IUTF8": 1, "TTY_OP_ISPEED": 38400,
             "TTY_OP_OSPEED": 38400}  # fmt: skip
    expect = {"pty": True, "term": "xterm-256color", "cols": 100, "rows": 30, "width_px": 800,
              "height_px": 600, "modes": names, "env": env, "program": "shell",
              "window_changes": [[120, 40, 960, 800]], "signals": ["INT"],
              "break_ms": 1000}  # fmt: skip
    fixture(
        context,
        name,
        record,
        how=how,
        scenario="create_process with modes, resize, signal, break",
        expect=expect,
    )


def asyncssh_exec(context: Context, name: str) -> None:
    env = {"LANG": "C.UTF-8"}
    before = len(context.server.recorder.sessions)

    async def drive() -> None:
        async with asyncssh_connect(context) as connection:
            await asyncio.wait_for(connection.run("echo hello", env=env), WAIT)

    asyncio.run(drive())
    session = Session(context.server.recorder, before)
    session.wait_closed()
    how = f"conn.run('echo hello', env={env!r})"
    expect = {**ECHO_HELLO, "env": env}
    fixture(
        context,
        name,
        session.record,
        how=how,
        scenario="run a command with an environment",
        expect=expect,
    )


SCENARIOS: dict[str, Callable[[Context, str], None]] = {
    "openssh-shell-xterm-256color": openssh_shell("xterm-256color", 100, 30),
    "openssh-shell-screen": openssh_shell("screen", 80, 24),
    "openssh-shell-vt100": openssh_shell("vt100", 132, 43),
    "openssh-shell-linux": openssh_shell("linux", 200, 60),
    "openssh-shell-stty": openssh_stty,
    "openssh-no-pty": openssh_no_pty,
    "openssh-exec": openssh_exec,
    "openssh-exec-tt": openssh_exec_tt,
    "openssh-subsystem-sftp": openssh_sftp,
    "openssh-sendenv": openssh_sendenv,
    "openssh-break": openssh_break,
    "openssh-resize": openssh_resize,
    "openssh-agent": openssh_agent,
    "openssh-setenv": openssh_setenv,
    "openssh-x11": openssh_x11,
    "openssh-keepalive": openssh_keepalive,
    "putty-shell": putty_shell,
    "putty-exec": putty_exec,
    "dropbear-shell": dropbear_shell,
    "dropbear-exec": dropbear_exec,
    "paramiko-shell-resize": paramiko_shell,
    "paramiko-exec-env": paramiko_exec,
    "asyncssh-shell": asyncssh_shell,
    "asyncssh-exec-env": asyncssh_exec,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenario names")
    parser.add_argument("--out", type=Path, default=FIXTURES, help="output directory")
    options = parser.parse_args(argv)
    if options.list:
        print("\n".join(SCENARIOS))
        return 0
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="capture-") as scratch:
        directory = Path(scratch)
        key = directory / "id_ed25519"
        subprocess.run(  # noqa: S603
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],  # noqa: S607
            check=True,
            timeout=WAIT,
        )
        os.environ.pop("SSH_AUTH_SOCK", None)
        tmux = Tmux(directory)
        try:
            with running_server() as server:
                context = Context(server=server, directory=directory, key=key,
                                  out=options.out, tmux=tmux)  # fmt: skip
                for name in options.scenarios or SCENARIOS:
                    SCENARIOS[name](context, name)
        finally:
            tmux.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
