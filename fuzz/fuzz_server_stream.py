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
  ServerConnection with the fixed random source, host key, version and clock
  of tests/server_stream_helpers.py, up to the read that brought the client's
  DISCONNECT; framed as the reads came (mode 2), and byte by byte (``-bytes``,
  mode 1). Replayed here, the key exchange gives the same keys, so mutations
  reach the encrypted and authenticated paths. ``--write-seeds`` checks that they
  replay to a shell; tests/test_server_stream.py checks it on every run. They
  must be made again when the server's random draws change; the first flights
  need not be.

Run: python3 fuzz/fuzz_server_stream.py -atheris_runs=50000 /tmp/corpus fuzz/seeds/server_stream
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import atheris  # type: ignore[import-untyped]

# The server and the checks, shared with tests/test_server_stream.py.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

with atheris.instrument_imports():
    from ptycore import ChannelDataReceived, ConnectionClosed
    from server_stream_helpers import (
        SERVER_VERSION,
        application,
        bytewise,
        check_outcome,
        feed,
        frame,
        make_server,
        unframe,
    )

TIMEOUT = 20.0
T = TypeVar("T")


def _chunks(mode: int, data: bytes) -> list[bytes]:
    if mode & 1:
        return bytewise(data)
    if mode & 2:
        return unframe(data)
    size = (mode >> 2) * 16 or len(data) or 1
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_one_input(data: bytes) -> None:
    if data:
        check_outcome(_chunks(data[0], data[1:]))


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
    server, reads = make_server(), []
    conn.sendall(server.data_to_send())
    while not server.closed:
        data = conn.recv(65536)
        if not data:
            break
        events = list(server.receive_data(data, now=1.0))
        if any(isinstance(event, ConnectionClosed) for event in events):
            break
        reads.append(data)
        application(server, events)
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
    for chunks in (reads, bytewise(b"".join(reads))):
        server = make_server()
        events = feed(server, chunks)
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
        (directory / name).write_bytes(b"\x02" + frame(reads))
        (directory / f"{name}-bytes").write_bytes(b"\x01" + b"".join(reads))


def main() -> None:
    if sys.argv[1:2] == ["--write-seeds"]:
        write_seeds(pathlib.Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
