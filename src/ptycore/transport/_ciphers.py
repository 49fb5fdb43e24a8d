"""Packet protection behind one small interface, as aioquic keeps its crypto.

Each :class:`PacketCipher` protects whole binary packets (RFC 4253 section 6):
``encrypt`` takes ``uint32 packet_length || byte padding_length || payload ||
padding`` and returns the bytes for the wire; the receiver first learns the length
from the first four wire bytes (:meth:`~PacketCipher.decrypt_length`), then
authenticates and decrypts the rest. Every cipher here keeps the length readable
before the MAC check (AEAD or encrypt-then-MAC), so no plaintext is ever used
before it is authenticated. The primitives are all ``cryptography``'s.
"""

from __future__ import annotations

import hmac
import struct
import sys
from array import array
from typing import Final, Protocol, TypeAlias

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305

from ptycore._errors import DisconnectReason, ProtocolError

__all__ = ["CIPHER_SPECS", "MAC_SPECS", "CipherSpec", "PacketCipher", "make_cipher"]

_UINT32: Final = struct.Struct(">I")
_UINT64: Final = struct.Struct(">Q")


Data: TypeAlias = bytes | bytearray | memoryview


class PacketCipher(Protocol):
    """What the packet layer needs from one direction's protection."""

    block_size: int
    """Padding aligns to this (RFC 4253 section 6: at least 8)."""
    tag_length: int
    """Bytes of MAC or tag after the packet."""
    aligns_length: bool
    """Whether ``packet_length`` itself counts toward the alignment. Only the
    unencrypted initial state does: with AEAD and ETM the length is outside the
    encrypted part (OpenSSH ``packet.c``: ``aadlen``)."""

    def encrypt(self, seq: int, header: bytes, body: bytes) -> tuple[bytes, ...]:
        """Protect one packet sent with sequence number ``seq``: ``header`` is the
        uint32 ``packet_length``, ``body`` the padding length, payload and padding.
        Returns the wire bytes in pieces, so nothing is copied only to be joined."""
        ...

    def decrypt_length(self, seq: int, header: Data) -> int:
        """``packet_length`` from the first four bytes on the wire."""
        ...

    def decrypt(self, seq: int, wire: memoryview) -> bytes:
        """Check and decrypt one whole wire packet (length field and tag included);
        returns what follows the length field. Raises ProtocolError (MAC_ERROR)."""
        ...


def _mac_error() -> ProtocolError:
    return ProtocolError("message authentication failed", reason=DisconnectReason.MAC_ERROR)


class NoCipher:
    """The state before the first NEWKEYS: plaintext, no MAC."""

    block_size = 8
    tag_length = 0
    aligns_length = True

    def encrypt(self, seq: int, header: bytes, body: bytes) -> tuple[bytes, ...]:
        return header, body

    def decrypt_length(self, seq: int, header: Data) -> int:
        length: int = _UINT32.unpack(header)[0]
        return length

    def decrypt(self, seq: int, wire: memoryview) -> bytes:
        return bytes(wire[4:])


_ZEROS64: Final = bytes(64)
_ZEROS4: Final = bytes(4)
_NONCE0: Final = bytes(16)
_NONCE: Final = struct.Struct(">8xQ")
"""A packet's ChaCha20 nonce: block counter 0, then the sequence number."""

LENGTH_MASKS_FIRST: Final = 16
"""Length masks computed at a time at first: about the packets each way of a whole
``ssh host true`` (11 to 13), so a short connection makes one K_1 context each
way, as when the context was kept."""
LENGTH_MASKS_MAX: Final = 64
"""At most this many at a time (the count doubles from :data:`LENGTH_MASKS_FIRST`):
a busy connection makes a K_1 context every 64 packets (3.4 us, 0.05 us a packet)."""

_MASKS_TYPECODE: Final = next(code for code in "IL" if array(code).itemsize == 4)
"""An ``array`` of uint32: one mask is an index away (60 ns a packet less than
``unpack_from`` on bytes)."""


