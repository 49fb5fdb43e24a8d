"""Ephemeral key exchange methods and the key derivation of RFC 4253 section 7.2.

All three methods are one round trip over messages 30 and 31 with SHA-256 as the
exchange hash: ``curve25519-sha256`` (RFC 8731) and ``mlkem768x25519-sha256``
(draft-ietf-sshm-mlkem-hybrid-kex, OpenSSH ``kexmlkem768x25519.c``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import x25519

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import mlkem

from ptycore._errors import DisconnectReason, ProtocolError
from ptycore._wire import encode_mpint, encode_string

__all__ = ["KexMethod", "derive_key", "make_kex", "mlkem_available"]

_X25519_LENGTH: Final = 32
_MLKEM768_PUBLIC_LENGTH: Final = 1184
_MLKEM768_CIPHERTEXT_LENGTH: Final = 1088


def mlkem_available() -> bool:
    """Whether this ``cryptography`` has ML-KEM-768 (added in 47.0, and only with a
    backend that implements it)."""
    try:
        from cryptography.hazmat.primitives.asymmetric import mlkem  # noqa: PLC0415

        mlkem.MLKEM768PrivateKey.from_seed_bytes(bytes(64))
    except (ImportError, UnsupportedAlgorithm):
        return False
    return True


def _kex_error(message: str) -> ProtocolError:
    return ProtocolError(message, reason=DisconnectReason.KEY_EXCHANGE_FAILED)


class KexMethod(Protocol):
    """One ephemeral exchange. ``K`` is returned already encoded for the hash."""

    def client_init(self) -> bytes:
        """The client's public value (``Q_C`` / ``C_INIT``)."""
        ...

    def client_finish(self, server_public: bytes) -> bytes:
        """The encoded shared secret, from the server's reply value."""
        ...

    def server_reply(self, client_public: bytes) -> tuple[bytes, bytes]:
        """``(server public value, encoded shared secret)``."""
        ...


def _x25519(private: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    # RFC 8731 section 3: the peer's value must be 32 bytes, and an all-zero result
    # (a low-order point) aborts the exchange.
    if len(peer) != _X25519_LENGTH:
        raise _kex_error(f"X25519 public value of {len(peer)} bytes")
    try:
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        raise _kex_error("X25519 shared secret is zero") from None
    if not any(shared):
        raise _kex_error("X25519 shared secret is zero")
    return shared


def _x25519_public(private: x25519.X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


class Curve25519:
    """``curve25519-sha256`` (RFC 8731): K is the X25519 output read as an unsigned
    big-endian number, encoded as an ``mpint`` (RFC 8731 section 3.1)."""

    __slots__ = ("_private",)

    def __init__(self, random: Callable[[int], bytes]) -> None:
        self._private = x25519.X25519PrivateKey.from_private_bytes(random(32))

    def client_init(self) -> bytes:
        return _x25519_public(self._private)

    def client_finish(self, server_public: bytes) -> bytes:
        return encode_mpint(int.from_bytes(_x25519(self._private, server_public), "big"))

    def server_reply(self, client_public: bytes) -> tuple[bytes, bytes]:
        shared = _x25519(self._private, client_public)
        return _x25519_public(self._private), encode_mpint(int.from_bytes(shared, "big"))


class MlKem768X25519:
    """``mlkem768x25519-sha256``: C_INIT = ML-KEM-768 public key || X25519 public
    key; S_REPLY = ML-KEM ciphertext || X25519 public key; K = SHA-256(K_PQ ||
    K_CL), encoded as a ``string`` (not an mpint), as OpenSSH does.

    The ML-KEM key pair comes from a 64-byte seed from ``random``; encapsulation
    uses ``cryptography``'s own randomness (it takes none from outside).
    """

    __slots__ = ("_classic", "_kem", "_seed")

    def __init__(self, random: Callable[[int], bytes]) -> None:
        self._classic = x25519.X25519PrivateKey.from_private_bytes(random(32))
        self._kem: mlkem.MLKEM768PrivateKey | None = None
        self._seed = random

    def client_init(self) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import mlkem  # noqa: PLC0415

        self._kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(self._seed(64))
        return self._kem.public_key().public_bytes_raw() + _x25519_public(self._classic)

    def client_finish(self, server_public: bytes) -> bytes:
        if self._kem is None or len(server_public) != _MLKEM768_CIPHERTEXT_LENGTH + 32:
            raise _kex_error("malformed mlkem768x25519 reply")
        shared_pq = self._kem.decapsulate(server_public[:_MLKEM768_CIPHERTEXT_LENGTH])
        shared_cl = _x25519(self._classic, server_public[_MLKEM768_CIPHERTEXT_LENGTH:])
        return encode_string(hashlib.sha256(shared_pq + shared_cl).digest())

    def server_reply(self, client_public: bytes) -> tuple[bytes, bytes]:
        if len(client_public) != _MLKEM768_PUBLIC_LENGTH + 32:
            raise _kex_error("malformed mlkem768x25519 init")
        from cryptography.hazmat.primitives.asymmetric import mlkem  # noqa: PLC0415

        try:
            peer = mlkem.MLKEM768PublicKey.from_public_bytes(
                client_public[:_MLKEM768_PUBLIC_LENGTH]
            )
        except ValueError:
            raise _kex_error("invalid ML-KEM-768 public key") from None
        shared_pq, ciphertext = peer.encapsulate()
        shared_cl = _x25519(self._classic, client_public[_MLKEM768_PUBLIC_LENGTH:])
        reply = ciphertext + _x25519_public(self._classic)
        return reply, encode_string(hashlib.sha256(shared_pq + shared_cl).digest())


def make_kex(name: str, random: Callable[[int], bytes]) -> KexMethod:
    """A fresh exchange for a negotiated method name."""
    if name == "mlkem768x25519-sha256":
        return MlKem768X25519(random)
    return Curve25519(random)


def derive_key(
    shared: bytes, exchange_hash: bytes, letter: bytes, session_id: bytes, size: int
) -> bytes:
    """RFC 4253 section 7.2: HASH(K || H || letter || session_id), extended by
    K_n = HASH(K || H || K_1 || ... || K_n-1) until ``size`` bytes. ``shared`` is
    K already encoded (mpint or string)."""
    key = hashlib.sha256(shared + exchange_hash + letter + session_id).digest()
    while len(key) < size:
        key += hashlib.sha256(shared + exchange_hash + key).digest()
    return key[:size]
