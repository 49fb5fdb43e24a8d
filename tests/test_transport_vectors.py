"""Known-answer tests: published vectors run through ptycore's own constructions."""

from __future__ import annotations

import base64
import struct

import asyncssh
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.poly1305 import Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from ptycore import ProtocolError
from ptycore._wire import Reader, encode_mpint, encode_string
from ptycore.transport import HostKey, fingerprint, verify_signature
from ptycore.transport._ciphers import AesGcm, ChaCha20Poly1305
from ptycore.transport._kex import Curve25519

h = bytes.fromhex

# RFC 5656 sections 3.1 and 6.2.1: key type -> (curve identifier, hash, bytes in a
# coordinate: 32, 48 and 66 for P-256, P-384 and P-521).
NIST_CURVES = {
    "ecdsa-sha2-nistp256": (b"nistp256", ec.SECP256R1(), 32),
    "ecdsa-sha2-nistp384": (b"nistp384", ec.SECP384R1(), 48),
    "ecdsa-sha2-nistp521": (b"nistp521", ec.SECP521R1(), 66),
}


def test_chacha20_poly1305_key_generation_rfc8439_2_6_2() -> None:
    """Block 0 of the K_2 stream is the Poly1305 key (RFC 8439 section 2.6.2).

    The RFC's 96-bit nonce 00000000 0001020304050607 is, in OpenSSH's 64-bit
    layout, a zero high counter word and the sequence number 0x0001020304050607.
    """
    key = bytes(range(0x80, 0xA0))
    expected_poly_key = h("8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646")
    cipher = ChaCha20Poly1305(key + bytes(32))
    wire = b"".join(cipher.encrypt(0x0001020304050607, struct.pack(">I", 12), bytes(12)))
    assert wire[-16:] == Poly1305.generate_tag(expected_poly_key, wire[:-16])
    assert cipher.decrypt(0x0001020304050607, memoryview(wire)) == bytes(12)


def test_chacha20_payload_starts_at_block_1_rfc8439_2_4_2() -> None:
    """The payload is encrypted from block counter 1 (RFC 8439 section 2.4.2 vector)."""
    key = bytes(range(32))
    plaintext = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
        b"for the future, sunscreen would be it."
    )
    expected = h(
        "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
        "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
        "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
        "5af90bbf74a35be6b40b8eedf2785e42874d"
    )
    # Nonce 000000000000004a00000000: high counter word 0, sequence number
    # 0x0000004a00000000.
    cipher = ChaCha20Poly1305(key + bytes(32))
    header = struct.pack(">I", len(plaintext))
    wire = b"".join(cipher.encrypt(0x0000004A00000000, header, plaintext))
    assert wire[4:-16] == expected


@pytest.mark.parametrize("first", [0, 2**32 - 100])
def test_chacha20_poly1305_lengths_match_a_fresh_k1_stream_at_every_packet(first: int) -> None:
    """The length masks, computed ahead in batches, are each packet's K_1 keystream
    (the first four bytes of block 0 at its sequence number), across batch ends and
    the sequence number's wrap at 2**32 (RFC 4253 section 6.4), sending and
    receiving, and when a length is decrypted twice."""
    key = bytes(range(64))
    sender, receiver = ChaCha20Poly1305(key), ChaCha20Poly1305(key)
    for step in range(400):
        seq = (first + step) % 2**32
        header = struct.pack(">I", 16 + step)
        nonce = bytes(8) + struct.pack(">Q", seq)
        k1 = Cipher(algorithms.ChaCha20(key[32:], nonce), None).encryptor()
        length, body, tag = sender.encrypt(seq, header, bytes(12))
        assert length == k1.update(header)
        assert receiver.decrypt_length(seq, length) == 16 + step
        assert receiver.decrypt_length(seq, length) == 16 + step
        assert receiver.decrypt(seq, memoryview(b"".join((length, body, tag)))) == bytes(12)


