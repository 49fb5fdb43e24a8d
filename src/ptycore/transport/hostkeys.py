"""Host and user keys: generate, load, sign, verify, fingerprint (on ``cryptography``).

Wire formats: RFC 8709 (``ssh-ed25519``), RFC 8332 and RFC 4253 section 6.6
(``rsa-sha2-256``/``rsa-sha2-512`` over ``ssh-rsa`` keys), RFC 5656 section 3.1
(``ecdsa-sha2-nistp256``, ``ecdsa-sha2-nistp384``, ``ecdsa-sha2-nistp521``). A
:class:`HostKey` also satisfies the user key protocol of :class:`ptycore.auth.UserKey`,
and :func:`verify_signature` is the :data:`ptycore.auth.SignatureVerifier` that
publickey authentication uses.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Final, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ptycore._errors import ProtocolError
from ptycore._wire import Reader, encode_mpint, encode_string

__all__ = ["HostKey", "fingerprint", "key_type", "verify_signature"]

PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# Signature algorithm -> the key type named in the public key blob.
_KEY_TYPES: Final = {
    "ssh-ed25519": "ssh-ed25519",
    "rsa-sha2-512": "ssh-rsa",
    "rsa-sha2-256": "ssh-rsa",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
}
_RSA_HASHES: Final = {"rsa-sha2-512": hashes.SHA512, "rsa-sha2-256": hashes.SHA256}


@dataclass(frozen=True, kw_only=True, slots=True)
class _Curve:
    """One ``ecdsa-sha2-*`` key type: RFC 5656 section 6.2.1 ties the hash to the
    curve size (OpenSSH ``sshkey.c`` ``sshkey_ec_nid_to_hash_alg``)."""

    identifier: str
    """The curve name inside the key blob (RFC 5656 section 6.1)."""
    curve: type[ec.EllipticCurve]
    hash: type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]
    size: int
    """Bytes in a coordinate, and so the most in r or s."""

    @property
    def max_point(self) -> int:
        """An uncompressed point (SEC 1 section 2.3.3): 0x04, x, y."""
        return 1 + 2 * self.size

    @property
    def max_scalar(self) -> int:
        """r or s as an mpint: the order's size plus a zero sign byte."""
        return self.size + 1


_CURVES: Final = {
    "ecdsa-sha2-nistp256": _Curve(
        identifier="nistp256", curve=ec.SECP256R1, hash=hashes.SHA256, size=32
    ),
    "ecdsa-sha2-nistp384": _Curve(
        identifier="nistp384", curve=ec.SECP384R1, hash=hashes.SHA384, size=48
    ),
    "ecdsa-sha2-nistp521": _Curve(
        identifier="nistp521", curve=ec.SECP521R1, hash=hashes.SHA512, size=66
    ),
}

RSA_MIN_BITS: Final = 1024
"""OpenSSH ``sshkey.h`` ``SSH_RSA_MINIMUM_MODULUS_SIZE``: smaller RSA keys are refused."""
RSA_MAX_BITS: Final = 16384
"""OpenSSH ``sshkey.h`` ``SSHBUF_MAX_BIGNUM`` * 8: larger moduli are refused."""
MAX_BLOB_LENGTH: Final = 16384 + 64


def key_type(algorithm: str) -> str | None:
    """The key type (``ssh-rsa``...) a signature algorithm needs, or ``None`` if unknown."""
    return _KEY_TYPES.get(algorithm)


def fingerprint(public_blob: bytes) -> str:
    """``SHA256:<unpadded base64>``, as ``ssh-keygen -l`` and ``ssh -v`` print it."""
    digest = hashlib.sha256(public_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _public_key(blob: bytes) -> tuple[str, PublicKey]:
    """Parse a public key blob; raises ProtocolError or ValueError when malformed."""
    reader = Reader(blob)
    kind = reader.text("key type", 64)
    key: PublicKey
    if kind == "ssh-ed25519":
        # RFC 8709 section 4: string "ssh-ed25519", string key (32 octets).
        raw = reader.string("ed25519 public key", 32)
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    elif kind == "ssh-rsa":
        # RFC 4253 section 6.6: string "ssh-rsa", mpint e, mpint n.
        e = reader.mpint("rsa exponent")
        n = reader.mpint("rsa modulus")
        if not RSA_MIN_BITS <= n.bit_length() <= RSA_MAX_BITS or e < 3:
            raise ValueError("RSA key size or exponent out of range")
        key = rsa.RSAPublicNumbers(e, n).public_key()
    elif kind in _CURVES:
        # RFC 5656 section 3.1: string type, string curve identifier, string Q. The
        # identifier must name the type's curve (OpenSSH sshkey.c refuses a mismatch
        # with SSH_ERR_EC_CURVE_MISMATCH), and Q is at most an uncompressed point.
        curve = _CURVES[kind]
        if reader.text("curve", 64) != curve.identifier:
            raise ValueError("curve does not match the key type")
        point = reader.string("ecdsa point", curve.max_point)
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve.curve(), point)
    else:
        raise ValueError(f"unsupported key type {kind!r}")
    reader.end("public key blob")
    return kind, key


