"""A tiny blocking server around ServerConnection, for tests against real clients.

Each accepted socket is served in its own thread by :func:`serve_socket`, running
:class:`EchoApp` (or a subclass): ``exec`` commands ``echo TEXT``, ``exit N``, ``cat`` (echo stdin
until EOF), ``pty`` (report the PTY), ``stderr TEXT`` (to stderr, status 1),
``kill SIGNAL`` (exit-signal) and ``big N`` (send N bytes); ``shell``
echoes input until it sees ``q`` or Ctrl-D and then exits with status 3.
Every wait has a timeout, so a broken client cannot hang the suite.
"""

from __future__ import annotations

import base64
import functools
import os
import shutil
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncssh
import paramiko
import pytest

from ptycore import ProtocolError
from ptycore._endpoint import ConnectionClosed
from ptycore.auth import SimpleAuthenticator
from ptycore.connection import (
    ChannelClosed,
    ChannelDataReceived,
    ChannelEOFReceived,
    ChannelWritable,
    SessionEvent,
)
from ptycore.requests import ExecRequest, ShellRequest
from ptycore.server import ServerConfig, ServerConnection
from ptycore.session import RequestReceived
from ptycore.transport import HostKey, KeyExchangeComplete, TransportConfig

TIMEOUT = 20.0


@dataclass
class _Channel:
    mode: str = ""
    pending: bytearray = field(default_factory=bytearray)
    finishing: int | None = None