def test_aes_gcm_invocation_counter_rfc5647() -> None:
    """The nonce's last 8 bytes count packets (RFC 5647 section 7.1), wrapping at
    2**64, and the length is the associated data."""
    key, iv = bytes(range(16)), b"\x01\x02\x03\x04" + b"\xff" * 8
    sender, receiver = AesGcm(key, iv), AesGcm(key, iv)
    nonces = [iv, b"\x01\x02\x03\x04" + bytes(8), b"\x01\x02\x03\x04" + bytes(7) + b"\x01"]
    for n, nonce in enumerate(nonces):
        header, body = struct.pack(">I", 16), bytes([n]) * 16
        wire = b"".join(sender.encrypt(0, header, body))
        assert wire == header + AESGCM(key).encrypt(nonce, body, header)
        assert receiver.decrypt(0, memoryview(wire)) == body
    with pytest.raises(ProtocolError):
        AesGcm(key, iv).decrypt(0, memoryview(wire))  # a receiver out of step


def test_x25519_rfc7748_6_1() -> None:
    alice_private = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    alice_public = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    bob_private = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    bob_public = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    client = Curve25519(lambda n: alice_private)
    server = Curve25519(lambda n: bob_private)
    assert client.client_init() == alice_public
    assert server.server_reply(alice_public) == (bob_public, encode_mpint(int.from_bytes(shared)))
    assert client.client_finish(bob_public) == encode_mpint(int.from_bytes(shared))