class ChaCha20Poly1305:
    """``chacha20-poly1305@openssh.com`` (OpenSSH ``PROTOCOL.chacha20poly1305``).

    The 64-byte key splits into K_2 (first 32 bytes: payload and Poly1305 key) and
    K_1 (last 32: the length). The nonce is the sequence number as a big-endian
    uint64, with a 64-bit block counter. ``cryptography``'s ``ChaCha20`` takes a
    16-byte value whose first half is the little-endian counter and the second half
    the nonce, which is exactly that layout. This is not the IETF AEAD of RFC 8439.
    The tag covers the encrypted length and the encrypted body.

    K_1 only ever hides the four length bytes, with the first four bytes of block 0
    of each packet's nonce: those masks are computed for the next packets at once
    (:meth:`_next_masks`), with a context made for that and dropped. A kept context
    is 496 bytes of OpenSSL's malloc and about 220 of Python objects, twice in every
    idle connection; the masks of one direction take about 150 (64 at most: 290).
    Apart from the first batch, which may compute a few masks a short connection
    never uses (about 2 us), it costs what the kept context cost per packet.
    """

    block_size = 8
    tag_length = 16
    aligns_length = False

    __slots__ = ("_length_key", "_masks", "_masks_seq", "_stream")

    def __init__(self, key: bytes) -> None:
        # One K_2 keystream context, moved to each packet's nonce with reset_nonce:
        # making a context costs ten times more than the reset (3.4 us against 0.34).
        # The first nonce is one shared constant: the context keeps the one it was
        # made with.
        self._stream = Cipher(algorithms.ChaCha20(key[:32], _NONCE0), None).encryptor()
        self._length_key = key[32:64]
        self._masks = array(_MASKS_TYPECODE)
        self._masks_seq = 0

    def _next_masks(self, seq: int) -> array[int]:
        """The length masks of packets ``seq`` onwards, twice as many as last time."""
        count = min(max(len(self._masks) * 2, LENGTH_MASKS_FIRST), LENGTH_MASKS_MAX)
        stream = Cipher(algorithms.ChaCha20(self._length_key, _NONCE0), None).encryptor()
        reset, update, nonce = stream.reset_nonce, stream.update, _NONCE.pack
        blocks = []
        # Past 2**32 - 1 the sequence number wraps to 0 (RFC 4253 section 6.4): masks
        # computed beyond it are never looked up; seq 0 computes afresh.
        for each in range(seq, seq + count):
            reset(nonce(each))
            blocks.append(update(_ZEROS4))
        masks = array(_MASKS_TYPECODE, b"".join(blocks))
        if sys.byteorder == "little":  # the length is big-endian
            masks.byteswap()
        self._masks = masks
        self._masks_seq = seq
        return masks

    def encrypt(self, seq: int, header: bytes, body: bytes) -> tuple[bytes, ...]:
        index = seq - self._masks_seq
        masks = self._masks
        if not 0 <= index < len(masks):
            masks, index = self._next_masks(seq), 0
        length = _UINT32.pack(_UINT32.unpack(header)[0] ^ masks[index])
        # Block 0 of the K_2 stream is the Poly1305 key; the body starts at block 1.
        stream = self._stream
        stream.reset_nonce(_NONCE.pack(seq))
        key = stream.update(_ZEROS64)[:32]
        ciphertext = stream.update(body)
        # One call over a copy of the packet: cheaper than update, update, finalize
        # for small packets, and no dearer for 32 KiB ones.
        return length, ciphertext, Poly1305.generate_tag(key, length + ciphertext)

    def decrypt_length(self, seq: int, header: Data) -> int:
        index = seq - self._masks_seq
        masks = self._masks
        if not 0 <= index < len(masks):
            masks, index = self._next_masks(seq), 0
        length: int = _UINT32.unpack(header)[0] ^ masks[index]
        return length

    def decrypt(self, seq: int, wire: memoryview) -> bytes:
        stream = self._stream
        stream.reset_nonce(_NONCE.pack(seq))
        try:
            Poly1305.verify_tag(stream.update(_ZEROS64)[:32], wire[:-16], bytes(wire[-16:]))
        except InvalidSignature:
            raise _mac_error() from None
        return stream.update(wire[4:-16])


