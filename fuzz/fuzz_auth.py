"""Fuzz the user authentication parsers, server and client side.

The input is split into payloads (each a uint16 length, then the bytes) and fed to a
fresh ServerAuth and ClientAuth: any input gives events or a ProtocolError, nothing
else, and the server never authenticates anyone without a valid password or key.
Run: python3 fuzz/fuzz_auth.py -atheris_runs=20000 fuzz/seeds/auth
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from ptycore import ProtocolError
    from ptycore.auth import ClientAuth, ServerAuth, SimpleAuthenticator


def _never_verifies(algorithm: str, blob: bytes, signature: bytes, data: bytes) -> bool:
    return False


def _payloads(data: bytes) -> list[bytes]:
    out = []
    while len(data) >= 2:
        length = int.from_bytes(data[:2], "big")
        out.append(data[2 : 2 + length])
        data = data[2 + length :]
    return out


def test_one_input(data: bytes) -> None:
    payloads = _payloads(data)
    server = ServerAuth(
        SimpleAuthenticator(
            passwords={"u": "\x00never typed\x00"},
            trusted_user_cas=[b"no CA blob looks like this"],
            clock=lambda: 0.0,
        ),
        session_id=b"id",
        verify=_never_verifies,
    )
    try:
        for payload in payloads:
            server.receive_payload(payload)
            server.payloads_to_send()
    except ProtocolError:
        pass
    if server.authenticated:
        raise AssertionError("authenticated without credentials")
    client = ClientAuth(
        "u", session_id=b"id", password="p", respond=lambda c: [""] * len(c.prompts)
    )
    try:
        for payload in payloads:
            client.receive_payload(payload)
            client.payloads_to_send()
    except (ProtocolError, ValueError):
        # ValueError: a challenge with more prompts than the responder answered.
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
