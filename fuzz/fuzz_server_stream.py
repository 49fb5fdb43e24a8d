"""Fuzz ServerConnection's receive path with byte streams captured from real clients.

The first input byte picks how the rest arrives: bit 0 byte by byte; bit 1 in
the reads it is framed into (a uint16 length before each), as they came from the
socket; otherwise in chunks of ``(mode >> 2) * 16`` bytes, or whole when that is
0. The rest is what a client sends, from its version line on. Any input gives
events or a ProtocolError, nothing else; after the error a DISCONNECT is queued
and the connection is closed; the transport's receive buffer never holds more
than one packet; nobody logs in without the password. The application accepts
every request, echoes data as the window allows and ends a channel at EOF or ``q``.

Seeds (``--write-seeds DIR``; needs ``ssh``, Paramiko and AsyncSSH):

- ``*-first-flight``: the version line and KEXINIT that OpenSSH, Paramiko and
  AsyncSSH sent to a socket that answered with a version line and nothing more.
- ``openssh-session-*``: all that OpenSSH sent in a whole login (password ``p``
  for ``u``, a PTY, a shell, ``hello``, ``q``), once per kind of cipher, to a
  ServerConnection with this harness's fixed random source, host key, version
  and clock, up to the read that brought the client's DISCONNECT; framed as the
  reads came (mode 2), and byte by byte (``-bytes``, mode 1). Replayed here, the
  key exchange gives the same keys, so mutations reach the encrypted and
  authenticated paths. ``--write-seeds`` checks that they replay to a shell;
  tests/test_server_stream.py checks it on every run. They must be made again
  when the server's random draws change; the first flights need not be.

Run: python3 fuzz/fuzz_server_stream.py -atheris_runs=50000 /tmp/corpus fuzz/seeds/server_stream
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import random
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from ptycore import (
        ChannelDataReceived,
        ChannelEOFReceived,
        ConnectionClosed,
        ProtocolError,
        RequestReceived,
        ServerConfig,
        ServerConnection,
        SessionEvent,
        SimpleAuthenticator,
    )
    from ptycore.connection import BufferFullError
    from ptycore.session import LocalProtocolError
    from ptycore.transport import HostKey, TransportConfig

SERVER_VERSION = "SSH-2.0-fuzz_server"
HOST_KEY = HostKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
CONFIG = ServerConfig(transport=TransportConfig(version=SERVER_VERSION))
AUTHENTICATOR = SimpleAuthenticator(passwords={"u": "p"})
BUFFER_LIMIT = CONFIG.transport.max_packet_size + 4 + 64
TIMEOUT = 20.0
T = TypeVar("T")


def _server() -> ServerConnection:
    return ServerConnection(CONFIG, AUTHENTICATOR, [HOST_KEY], random.Random(1).randbytes, now=0.0)


def _application(server: ServerConnection, events: Sequence[object]) -> None:
    """Accept every request, echo what fits, end the channel at EOF or ``q``."""
    for event in events:
        if isinstance(event, SessionEvent) and isinstance(event.event, RequestReceived):
            server.accept_request(event.channel_id, event.event.handle)
        elif isinstance(event, ChannelDataReceived | ChannelEOFReceived):
            # Data after our EOF, a channel closed meanwhile: the application's
            # mistakes, not the receive path's.
            with contextlib.suppress(BufferFullError, LocalProtocolError, KeyError):
                data = getattr(event, "data", b"")
                server.send_data(event.channel_id, data[: server.writable(event.channel_id)])
                if b"q" in data or isinstance(event, ChannelEOFReceived):
                    server.send_exit_status(event.channel_id, 0)
                    server.send_eof(event.channel_id)
                    server.close_channel(event.channel_id)


def _chunks(mode: int, data: bytes) -> list[bytes]:
    if mode & 1:
        return [data[i : i + 1] for i in range(len(data))]
    if mode & 2:
        chunks = []
        while len(data) >= 2:
            end = 2 + int.from_bytes(data[:2], "big")
            chunks.append(data[2:end])
            data = data[end:]
        return chunks
    size = (mode >> 2) * 16 or len(data) or 1
    return [data[i : i + size] for i in range(0, len(data), size)]


def _frame(chunks: list[bytes]) -> bytes:
    return b"".join(len(chunk).to_bytes(2, "big") + chunk for chunk in chunks)


def _feed(server: ServerConnection, chunks: list[bytes]) -> list[object]:
    """Each chunk to the server, the application answering in between; the events."""
    seen: list[object] = []
    for chunk in chunks:
        events = list(server.receive_data(chunk, now=1.0))
        _application(server, events)
        seen += events
        server.data_to_send()
        if len(server._transport._inbuf) > BUFFER_LIMIT:
            raise AssertionError("receive buffer holds more than one packet")
        if server.closed:
            break
    return seen


def test_one_input(data: bytes) -> None:
    if not data:
        return
    server = _server()
    server.data_to_send()
    try:
        _feed(server, _chunks(data[0], data[1:]))
    except ProtocolError:
        if not server.closed or not server.data_to_send():
            raise AssertionError("ProtocolError without a queued DISCONNECT") from None
    if server.authenticated and server.username != "u":
        raise AssertionError("logged in as a user without a password")


# --- capturing seeds from real clients ------------------------------------------------------


def _serve_one(client: Callable[..., object], serve: Callable[[socket.socket], T]) -> T:
    """Run ``client(port=PORT)`` in a thread against one connection handled by ``serve``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        thread = threading.Thread(target=client, kwargs={"port": port}, daemon=True)
        thread.start()
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            captured = serve(conn)
        thread.join(TIMEOUT)
    return captured


