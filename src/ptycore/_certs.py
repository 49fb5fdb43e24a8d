"""OpenSSH certificates (``PROTOCOL.certkeys``): parse one and check its CA signature.

The core checks what needs no policy: the structure, that the CA's signature over
the certificate is valid and not SHA-1. Whom to trust, which principals and which
validity window (a wall clock) are the authenticator's decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ._errors import ProtocolError
from ._wire import Reader, encode_string

__all__ = ["CERTIFICATE_ALGORITHMS", "Certificate", "parse_certificate"]

CERTIFICATE_ALGORITHMS: Final = {
    # public key algorithm -> (certificate type in the blob, plain signature algorithm)
    "ssh-ed25519-cert-v01@openssh.com": ("ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"),
    "rsa-sha2-512-cert-v01@openssh.com": ("ssh-rsa-cert-v01@openssh.com", "rsa-sha2-512"),
    "rsa-sha2-256-cert-v01@openssh.com": ("ssh-rsa-cert-v01@openssh.com", "rsa-sha2-256"),
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": (
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256",
    ),
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": (
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384",
    ),
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": (
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521",
    ),
}
"""PROTOCOL.certkeys and OpenSSH's ``PubkeyAcceptedAlgorithms``: certificates ptycore
accepts for user authentication (no ``ssh-rsa-cert-v01`` SHA-1 signatures)."""

CA_SIGNATURE_ALGORITHMS: Final = frozenset(
    {
        "ssh-ed25519",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    }
)
"""sshd ``CASignatureAlgorithms`` since OpenSSH 8.2: no ``ssh-rsa`` (SHA-1)."""

_ECDSA_CERTIFICATES: Final = {
    cert_type: plain
    for cert_type, plain in CERTIFICATE_ALGORITHMS.values()
    if plain.startswith("ecdsa-")
}
"""Certificate type -> the plain key type it certifies."""

USER_CERTIFICATE: Final = 1
HOST_CERTIFICATE: Final = 2
_MAX_FIELD: Final = 16384


@dataclass(frozen=True, kw_only=True, slots=True)
class Certificate:
    """An OpenSSH certificate whose CA signature is valid (its policy is not checked)."""

    key_type: str
    """``ssh-ed25519-cert-v01@openssh.com`` and so on."""
    public_blob: bytes
    """The certified key as a plain public key blob (``ssh-ed25519`` ...)."""
    serial: int
    cert_type: int
    """1 for a user certificate, 2 for a host certificate."""
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    """Seconds since the Unix epoch (0: always)."""
    valid_before: int
    """Seconds since the Unix epoch (2**64 - 1: forever)."""
    critical_options: tuple[tuple[str, bytes], ...]
    extensions: tuple[tuple[str, bytes], ...]
    ca_blob: bytes
    """The CA's public key blob."""

    def valid_at(self, unix_time: float) -> bool:
        """Whether ``unix_time`` is inside the validity window (sshkey_cert_check_authority)."""
        return self.valid_after <= unix_time < self.valid_before


def _options(raw: bytes, field: str) -> tuple[tuple[str, bytes], ...]:
    # PROTOCOL.certkeys: a sequence of (string name, string data), names in order.
    reader = Reader(raw)
    items = []
    while reader.remaining:
        items.append((reader.text(field, 256), reader.string(f"{field} data", _MAX_FIELD)))
    return tuple(items)


def parse_certificate(
    blob: bytes, verify: Callable[[str, bytes, bytes, bytes], bool]
) -> Certificate | None:
    """The certificate in ``blob``, or ``None`` if it is malformed or its CA signature
    is not valid (``verify`` is :data:`~ptycore.auth.SignatureVerifier`)."""
    try:
        return _parse(blob, verify)
    except ProtocolError:
        return None


def _parse(blob: bytes, verify: Callable[[str, bytes, bytes, bytes], bool]) -> Certificate | None:
    reader = Reader(blob)
    key_type = reader.text("certificate type", 64)
    reader.string("nonce", _MAX_FIELD)
    # The key fields, re-encoded as the plain key blob they certify.
    if key_type == "ssh-ed25519-cert-v01@openssh.com":
        plain = encode_string(b"ssh-ed25519") + encode_string(reader.string("pk", 64))
    elif key_type == "ssh-rsa-cert-v01@openssh.com":
        e = reader.string("e", _MAX_FIELD)
        n = reader.string("n", _MAX_FIELD)
        plain = encode_string(b"ssh-rsa") + encode_string(e) + encode_string(n)
    elif key_type in _ECDSA_CERTIFICATES:
        # PROTOCOL.certkeys: string curve, string public_key, as in the plain key
        # (RFC 5656 section 3.1), whose checks verify_signature makes later.
        curve = reader.string("curve", 64)
        point = reader.string("public key", 256)
        plain = encode_string(_ECDSA_CERTIFICATES[key_type].encode("ascii"))
        plain += encode_string(curve) + encode_string(point)
    else:
        return None
    serial = reader.uint64("serial")
    cert_type = reader.uint32("type")
    key_id = reader.text("key id", _MAX_FIELD)
    principals_raw = Reader(reader.string("valid principals", _MAX_FIELD))
    principals = []
    while principals_raw.remaining:
        principals.append(principals_raw.text("principal", 256))
    valid_after = reader.uint64("valid after")
    valid_before = reader.uint64("valid before")
    critical = _options(reader.string("critical options", _MAX_FIELD), "critical option")
    extensions = _options(reader.string("extensions", _MAX_FIELD), "extension")
    reader.string("reserved", _MAX_FIELD)
    ca_blob = reader.string("signature key", _MAX_FIELD)
    signed = blob[: reader.offset]
    signature = reader.string("signature", _MAX_FIELD)
    reader.end("certificate")
    algorithm = Reader(signature).text("signature algorithm", 64)
    if algorithm not in CA_SIGNATURE_ALGORITHMS or not verify(
        algorithm, ca_blob, signature, signed
    ):
        return None
    return Certificate(
        key_type=key_type,
        public_blob=plain,
        serial=serial,
        cert_type=cert_type,
        key_id=key_id,
        principals=tuple(principals),
        valid_after=valid_after,
        valid_before=valid_before,
        critical_options=critical,
        extensions=extensions,
        ca_blob=ca_blob,
    )