class EchoApp:
    """The application the tests log in to, driven by ServerConnection events."""

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.channels: dict[int, _Channel] = {}
        self.log: list[object] = []

    def handle(self, events: list[object]) -> None:
        for event in events:
            self.log.append(event)
            if isinstance(event, SessionEvent) and isinstance(event.event, RequestReceived):
                self._request(event.channel_id, event.event)
            elif isinstance(event, ChannelDataReceived):
                self._data(event.channel_id, event.data)
            elif isinstance(event, ChannelEOFReceived):
                channel = self.channels.setdefault(event.channel_id, _Channel())
                if channel.mode == "cat":
                    self._finish(event.channel_id, 0)
            elif isinstance(event, ChannelClosed):
                self.channels.pop(event.channel_id, None)
            elif isinstance(event, ChannelWritable):
                self._drain(event.channel_id)

    def _request(self, channel_id: int, event: RequestReceived) -> None:
        channel = self.channels.setdefault(channel_id, _Channel())
        request = event.request
        self.conn.accept_request(channel_id, event.handle)
        if isinstance(request, ShellRequest):
            channel.mode = "shell"
            self._send(channel_id, b"ptycore echo shell\r\n")
        elif isinstance(request, ExecRequest):
            self._exec(channel_id, channel, request.command)

    def _exec(self, channel_id: int, channel: _Channel, command: str) -> None:
        word, _, rest = command.partition(" ")
        if word == "echo":
            self._send(channel_id, rest.encode() + b"\n")
            self._finish(channel_id, 0)
        elif word == "exit":
            self._finish(channel_id, int(rest))
        elif word == "cat":
            channel.mode = "cat"
        elif word == "pty":
            pty = self.conn.session(channel_id).pty
            text = "no pty" if pty is None else f"{pty.term} {pty.size.cols}x{pty.size.rows}"
            self._send(channel_id, text.encode() + b"\n")
            self._finish(channel_id, 0)
        elif word == "stderr":
            self.conn.send_stderr(channel_id, rest.encode() + b"\n")
            self._finish(channel_id, 1)
        elif word == "kill":
            self.conn.send_exit_signal(channel_id, rest, message="killed by test")
            self.conn.send_eof(channel_id)
            self.conn.close_channel(channel_id)
        elif word == "big":
            data = bytes(range(256)) * (int(rest) // 256)
            self._send(channel_id, data)
            self._finish(channel_id, 0)
        else:
            self._send(channel_id, f"unknown command {command!r}\n".encode())
            self._finish(channel_id, 127)

    def _data(self, channel_id: int, data: bytes) -> None:
        channel = self.channels.setdefault(channel_id, _Channel())
        if channel.mode == "shell":
            self._send(channel_id, data)
            if b"q" in data or b"\x04" in data:
                self._send(channel_id, b"\r\nbye\r\n")
                self._finish(channel_id, 3)
        elif channel.mode == "cat":
            self._send(channel_id, data)

    def _send(self, channel_id: int, data: bytes) -> None:
        self.channels[channel_id].pending += data
        self._drain(channel_id)

    def _drain(self, channel_id: int) -> None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        n = min(len(channel.pending), self.conn.writable(channel_id))
        if n:
            self.conn.send_data(channel_id, bytes(channel.pending[:n]))
            del channel.pending[:n]
        if not channel.pending and channel.finishing is not None:
            status, channel.finishing = channel.finishing, None
            self.conn.send_exit_status(channel_id, status)
            self.conn.send_eof(channel_id)
            self.conn.close_channel(channel_id)

    def _finish(self, channel_id: int, status: int) -> None:
        self.channels[channel_id].finishing = status
        self._drain(channel_id)


def serve_socket(
    sock: socket.socket, conn: ServerConnection, app: EchoApp, errors: list[BaseException]
) -> None:
    """Run one connection until either side closes it; an exception goes to ``errors``."""
    # Without it, each of the ~130 key exchanges of a 64 MiB transfer under
    # RekeyLimit=1M waits ~40 ms on Nagle's algorithm (sshd sets it for interactive
    # sessions: packet.c ssh_packet_set_interactive).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(conn.data_to_send())
        while not conn.closed:
            # Wait for data, or until the core's next timer (login grace, keepalive).
            timer = conn.get_timer()
            wait = TIMEOUT if timer is None else min(TIMEOUT, timer - time.monotonic())
            sock.settimeout(max(wait, 0.001))
            try:
                data = sock.recv(1 << 18)
            except TimeoutError:
                if timer is None or time.monotonic() < timer:
                    raise  # nothing from the client within TIMEOUT: a hung test
                events = conn.handle_timer(time.monotonic())
            else:
                if not data:
                    break
                try:
                    events = conn.receive_data(data, now=time.monotonic())
                except ProtocolError:
                    sock.sendall(conn.data_to_send())  # the DISCONNECT
                    raise
            app.handle(list(events))
            sock.sendall(conn.data_to_send())
            if any(isinstance(e, ConnectionClosed) for e in events):
                break
    except (ConnectionResetError, BrokenPipeError):
        pass  # the client hung up without a goodbye, as clients may once done
    except BaseException as error:  # reported to the test through errors
        errors.append(error)
    finally:
        sock.close()


@dataclass
class Server:
    """What the server saw, over all its connections."""

    port: int
    host_keys: list[HostKey]
    errors: list[BaseException] = field(default_factory=list)
    log: list[object] = field(default_factory=list)

    @property
    def host_key(self) -> HostKey:
        """The first host key, the one every client is offered."""
        return self.host_keys[0]

    def key_exchanges(self) -> list[KeyExchangeComplete]:
        return [e for e in list(self.log) if isinstance(e, KeyExchangeComplete)]

    def rekeys(self) -> int:
        """Key exchanges after the first, over all connections so far."""
        return sum(not e.initial for e in self.key_exchanges())

    def check(self) -> None:
        """No server error since the last check (one test's error fails that test only)."""
        errors, self.errors[:] = list(self.errors), []
        assert errors == [], "".join(traceback.format_exception(errors[0]))


def authorized_blob(public_key_line: str) -> bytes:
    """The key blob of an ``authorized_keys`` / ``.pub`` line."""
    return base64.b64decode(public_key_line.split()[1])


@contextmanager
def accepting(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """Listen on 127.0.0.1 and run ``serve`` on every connection in a thread of its
    own until the block ends; then check that every thread has ended. Gives the port."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.1)

        def accept_loop() -> None:
            while not stop.is_set():
                try:
                    sock, _ = listener.accept()
                except TimeoutError:
                    continue
                thread = threading.Thread(target=serve, args=(sock,), daemon=True)
                thread.start()
                threads.append(thread)

        acceptor = threading.Thread(target=accept_loop, daemon=True)
        acceptor.start()
        try:
            yield listener.getsockname()[1]
        finally:
            stop.set()
            acceptor.join(TIMEOUT)
            for thread in threads:
                thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)


@contextmanager
def running_server(
    authenticator: SimpleAuthenticator,
    config: ServerConfig | None = None,
    extra_host_keys: tuple[HostKey, ...] = (),
    app: Callable[[ServerConnection], EchoApp] = EchoApp,
) -> Iterator[Server]:
    """Serve ServerConnection with a new Ed25519 host key (and ``extra_host_keys``)
    and ``app`` on every connection, as :func:`accepting` does."""
    host_keys = [HostKey.generate(), *extra_host_keys]
    errors: list[BaseException] = []
    log: list[object] = []

    def serve(sock: socket.socket) -> None:
        conn = ServerConnection(config, authenticator, host_keys, now=time.monotonic())
        served = app(conn)
        served.log = log
        serve_socket(sock, conn, served, errors)

    with accepting(serve) as port:
        yield Server(port=port, host_keys=host_keys, errors=errors, log=log)


def paramiko_connect(port: int, *, timeout: float = TIMEOUT, **options: Any) -> paramiko.SSHClient:
    """A Paramiko client logged in as alice on 127.0.0.1 with ``options`` (credentials,
    algorithms), trusting any host key, with no agent and no keys of the user's."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=port,
        username="alice",
        look_for_keys=False,
        allow_agent=False,
        timeout=timeout,
        **options,
    )
    return client


def paramiko_echo_shell(client: paramiko.SSHClient) -> None:
    """Drive :class:`EchoApp`'s shell from Paramiko with a PTY: the greeting, an
    echo, then ``q``, which ends the shell with exit status 3."""
    channel = client.invoke_shell(term="vt100", width=100, height=30)
    channel.settimeout(TIMEOUT)
    received = b""
    for expected, send in ((b"ptycore echo shell", b"abc q"), (b"bye", b"")):
        while expected not in received:
            chunk = channel.recv(1024)
            assert chunk, f"the channel closed before {expected!r}: {received!r}"
            received += chunk
        channel.sendall(send)
    assert b"abc" in received
    assert channel.recv_exit_status() == 3


async def asyncssh_resize(conn: asyncssh.SSHClientConnection) -> tuple[str, str]:
    """``stty size`` in an 80x24 PTY, then again after AsyncSSH resized it to 132x50:
    the two lines (the PTY's echo of the line typed in between is skipped)."""
    process = await conn.create_process(
        "stty size; read line; stty size", term_type="xterm", term_size=(80, 24)
    )
    first = await process.stdout.readline()
    process.change_terminal_size(132, 50)
    process.stdin.write("go\n")
    second = await process.stdout.readline()
    while second and "50" not in second:
        second = await process.stdout.readline()
    await process.wait()
    return str(first), str(second)


MLKEM_KEX = "mlkem768x25519-sha256"

MLKEM_CLIENT_VARIABLE = "PTYCORE_TEST_SSH_MLKEM"
"""Environment variable naming an OpenSSH client that offers :data:`MLKEM_KEX`;
``.ci/fetch-openssh-mlkem`` finds or fetches one and CI sets it."""


@functools.cache
def mlkem_openssh() -> str | None:
    """An OpenSSH client (9.9 or later) that offers ML-KEM, or None.

    OpenSSH 9.9 added ``mlkem768x25519-sha256`` and 10.0 made it its first key
    exchange, so every recent client negotiates it with ptycore. Debian 12's
    ``ssh`` is 9.2: then ``$PTYCORE_TEST_SSH_MLKEM``, which CI points at Debian's
    backported OpenSSH 10 client. None also when ``cryptography`` lacks ML-KEM.
    """
    if MLKEM_KEX not in TransportConfig().kex_algorithms:
        return None
    for candidate in (os.environ.get(MLKEM_CLIENT_VARIABLE), shutil.which("ssh")):
        if not candidate:
            continue
        try:
            offered = subprocess.run(
                [candidate, "-Q", "kex"],
                check=False,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            ).stdout.split()
        except OSError:
            continue
        if MLKEM_KEX in offered:
            return candidate
    return None


def needs_mlkem_openssh() -> pytest.MarkDecorator:
    """Skip marker for tests that need :func:`mlkem_openssh`."""
    return pytest.mark.skipif(
        mlkem_openssh() is None,
        reason=f"no OpenSSH 9.9+ client: set {MLKEM_CLIENT_VARIABLE} (.ci/fetch-openssh-mlkem)",
    )


def ssh_options(port: int, log_level: str = "ERROR") -> list[str]:
    """The OpenSSH client's options for a test server on 127.0.0.1: no user
    configuration, no known-hosts file, no host key prompt."""
    return [
        "-F",
        "/dev/null",
        "-p",
        str(port),
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        f"LogLevel={log_level}",
    ]