def test_ed25519_rfc8032_test_1() -> None:
    secret = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = h(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    key = HostKey(ed25519.Ed25519PrivateKey.from_private_bytes(secret))
    blob = encode_string(b"ssh-ed25519") + encode_string(public)
    assert key.public_blob == blob
    assert key.sign(b"") == encode_string(b"ssh-ed25519") + encode_string(signature)
    assert verify_signature("ssh-ed25519", blob, key.sign(b""), b"")
    assert not verify_signature("ssh-ed25519", blob, key.sign(b""), b"x")
    assert not verify_signature("rsa-sha2-256", blob, key.sign(b""), b"")
    assert key.fingerprint == fingerprint(blob)
    digest = base64.b64decode(key.fingerprint.removeprefix("SHA256:") + "=")
    assert len(digest) == 32


def test_openssh_key_files_round_trip() -> None:
    for kind in ("ssh-ed25519", "ssh-rsa", *NIST_CURVES):
        key = HostKey.generate(kind, rsa_bits=2048)
        loaded = HostKey.from_openssh(key.to_openssh(b"secret"), b"secret")
        assert loaded.public_blob == key.public_blob
        for algorithm in key.algorithms:
            assert verify_signature(algorithm, key.public_blob, loaded.sign(b"m", algorithm), b"m")
        assert key.openssh_public("c").startswith(f"{key.key_type} AAAA")


# --- ECDSA (RFC 5656) -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(NIST_CURVES))
def test_ecdsa_keys_and_signatures_match_asyncssh(algorithm: str) -> None:
    """RFC 5656 section 3.1 blobs and signatures, checked both ways against AsyncSSH's
    independent encoder and verifier (and section 6.2.1's hash for each curve)."""
    identifier, curve, size = NIST_CURVES[algorithm]
    private = ec.derive_private_key(0x5EED, curve)
    key = HostKey(private)
    encoded = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert len(encoded) == 1 + 2 * size
    assert key.key_type == key.algorithm == algorithm
    assert key.algorithms == (algorithm,)
    assert key.public_blob == (
        encode_string(algorithm.encode()) + encode_string(identifier) + encode_string(encoded)
    )
    theirs = asyncssh.import_private_key(key.to_openssh())
    assert theirs.public_data == key.public_blob
    assert theirs.convert_to_public().verify(b"data", key.sign(b"data"))
    assert not theirs.convert_to_public().verify(b"other", key.sign(b"data"))
    signature = theirs.sign(b"data", algorithm.encode())
    assert verify_signature(algorithm, key.public_blob, signature, b"data")
    assert not verify_signature(algorithm, key.public_blob, signature, b"other")
    # The hash is the curve's: a SHA-256 signature over the same key is refused
    # unless the curve is P-256.
    r, s = decode_dss_signature(private.sign(b"data", ec.ECDSA(hashes.SHA256())))
    sha256_blob = encode_string(algorithm.encode()) + encode_string(
        encode_mpint(r) + encode_mpint(s)
    )
    assert verify_signature(algorithm, key.public_blob, sha256_blob, b"data") == (size == 32)


def _ecdsa_signature(algorithm: str, r_bytes: bytes, s_bytes: bytes) -> bytes:
    return encode_string(algorithm.encode()) + encode_string(
        encode_string(r_bytes) + encode_string(s_bytes)
    )


@pytest.mark.parametrize("algorithm", sorted(NIST_CURVES))
def test_ecdsa_size_caps(algorithm: str) -> None:
    """Q is at most an uncompressed point (65, 97, 133 bytes) and r and s at most the
    coordinate size plus a sign byte (33, 49, 67 bytes); one byte more is refused."""
    _, _, size = NIST_CURVES[algorithm]
    key = HostKey.generate(algorithm)
    reader = Reader(key.sign(b"m"))
    reader.string("name")
    inner = Reader(reader.string("signature"))
    r, s = inner.string("r"), inner.string("s")
    widest = size + 1
    padded = _ecdsa_signature(algorithm, r.rjust(widest, b"\0"), s.rjust(widest, b"\0"))
    assert verify_signature(algorithm, key.public_blob, padded, b"m")
    too_wide = _ecdsa_signature(algorithm, r.rjust(widest + 1, b"\0"), s)
    assert not verify_signature(algorithm, key.public_blob, too_wide, b"m")
    too_wide = _ecdsa_signature(algorithm, r, s.rjust(widest + 1, b"\0"))
    assert not verify_signature(algorithm, key.public_blob, too_wide, b"m")
    blob = Reader(key.public_blob)
    blob.string("type")
    blob.string("curve")
    point = blob.string("point")
    assert len(point) == 1 + 2 * size
    long_point = key.public_blob[: -len(point) - 4] + encode_string(point + b"\0")
    assert not verify_signature(algorithm, long_point, key.sign(b"m"), b"m")


@pytest.mark.parametrize("algorithm", sorted(NIST_CURVES))
def test_ecdsa_curve_name_must_match_the_key_type(algorithm: str) -> None:
    """RFC 5656 section 3.1: the identifier names the type's curve (OpenSSH sshkey.c
    refuses a mismatch with SSH_ERR_EC_CURVE_MISMATCH), even for a valid point."""
    key = HostKey.generate(algorithm)
    identifier = NIST_CURVES[algorithm][0]
    signature = key.sign(b"m")
    assert verify_signature(algorithm, key.public_blob, signature, b"m")
    for other, _, _ in NIST_CURVES.values():
        if other != identifier:
            blob = key.public_blob.replace(encode_string(identifier), encode_string(other), 1)
            assert not verify_signature(algorithm, blob, signature, b"m")
    # Nor does a key type sign for another's algorithm.
    for other_algorithm in NIST_CURVES:
        if other_algorithm != algorithm:
            assert not verify_signature(other_algorithm, key.public_blob, signature, b"m")
            with pytest.raises(ValueError, match="cannot sign"):
                key.sign(b"m", other_algorithm)


@settings(max_examples=200, deadline=None)
@given(
    algorithm=st.sampled_from(sorted(NIST_CURVES)),
    identifier=st.sampled_from([b"nistp256", b"nistp384", b"nistp521", b""]),
    point=st.binary(max_size=140),
    r=st.binary(max_size=70),
    s=st.binary(max_size=70),
    tail=st.binary(max_size=3),
)
def test_ecdsa_blobs_of_arbitrary_bytes_are_false_never_an_error(
    *, algorithm: str, identifier: bytes, point: bytes, r: bytes, s: bytes, tail: bytes
) -> None:
    """Whatever the point, curve, r and s, and trailing bytes: ``False``, no exception."""
    blob = encode_string(algorithm.encode()) + encode_string(identifier) + encode_string(point)
    signature = _ecdsa_signature(algorithm, r, s)
    assert verify_signature(algorithm, blob + tail, signature + tail, b"m") is False
    assert verify_signature(algorithm, blob[:-1], signature, b"m") is False