def verify_signature(
    algorithm: str, public_blob: bytes, signature_blob: bytes, data: bytes
) -> bool:
    """Whether ``signature_blob`` is a valid ``algorithm`` signature of ``data``.

    ``signature_blob`` is ``string algorithm, string signature`` (RFC 4253 section
    6.6); its name must equal ``algorithm``, and the key in ``public_blob`` must be
    of the type the algorithm needs. Anything malformed is ``False``, never an error.
    """
    try:
        kind, key = _public_key(public_blob)
        if _KEY_TYPES.get(algorithm) != kind:
            return False
        reader = Reader(signature_blob)
        if reader.text("signature type", 64) != algorithm:
            return False
        signature = reader.string("signature", MAX_BLOB_LENGTH)
        reader.end("signature blob")
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, rsa.RSAPublicKey):
            # RFC 8332 section 3: the signature is as long as the modulus. OpenSSH's
            # ssh_rsa_verify accepts shorter ones padded with zeros on the left.
            length = (key.key_size + 7) // 8
            if len(signature) > length:
                return False
            signature = signature.rjust(length, b"\x00")
            key.verify(signature, data, padding.PKCS1v15(), _RSA_HASHES[algorithm]())
        else:
            # RFC 5656 section 3.1.2: string containing mpint r, mpint s, each at
            # most the curve order's size plus a sign byte; the hash by curve size
            # (section 6.2.1; OpenSSH ssh-ecdsa.c ssh_ecdsa_verify).
            curve = _CURVES[kind]
            inner = Reader(signature)
            r = inner.mpint("ecdsa r", curve.max_scalar)
            s = inner.mpint("ecdsa s", curve.max_scalar)
            inner.end("ecdsa signature")
            if r <= 0 or s <= 0:
                return False
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(curve.hash()))
    except (ProtocolError, ValueError, InvalidSignature, TypeError):
        return False
    return True


class HostKey:
    """A private key that signs: a server's host key or a client's user key."""

    __slots__ = ("_key", "_key_type", "_public_blob")

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = private_key
        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            self._key_type = "ssh-ed25519"
            raw = private_key.public_key().public_bytes_raw()
            blob = encode_string(b"ssh-ed25519") + encode_string(raw)
        elif isinstance(private_key, rsa.RSAPrivateKey):
            if not RSA_MIN_BITS <= private_key.key_size <= RSA_MAX_BITS:
                raise ValueError(f"RSA keys must have {RSA_MIN_BITS} to {RSA_MAX_BITS} bits")
            self._key_type = "ssh-rsa"
            numbers = private_key.public_key().public_numbers()
            blob = encode_string(b"ssh-rsa") + encode_mpint(numbers.e) + encode_mpint(numbers.n)
        elif isinstance(private_key, ec.EllipticCurvePrivateKey):
            kind = next(
                (k for k, c in _CURVES.items() if isinstance(private_key.curve, c.curve)), None
            )
            if kind is None:
                raise ValueError(
                    f"ECDSA on {private_key.curve.name} is not supported, only on "
                    "secp256r1, secp384r1 and secp521r1 (nistp256, nistp384, nistp521)"
                )
            self._key_type = kind
            point = private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            blob = encode_string(kind.encode("ascii"))
            blob += encode_string(_CURVES[kind].identifier.encode("ascii"))
            blob += encode_string(point)
        else:
            raise ValueError(f"unsupported key: {type(private_key).__name__}")
        self._public_blob = blob

    @classmethod
    def generate(cls, kind: str = "ssh-ed25519", *, rsa_bits: int = 3072) -> HostKey:
        """A new key: ``ssh-ed25519`` (the default), ``ssh-rsa``, ``ecdsa-sha2-nistp256``,
        ``ecdsa-sha2-nistp384`` or ``ecdsa-sha2-nistp521``."""
        if kind == "ssh-ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        if kind == "ssh-rsa":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits))
        if kind in _CURVES:
            return cls(ec.generate_private_key(_CURVES[kind].curve()))
        raise ValueError(f"unsupported key type {kind!r}")

    @classmethod
    def from_openssh(cls, data: bytes, password: bytes | None = None) -> HostKey:
        """Load the contents of an OpenSSH private key file (``BEGIN OPENSSH PRIVATE KEY``)."""
        key = serialization.load_ssh_private_key(data, password)
        if not isinstance(
            key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        ):
            raise ValueError(f"unsupported key: {type(key).__name__}")
        return cls(key)

    def to_openssh(self, password: bytes | None = None) -> bytes:
        """The private key in OpenSSH's file format, encrypted if a password is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
        )

    @property
    def key_type(self) -> str:
        """The name in the public key blob: ``ssh-ed25519``, ``ssh-rsa`` (for both RSA
        signature algorithms) or ``ecdsa-sha2-nistp256``/``384``/``521``."""
        return self._key_type

    @property
    def public_blob(self) -> bytes:
        """The public key in SSH wire format (RFC 4253 section 6.6)."""
        return self._public_blob

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The signature algorithms this key can make, best first."""
        if self.key_type == "ssh-rsa":
            return ("rsa-sha2-512", "rsa-sha2-256")
        return (self.key_type,)

    @property
    def algorithm(self) -> str:
        """The best signature algorithm, used when :meth:`sign` is not told one."""
        return self.algorithms[0]

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as OpenSSH prints it."""
        return fingerprint(self._public_blob)

    def openssh_public(self, comment: str = "") -> str:
        """The ``authorized_keys`` / ``known_hosts`` line: type, base64 blob, comment."""
        line = f"{self.key_type} {base64.b64encode(self._public_blob).decode('ascii')}"
        return f"{line} {comment}" if comment else line

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        """A signature blob: ``string algorithm, string signature``."""
        algorithm = algorithm or self.algorithm
        if algorithm not in self.algorithms:
            raise ValueError(f"a {self.key_type} key cannot sign with {algorithm!r}")
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            signature = key.sign(data)
        elif isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(data, padding.PKCS1v15(), _RSA_HASHES[algorithm]())
        else:
            hash_type = _CURVES[self._key_type].hash
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_type())))
            signature = encode_mpint(r) + encode_mpint(s)
        return encode_string(algorithm.encode("ascii")) + encode_string(signature)
