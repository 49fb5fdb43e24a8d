"""Fuzz ServerConnection above the transport: authentication and channels, end to end.

Each input is split into payloads (a uint16 length, then the bytes; the first byte
of each is the message number). A real client Transport, after a real key exchange
with fixed random sources, encrypts them, and a ServerConnection receives the
bytes whole. The server's application accepts every request and echoes data. Any
input gives events or a ProtocolError, nothing else; after the error a DISCONNECT
is queued and the connection is closed; nobody logs in without the password.

Run: python3 fuzz/fuzz_server.py -atheris_runs=5000 fuzz/seeds/server
Make the seeds again: python3 fuzz/fuzz_server.py --write-seeds fuzz/seeds/server
"""

from __future__ import annotations

import contextlib
import pathlib
import random
import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from ptycore import (
        ChannelDataReceived,
        ProtocolError,
        RequestReceived,
        ServerConfig,
        ServerConnection,
        SessionEvent,
        SimpleAuthenticator,
    )
    from ptycore._wire import encode_boolean, encode_string, encode_text, encode_uint32
    from ptycore.connection import BufferFullError
    from ptycore.session import LocalProtocolError
    from ptycore.transport import HostKey, Role, Transport, TransportConfig

HOST_KEY = HostKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
FAST = TransportConfig(
    kex_algorithms=("curve25519-sha256",), ciphers=("chacha20-poly1305@openssh.com",)
)
CONFIG = ServerConfig(transport=FAST)
AUTHENTICATOR = SimpleAuthenticator(passwords={"u": "p"})


def _payloads(data: bytes) -> list[bytes]:
    out = []
    while len(data) >= 3:
        length = int.from_bytes(data[:2], "big")
        payload = data[2 : 3 + length]
        # The client transport sends only 5, 6 and 50-255; fold the rest into range.
        if payload[0] not in (5, 6) and payload[0] < 50:
            payload = bytes([50 + payload[0]]) + payload[1:]
        out.append(payload)
        data = data[3 + length :]
    return out


def _connected() -> tuple[Transport, ServerConnection]:
    server = ServerConnection(
        CONFIG, AUTHENTICATOR, [HOST_KEY], random.Random(1).randbytes, now=0.0
    )
    client = Transport(
        Role.CLIENT,
        FAST,
        verify_host_key=lambda algorithm, blob: True,
        random=random.Random(2).randbytes,
    )
    while True:
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            return client, server
        server.receive_data(to_server)
        client.receive_data(to_client)


def _application(server: ServerConnection, events: list[object]) -> None:
    for event in events:
        if isinstance(event, SessionEvent) and isinstance(event.event, RequestReceived):
            server.accept_request(event.channel_id, event.event.handle)
        elif isinstance(event, ChannelDataReceived):
            # A full buffer, data after our EOF, a channel closed meanwhile: skip.
            with contextlib.suppress(BufferFullError, LocalProtocolError, KeyError):
                server.send_data(event.channel_id, event.data)


def test_one_input(data: bytes) -> None:
    client, server = _connected()
    for payload in _payloads(data):
        client.send_payload(payload)
        try:
            events = server.receive_data(client.data_to_send(), now=1.0)
        except ProtocolError:
            if not server.closed or not server.data_to_send():
                raise AssertionError("ProtocolError without a queued DISCONNECT") from None
            break
        _application(server, list(events))
        client.receive_data(server.data_to_send())
        if server.closed:
            break
    if server.authenticated and server.username != "u":
        raise AssertionError("logged in as a user without a password")


def _write_seeds(directory: pathlib.Path) -> None:
    def frame(*payloads: bytes) -> bytes:
        return b"".join(len(p[1:]).to_bytes(2, "big") + p for p in payloads)

    def auth(method: str, fields: bytes) -> bytes:
        return (
            b"\x32"
            + encode_text("u")
            + encode_text("ssh-connection")
            + encode_text(method)
            + fields
        )

    u32 = encode_uint32
    service = b"\x05" + encode_text("ssh-userauth")
    login = auth("password", encode_boolean(False) + encode_text("p"))
    channel_open = b"\x5a" + encode_text("session") + u32(0) + u32(65536) + u32(32768)
    pty = (
        b"\x62"
        + u32(0)
        + encode_text("pty-req")
        + b"\x01"
        + encode_text("xterm")
        + u32(80)
        + u32(24)
        + u32(0)
        + u32(0)
        + encode_string(b"\x00")
    )
    shell = b"\x62" + u32(0) + encode_text("shell") + b"\x01"
    seeds = {
        "login": frame(service, auth("none", b""), login),
        "session": frame(
            service,
            login,
            channel_open,
            pty,
            shell,
            b"\x5e" + u32(0) + encode_string(b"hello"),
            b"\x60" + u32(0),
            b"\x61" + u32(0),
        ),
        "kbdint": frame(
            service,
            auth("keyboard-interactive", encode_string(b"") * 2),
            b"\x3d" + u32(1) + encode_text("p"),
        ),
        "global": frame(
            service, login, b"\x50" + encode_text("keepalive@openssh.com") + b"\x01", b"\xc8junk"
        ),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, seed in seeds.items():
        (directory / name).write_bytes(seed)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        _write_seeds(pathlib.Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
