"""ptycore's packet protection against an independent implementation: AsyncSSH's.

For the three constructions no RFC publishes vectors for as SSH uses them
(``chacha20-poly1305@openssh.com``, AES-GCM with RFC 5647's invocation counter,
AES-CTR with the encrypt-then-MAC HMACs), a run of packets encrypted by both
must be the same bytes, and each side must read the other's. Keys, IVs and
packets are seeded random; the sequence numbers include the uint32 wrap.
"""

from __future__ import annotations

import random
import struct

import pytest
from asyncssh.encryption import get_encryption

from ptycore import ProtocolError
from ptycore.transport._ciphers import CIPHER_SPECS, MAC_SPECS, make_cipher

SEQUENCE = [0, 1, 2, 3, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF, 0, 1]
"""The sequence numbers of consecutive packets (RFC 4253 section 6.4: they wrap)."""

CASES = [
    (name, mac)
    for name, spec in CIPHER_SPECS.items()
    for mac in ([None] if spec.aead else sorted(MAC_SPECS))
]


def keys(name: str, mac: str | None) -> tuple[bytes, bytes, bytes]:
    rng = random.Random(f"{name} {mac}")
    spec = CIPHER_SPECS[name]
    mac_key = rng.randbytes(MAC_SPECS[mac][1]) if mac else b""
    return rng.randbytes(spec.key_length), rng.randbytes(spec.iv_length), mac_key


def packets(name: str) -> list[tuple[bytes, bytes]]:
    """(header, body) pairs: the body is padding length, payload and padding, a
    multiple of the block size, as RFC 4253 section 6 lays it out."""
    rng = random.Random(name)
    out = []
    for size in (16, 32, 48, 1024, 32768 + 16):
        body = bytes([4 + size % 7]) + rng.randbytes(size - 1)
        out.append((struct.pack(">I", len(body)), body))
    return out * 2


def asyncssh_encryption(name: str, mac: str | None) -> object:
    key, iv, mac_key = keys(name, mac)
    asyncssh_mac = mac.removesuffix("-etm@openssh.com").encode() if mac else b""
    return get_encryption(name.encode(), key, iv, asyncssh_mac, mac_key, etm=mac is not None)


@pytest.mark.parametrize(("name", "mac"), CASES)
def test_same_bytes_as_asyncssh(name: str, mac: str | None) -> None:
    key, iv, mac_key = keys(name, mac)
    ours = make_cipher(name, key, iv, mac, mac_key, encrypt=True)
    theirs: object = asyncssh_encryption(name, mac)
    reader = make_cipher(name, key, iv, mac, mac_key, encrypt=False)
    for seq, (header, body) in zip(SEQUENCE, packets(name), strict=False):
        wire = b"".join(ours.encrypt(seq, header, body))
        first, tag = theirs.encrypt_packet(seq, header, body)  # type: ignore[attr-defined]
        assert wire == first + tag
        assert reader.decrypt_length(seq, wire[:4]) == len(body)
        assert reader.decrypt(seq, memoryview(wire)) == body


@pytest.mark.parametrize(("name", "mac"), CASES)
def test_asyncssh_reads_ours_and_refuses_a_flipped_bit(name: str, mac: str | None) -> None:
    key, iv, mac_key = keys(name, mac)
    ours = make_cipher(name, key, iv, mac, mac_key, encrypt=True)
    theirs: object = asyncssh_encryption(name, mac)
    tag_length = 16 if mac is None else MAC_SPECS[mac][1]
    for seq, (header, body) in zip(SEQUENCE, packets(name), strict=False):
        wire = b"".join(ours.encrypt(seq, header, body))
        first, rest, tag = wire[:4], wire[4:-tag_length], wire[-tag_length:]
        decrypted = theirs.decrypt_packet(seq, first, rest, 4, tag)  # type: ignore[attr-defined]
        assert decrypted is not None
        assert decrypted[-len(body) :] == body
    # A receiver in step, then one flipped bit anywhere in the packet: a MAC error.
    for where in (0, 5, -1):
        receiver = make_cipher(name, key, iv, mac, mac_key, encrypt=False)
        sender = make_cipher(name, key, iv, mac, mac_key, encrypt=True)
        header, body = packets(name)[0]
        tampered = bytearray(b"".join(sender.encrypt(9, header, body)))
        tampered[where] ^= 0x40
        with pytest.raises(ProtocolError):
            receiver.decrypt(9, memoryview(bytes(tampered)))
