"""Transport configuration: algorithm preferences and limits, validated when built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ptycore._version import __version__

from ._kex import mlkem_available

if TYPE_CHECKING:
    from .hostkeys import HostKey

__all__ = [
    "CIPHERS",
    "COMPRESSION",
    "HOST_KEY_ALGORITHMS",
    "KEX_ALGORITHMS",
    "MACS",
    "PACKET_MAX_SIZE",
    "TransportConfig",
]

# Every name each list may hold: what ptycore implements. ML-KEM needs cryptography
# 47 or later with a backend that has it; without it, it leaves the defaults.
KEX_ALGORITHMS = (
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
)
HOST_KEY_ALGORITHMS = (
    "ssh-ed25519",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes128-ctr",
)
MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com")
_DEFAULT_KEX = KEX_ALGORITHMS if mlkem_available() else KEX_ALGORITHMS[1:]
COMPRESSION = ("none",)

PACKET_MAX_SIZE = 256 * 1024
"""OpenSSH ``packet.c`` ``PACKET_MAX_SIZE``: the largest ``packet_length`` accepted."""


def _check_names(field: str, names: tuple[str, ...], known: tuple[str, ...]) -> None:
    if not names:
        raise ValueError(f"{field} must name at least one algorithm")
    if len(set(names)) != len(names):
        raise ValueError(f"{field} names an algorithm twice: {names!r}")
    for name in names:
        if name not in known:
            raise ValueError(f"{field}: unsupported algorithm {name!r} (known: {known!r})")


@dataclass(frozen=True, kw_only=True, slots=True)
class TransportConfig:
    """What one side offers, best first, and the limits it enforces.

    The same object serves both roles. The defaults pass ``ssh-audit``: no SHA-1, no
    NIST curves (``ecdsa-sha2-nistp256``, ``-nistp384`` and ``-nistp521`` are accepted
    in :attr:`host_key_algorithms` when an operator asks for them), no CBC,
    encrypt-then-MAC only.
    """

    kex_algorithms: tuple[str, ...] = _DEFAULT_KEX
    """Key exchange methods (RFC 4253 section 7.1 ``kex_algorithms``);
    ``mlkem768x25519-sha256`` only where ``cryptography`` provides ML-KEM-768."""
    host_key_algorithms: tuple[str, ...] = HOST_KEY_ALGORITHMS[:3]
    """Signature algorithms for the server's host key. A server offers only those
    its host keys can make."""
    ciphers: tuple[str, ...] = CIPHERS
    """Encryption algorithms, used for both directions."""
    macs: tuple[str, ...] = MACS
    """MAC algorithms, used with the CTR ciphers (the AEAD ciphers carry their own)."""
    compression: tuple[str, ...] = COMPRESSION
    """Only ``none``: compression before encryption leaks (CRIME) and costs CPU."""
    version: str = f"SSH-2.0-ptycore_{__version__}"
    """Our identification string, without CR LF (RFC 4253 section 4.2)."""
    max_packet_size: int = PACKET_MAX_SIZE
    """Largest ``packet_length`` received or sent (OpenSSH ``PACKET_MAX_SIZE``)."""
    rekey_bytes: int | None = None
    """Rekey after this many bytes in either direction; ``None`` takes OpenSSH's
    default by cipher block size (``packet.c`` ``ssh_set_newkeys``): 2**32 blocks
    for 16-byte blocks (64 GiB), 1 GiB for ChaCha20 (RFC 4344 section 3.2)."""
    rekey_time: float | None = None
    """Rekey this many seconds after each key exchange; ``None`` (OpenSSH's
    ``RekeyLimit`` default) never rekeys by time."""
    server_sig_algs: tuple[str, ...] = (
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-512",
        "rsa-sha2-256",
    )
    """The ``server-sig-algs`` a server sends in EXT_INFO (RFC 8308 section 3.1):
    the user key signatures ptycore verifies."""

    def __post_init__(self) -> None:
        _check_names("kex_algorithms", self.kex_algorithms, _DEFAULT_KEX)
        _check_names("host_key_algorithms", self.host_key_algorithms, HOST_KEY_ALGORITHMS)
        _check_names("ciphers", self.ciphers, CIPHERS)
        _check_names("macs", self.macs, MACS)
        _check_names("compression", self.compression, COMPRESSION)
        # RFC 4253 section 4.2: printable US-ASCII without spaces or '-' in the
        # software version, at most 255 characters including CR LF.
        if (
            not self.version.startswith("SSH-2.0-")
            or len(self.version) > 253
            or not self.version.isascii()
            or not self.version.isprintable()
        ):
            raise ValueError(f"not an SSH 2.0 identification string: {self.version!r}")
        if not 4096 <= self.max_packet_size <= PACKET_MAX_SIZE:
            raise ValueError(f"max_packet_size must be 4096 to {PACKET_MAX_SIZE}")
        if self.rekey_bytes is not None and self.rekey_bytes < 16384:
            raise ValueError("rekey_bytes must be at least 16384 (OpenSSH's minimum)")
        if self.rekey_time is not None and not self.rekey_time > 0:
            raise ValueError("rekey_time must be positive")

    def host_keys_by_algorithm(self, host_keys: Sequence[HostKey]) -> dict[str, HostKey]:
        """The host key algorithms a server with ``host_keys`` offers, in this
        config's order, each with the first key that makes it (RFC 4253 section 7.1:
        a server lists only algorithms it has keys for). Empty when no key fits:
        servers check this once at startup rather than fail every connection."""
        offered: dict[str, HostKey] = {}
        for algorithm in self.host_key_algorithms:
            for key in host_keys:
                if algorithm in key.algorithms:
                    offered.setdefault(algorithm, key)
        return offered
