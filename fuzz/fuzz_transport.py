"""Fuzz the transport's receive path: a server Transport fed any bytes.

The input follows a valid version line, and is fed whole or byte by byte (the first
input byte chooses). Any input gives events or a ProtocolError, nothing else; after
an error a DISCONNECT is queued and the transport is closed; the receive buffer
never holds more than one packet. Seeds are captured client streams (a real key
exchange with curve25519-sha256 and each cipher, then an encrypted SERVICE_REQUEST)
made with fixed random sources, so mutations reach the encrypted packet path.

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

VERSION = b"SSH-2.0-fuzz"
HOST_KEY = HostKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
SERVER_CONFIG = TransportConfig()


def _random(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def _server() -> tuple[Transport, bytes]:
    """A server that has read a client's version line, and what it has sent."""
    server = Transport(Role.SERVER, SERVER_CONFIG, host_keys=[HOST_KEY], random=_random(2))
    server.receive_data(VERSION + b"\r\n")
    return server, server.data_to_send()


def _feed(server: Transport, data: bytes, byte_by_byte: bool) -> None:
    chunks = [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]
    for chunk in chunks:
        server.receive_data(chunk)
        server.data_to_send()
        if len(server._inbuf) > SERVER_CONFIG.max_packet_size + 4 + 64:
            raise AssertionError("receive buffer holds more than one packet")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    server, _ = _server()
    try:
        _feed(server, data[1:], byte_by_byte=data[0] & 1 == 1)
    except ProtocolError:
        if not server.closed or not server.data_to_send():
            raise AssertionError("ProtocolError without a queued DISCONNECT") from None


def _client_stream(cipher: str) -> bytes:
    """What a client sends after its version line, up to an encrypted SERVICE_REQUEST."""
    config = TransportConfig(
        version=VERSION.decode(), kex_algorithms=("curve25519-sha256",), ciphers=(cipher,)
    )
    client = Transport(
        Role.CLIENT, config, verify_host_key=lambda algorithm, blob: True, random=_random(1)
    )
    server, greeting = _server()
    client.send_payload(b"\x05\x00\x00\x00\x0cssh-userauth")
    stream = client.data_to_send().split(b"\r\n", 1)[1]
    server.receive_data(stream)
    client.receive_data(greeting)
    for _ in range(3):
        client.receive_data(server.data_to_send())
        data = client.data_to_send()
        stream += data
        server.receive_data(data)
    return stream


def write_seeds(directory: pathlib.Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for cipher in CIPHERS:
        stream = _client_stream(cipher)
        name = cipher.split("@")[0]
        (directory / f"{name}-whole").write_bytes(b"\x00" + stream)
        (directory / f"{name}-bytes").write_bytes(b"\x01" + stream)


def main() -> None:
    if sys.argv[1:2] == ["--write-seeds"]:
        write_seeds(pathlib.Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