class AesGcm:
    """``aes128-gcm@openssh.com`` / ``aes256-gcm@openssh.com`` (RFC 5647).

    The 12-byte nonce is a 4-byte fixed field and an 8-byte invocation counter
    that grows by one per packet (RFC 5647 section 7.1); the length is the
    associated data. One ``AESGCM`` object per direction and key.
    """

    block_size = 16
    tag_length = 16
    aligns_length = False

    __slots__ = ("_aead", "_counter", "_fixed")

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._aead = AESGCM(key)
        self._fixed = iv[:4]
        self._counter = int.from_bytes(iv[4:12], "big")

    def _nonce(self) -> bytes:
        nonce = self._fixed + _UINT64.pack(self._counter)
        self._counter = (self._counter + 1) & 0xFFFFFFFFFFFFFFFF
        return nonce

    def encrypt(self, seq: int, header: bytes, body: bytes) -> tuple[bytes, ...]:
        return header, self._aead.encrypt(self._nonce(), body, header)

    def decrypt_length(self, seq: int, header: Data) -> int:
        length: int = _UINT32.unpack(header)[0]
        return length

    def decrypt(self, seq: int, wire: memoryview) -> bytes:
        try:
            return self._aead.decrypt(self._nonce(), wire[4:], wire[:4])
        except InvalidTag:
            raise _mac_error() from None


class AesCtrEtm:
    """``aes128-ctr``/``aes256-ctr`` (RFC 4344) with ``hmac-sha2-*-etm@openssh.com``.

    Encrypt-then-MAC (OpenSSH ``PROTOCOL`` section 1.7): the length stays in the
    clear, the MAC covers ``uint32 seq || packet_length || ciphertext``, and is
    compared in constant time before anything is decrypted. The CTR context lives
    as long as the keys: the counter runs across packets. The keyed HMAC state is
    made once and copied per packet.
    """

    block_size = 16
    aligns_length = False

    __slots__ = ("_mac", "_stream", "tag_length")

    def __init__(self, key: bytes, iv: bytes, mac_key: bytes, digest: str, encrypt: bool) -> None:
        cipher = Cipher(algorithms.AES(key), modes.CTR(iv))
        self._stream = cipher.encryptor() if encrypt else cipher.decryptor()
        self._mac = hmac.new(mac_key, digestmod=digest)
        self.tag_length = self._mac.digest_size

    def _tag(self, seq: int, header: Data, ciphertext: Data) -> bytes:
        mac = self._mac.copy()
        mac.update(_UINT32.pack(seq))
        mac.update(header)
        mac.update(ciphertext)
        return mac.digest()

    def encrypt(self, seq: int, header: bytes, body: bytes) -> tuple[bytes, ...]:
        ciphertext = self._stream.update(body)
        return header, ciphertext, self._tag(seq, header, ciphertext)

    def decrypt_length(self, seq: int, header: Data) -> int:
        length: int = _UINT32.unpack(header)[0]
        return length

    def decrypt(self, seq: int, wire: memoryview) -> bytes:
        end = len(wire) - self.tag_length
        if not hmac.compare_digest(self._tag(seq, wire[:4], wire[4:end]), wire[end:]):
            raise _mac_error()
        return self._stream.update(wire[4:end])


class CipherSpec:
    """Key material a cipher needs from the key derivation (RFC 4253 section 7.2)."""

    __slots__ = ("aead", "iv_length", "key_length")

    def __init__(self, key_length: int, iv_length: int, aead: bool) -> None:
        self.key_length = key_length
        self.iv_length = iv_length
        self.aead = aead


CIPHER_SPECS: Final = {
    "chacha20-poly1305@openssh.com": CipherSpec(64, 0, True),
    "aes256-gcm@openssh.com": CipherSpec(32, 12, True),
    "aes128-gcm@openssh.com": CipherSpec(16, 12, True),
    "aes256-ctr": CipherSpec(32, 16, False),
    "aes128-ctr": CipherSpec(16, 16, False),
}
# MAC name -> (hashlib name, key length).
MAC_SPECS: Final = {
    "hmac-sha2-512-etm@openssh.com": ("sha512", 64),
    "hmac-sha2-256-etm@openssh.com": ("sha256", 32),
}


def make_cipher(
    name: str, key: bytes, iv: bytes, mac: str | None, mac_key: bytes, *, encrypt: bool
) -> PacketCipher:
    """One direction's protection from negotiated names and derived keys."""
    if name == "chacha20-poly1305@openssh.com":
        return ChaCha20Poly1305(key)
    if name in ("aes256-gcm@openssh.com", "aes128-gcm@openssh.com"):
        return AesGcm(key, iv)
    if mac is None:
        raise ValueError(f"{name} needs a MAC")
    return AesCtrEtm(key, iv, mac_key, MAC_SPECS[mac][0], encrypt)
