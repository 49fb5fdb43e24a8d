"""Fuzz the transport's receive path, server and client, whole and byte by byte.

The first input byte chooses: bit 0 feeds the rest byte by byte, bit 1 fuzzes a
client instead of a server, bits 2-4 pick the client's cipher. The rest follows the
peer's valid version line. Any input gives events or a ProtocolError, nothing
else; after an error a DISCONNECT is queued and the transport is closed; the
receive buffer never holds more than one packet. Seeds are captured streams of a
real key exchange (curve25519-sha256, each cipher, then an encrypted
SERVICE_REQUEST / SERVICE_ACCEPT) made with fixed random sources and fixed version
strings, so mutations reach the encrypted packet path.

Run: python3 fuzz/fuzz_transport.py -atheris_runs=20000 fuzz/seeds/transport
Make the seeds again: python3 fuzz/fuzz_transport.py --write-seeds fuzz/seeds/transport
"""

from __future__ import annotations

import pathlib
import random
import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from ptycore import ProtocolError
    from ptycore.transport import CIPHERS, HostKey, Role, Transport, TransportConfig

CLIENT_VERSION = "SSH-2.0-fuzz_client"
SERVER_VERSION = "SSH-2.0-fuzz_server"
HOST_KEY = HostKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
SERVER_CONFIG = TransportConfig(version=SERVER_VERSION)
SERVICE_REQUEST = b"\x05\x00\x00\x00\x0cssh-userauth"
BUFFER_LIMIT = SERVER_CONFIG.max_packet_size + 4 + 64


def _random(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def _server() -> Transport:
    return Transport(Role.SERVER, SERVER_CONFIG, host_keys=[HOST_KEY], random=_random(2))


def _client(cipher: str) -> Transport:
    config = TransportConfig(
        version=CLIENT_VERSION, kex_algorithms=("curve25519-sha256",), ciphers=(cipher,)
    )
    return Transport(
        Role.CLIENT, config, verify_host_key=lambda algorithm, blob: True, random=_random(1)
    )


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, data = data[0], data[1:]
    if mode & 2:
        transport = _client(CIPHERS[(mode >> 2) % len(CIPHERS)])
        transport.receive_data(SERVER_VERSION.encode() + b"\r\n")
    else:
        transport = _server()
        transport.receive_data(CLIENT_VERSION.encode() + b"\r\n")
    transport.data_to_send()
    chunks = [data[i : i + 1] for i in range(len(data))] if mode & 1 else [data]
    try:
        for chunk in chunks:
            transport.receive_data(chunk)
            transport.data_to_send()
            if len(transport._inbuf) > BUFFER_LIMIT:
                raise AssertionError("receive buffer holds more than one packet")
    except ProtocolError:
        if not transport.closed or not transport.data_to_send():
            raise AssertionError("ProtocolError without a queued DISCONNECT") from None


def _streams(cipher: str) -> tuple[bytes, bytes]:
    """What each side sends after its version line, in a complete exchange."""
    client, server = _client(cipher), _server()
    client.send_payload(SERVICE_REQUEST)
    to_server, to_client = b"", b""
    for _ in range(5):
        data = client.data_to_send()
        to_server += data
        for event in server.receive_data(data):
            if getattr(event, "payload", None) == SERVICE_REQUEST:
                server.send_payload(b"\x06" + SERVICE_REQUEST[1:])
        data = server.data_to_send()
        to_client += data
        client.receive_data(data)
    return to_server.split(b"\r\n", 1)[1], to_client.split(b"\r\n", 1)[1]


def write_seeds(directory: pathlib.Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index, cipher in enumerate(CIPHERS):
        to_server, to_client = _streams(cipher)
        name = cipher.split("@")[0]
        for suffix, flag in (("whole", 0), ("bytes", 1)):
            (directory / f"server-{name}-{suffix}").write_bytes(bytes([flag]) + to_server)
            client_mode = flag | 2 | index << 2
            (directory / f"client-{name}-{suffix}").write_bytes(bytes([client_mode]) + to_client)


def main() -> None:
    if sys.argv[1:2] == ["--write-seeds"]:
        write_seeds(pathlib.Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