def _first_flight(conn: socket.socket) -> bytes:
    """Answer with a version line; read the client's version line and one packet."""
    conn.sendall(SERVER_VERSION.encode() + b"\r\n")
    data = b""
    while True:
        line_end = data.find(b"\r\n") + 2
        if line_end >= 2 and len(data) >= line_end + 4:
            end = line_end + 4 + int.from_bytes(data[line_end : line_end + 4], "big")
            if len(data) >= end:
                return data[:end]
        more = conn.recv(65536)
        if not more:
            raise RuntimeError(f"the client hung up after {data!r}")
        data += more


def _session(conn: socket.socket) -> list[bytes]:
    """Serve with the harness's server; return each read of what the client sent,
    up to the read that brought its DISCONNECT."""
    server, reads = _server(), []
    conn.sendall(server.data_to_send())
    while not server.closed:
        data = conn.recv(65536)
        if not data:
            break
        events = list(server.receive_data(data, now=1.0))
        if any(isinstance(event, ConnectionClosed) for event in events):
            break
        reads.append(data)
        _application(server, events)
        conn.sendall(server.data_to_send())
    return reads


def _ssh(*options: str, port: int, stdin: bytes = b"") -> None:
    with tempfile.TemporaryDirectory() as directory:
        askpass = pathlib.Path(directory) / "askpass"
        askpass.write_text("#!/bin/sh\necho p\n")
        askpass.chmod(0o700)
        env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        subprocess.run(
            [
                *("ssh", "-F", "/dev/null", "-p", str(port), "-o", "LogLevel=ERROR"),
                *("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"),
                *options,
                "u@127.0.0.1",
            ],
            input=stdin,
            env=env,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )


def _paramiko(port: int) -> None:
    import paramiko  # only for writing seeds

    transport = paramiko.Transport(("127.0.0.1", port))
    with contextlib.suppress(Exception):  # we hang up after its KEXINIT
        transport.start_client(timeout=TIMEOUT)
    transport.close()


def _asyncssh(port: int) -> None:
    import asyncssh  # only for writing seeds

    async def connect() -> None:
        async with asyncssh.connect("127.0.0.1", port, known_hosts=None, connect_timeout=TIMEOUT):
            pass

    with contextlib.suppress(Exception):  # we hang up after its KEXINIT
        asyncio.run(connect())


def _check_session(reads: list[bytes]) -> None:
    """Replayed read by read, and byte by byte, the capture logs in, opens a shell
    and echoes ``hello``."""
    for chunks in (reads, _chunks(1, b"".join(reads))):
        server = _server()
        events = _feed(server, chunks)
        echoed = b"".join(e.data for e in events if isinstance(e, ChannelDataReceived))
        if not server.authenticated or b"hello" not in echoed:
            raise RuntimeError("the captured session does not replay")


def write_seeds(directory: pathlib.Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, client in (("openssh", _ssh), ("paramiko", _paramiko), ("asyncssh", _asyncssh)):
        flight = _serve_one(client, _first_flight)
        (directory / f"{name}-first-flight").write_bytes(b"\x00" + flight)
    for cipher, mac in (
        ("chacha20-poly1305@openssh.com", "hmac-sha2-256-etm@openssh.com"),
        ("aes128-gcm@openssh.com", "hmac-sha2-256-etm@openssh.com"),
        ("aes256-ctr", "hmac-sha2-512-etm@openssh.com"),
    ):
        options = (
            *("-tt", "-c", cipher, "-m", mac, "-o", "KexAlgorithms=curve25519-sha256"),
            *("-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"),
        )
        reads = _serve_one(partial(_ssh, *options, stdin=b"hello\nq"), _session)
        _check_session(reads)
        name = f"openssh-session-{cipher.split('@')[0]}"
        (directory / name).write_bytes(b"\x02" + _frame(reads))
        (directory / f"{name}-bytes").write_bytes(b"\x01" + b"".join(reads))


def main() -> None:
    if sys.argv[1:2] == ["--write-seeds"]:
        write_seeds(pathlib.Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
