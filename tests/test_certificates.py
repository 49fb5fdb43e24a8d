"""OpenSSH user certificates (PROTOCOL.certkeys) in ServerAuth, made by ssh-keygen at test time."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pytest

from ptycore._wire import encode_boolean, encode_string, encode_text
from ptycore.auth import (
    AuthenticationSucceeded,
    AuthResult,
    LoginRestrictions,
    PeerAuthenticator,
    ServerAuth,
    SimpleAuthenticator,
)
from ptycore.transport import HostKey, verify_signature

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")

SESSION_ID = b"session id for certificates"
NOW = 1_800_000_000.0  # 2027-01-15


@dataclass
class Keys:
    ca: bytes
    user: HostKey
    directory: Path

    def certificate(self, *options: str, name: str = "cert", kind: str = "ed25519") -> bytes:
        """Sign the user key (or a new one of ``kind``) with the CA; the certificate blob."""
        key = self.directory / f"{name}"
        if not key.exists():
            if kind == "ed25519":
                key.write_bytes(self.user.to_openssh())
                key.chmod(0o600)
                Path(f"{key}.pub").write_text(self.user.openssh_public() + "\n")
            else:
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)],
                    check=True,
                    timeout=30,
                )
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-s",
                str(self.directory / "ca"),
                "-I",
                "test-id",
                *options,
                f"{key}.pub",
            ],
            check=True,
            timeout=30,
        )
        return base64.b64decode(Path(f"{key}-cert.pub").read_text().split()[1])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / "ca")],
        check=True,
        timeout=30,
    )
    ca = base64.b64decode((directory / "ca.pub").read_text().split()[1])
    return Keys(ca=ca, user=HostKey.generate(), directory=directory)


def server(keys: Keys, authenticator: object | None = None) -> ServerAuth:
    auth = authenticator or SimpleAuthenticator(trusted_user_cas=[keys.ca], clock=lambda: NOW)
    return ServerAuth(auth, session_id=SESSION_ID, verify=verify_signature)  # type: ignore[arg-type]


def signed(
    cert: bytes,
    key: HostKey,
    algorithm: str = "ssh-ed25519-cert-v01@openssh.com",
    user: str = "alice",
) -> bytes:
    head = (
        b"\x32"
        + encode_text(user)
        + encode_text("ssh-connection")
        + encode_text("publickey")
        + encode_boolean(True)
        + encode_text(algorithm)
        + encode_string(cert)
    )
    return head + encode_string(key.sign(encode_string(SESSION_ID) + head))


def succeeded(auth: ServerAuth, payload: bytes) -> bool:
    events = auth.receive_payload(payload)
    return events == [AuthenticationSucceeded(username="alice", method="publickey")]


def test_a_valid_user_certificate_logs_in(keys: Keys) -> None:
    cert = keys.certificate("-n", "alice,bob", "-V", "20260101:20280101")
    assert succeeded(server(keys), signed(cert, keys.user))


def test_query_gets_pk_ok(keys: Keys) -> None:
    cert = keys.certificate("-n", "alice", name="query")
    auth = server(keys)
    algorithm = "ssh-ed25519-cert-v01@openssh.com"
    query = (
        b"\x32"
        + encode_text("alice")
        + encode_text("ssh-connection")
        + encode_text("publickey")
        + encode_boolean(False)
        + encode_text(algorithm)
        + encode_string(cert)
    )
    assert auth.receive_payload(query) == []
    assert auth.payloads_to_send() == [b"\x3c" + encode_text(algorithm) + encode_string(cert)]


@pytest.mark.parametrize(
    "options",
    [
        ("-n", "bob"),  # alice is not a principal
        ("-n", "alice", "-V", "20000101:20000102"),  # expired
        ("-n", "alice", "-O", "critical:frob=bar"),  # an unknown critical option
        ("-n", "alice", "-O", "source-address=10.0.0.0/8"),  # no address bound
        ("-n", "alice", "-h"),  # a host certificate
    ],
    ids=["principal", "expired", "unknown-critical-option", "source-address", "host-certificate"],
)
def test_policy_failures(keys: Keys, options: tuple[str, ...]) -> None:
    cert = keys.certificate(*options, name="-".join(options).replace("/", "_"))
    assert not succeeded(server(keys), signed(cert, keys.user))


def test_untrusted_ca_and_tampering_fail(keys: Keys) -> None:
    cert = keys.certificate("-n", "alice", name="tamper")
    stranger = SimpleAuthenticator(
        trusted_user_cas=[HostKey.generate().public_blob], clock=lambda: NOW
    )
    assert not succeeded(server(keys, stranger), signed(cert, keys.user))
    tampered = cert.replace(b"test-id", b"evil-id")
    assert not succeeded(server(keys), signed(tampered, keys.user))
    # The certificate is fine but the request is signed by another key.
    assert not succeeded(server(keys), signed(cert, HostKey.generate()))


def test_authenticators_without_certificate_support_refuse(keys: Keys) -> None:
    class KeysOnly:
        def methods_for(self, username: str) -> Collection[str]:
            return ["publickey"]

        def check_public_key(
            self, username: str, algorithm: str, public_blob: bytes
        ) -> AuthResult:
            return True

        def check_password(self, username: str, password: str) -> AuthResult:
            return False

        def start_keyboard_interactive(self, username: str, submethods: str) -> AuthResult:
            return False

        def answer_keyboard_interactive(
            self, username: str, responses: tuple[str, ...]
        ) -> AuthResult:
            return False

    cert = keys.certificate("-n", "alice", name="keysonly")
    assert not succeeded(server(keys, KeysOnly()), signed(cert, keys.user))


def test_rsa_certificate(keys: Keys) -> None:
    cert = keys.certificate("-n", "alice", name="rsa", kind="rsa")
    rsa_key = HostKey.from_openssh((keys.directory / "rsa").read_bytes())
    payload = signed(cert, rsa_key, algorithm="rsa-sha2-512-cert-v01@openssh.com")
    assert succeeded(server(keys), payload)


def test_simple_authenticator_needs_a_clock_for_cas() -> None:
    with pytest.raises(ValueError, match="clock"):
        SimpleAuthenticator(trusted_user_cas=[b"ca"])


def logged_in_with(auth: ServerAuth, payload: bytes) -> LoginRestrictions | None:
    events = auth.receive_payload(payload)
    if not events or not isinstance(events[0], AuthenticationSucceeded):
        return None
    return events[0].restrictions


@pytest.mark.parametrize(
    ("options", "restrictions"),
    [
        (("-O", "force-command=echo forced"), LoginRestrictions(command="echo forced")),
        (
            ("-O", "clear"),  # no permit-* extension at all
            LoginRestrictions(pty=False, agent_forwarding=False, x11_forwarding=False),
        ),
        (
            ("-O", "clear", "-O", "permit-pty"),
            LoginRestrictions(agent_forwarding=False, x11_forwarding=False),
        ),
        (
            ("-O", "clear", "-O", "permit-agent-forwarding", "-O", "permit-X11-forwarding"),
            LoginRestrictions(pty=False),
        ),
        (("-O", "no-agent-forwarding"), LoginRestrictions(agent_forwarding=False)),
        (("-O", "no-x11-forwarding"), LoginRestrictions(x11_forwarding=False)),
        (("-O", "no-pty", "-O", "force-command=x"), LoginRestrictions(pty=False, command="x")),
    ],
    ids=[
        "force-command",
        "no-extensions",
        "permit-pty",
        "permit-forwarding",
        "no-agent-forwarding",
        "no-x11-forwarding",
        "no-pty-and-command",
    ],
)
def test_certificate_options_become_restrictions(
    keys: Keys, options: tuple[str, ...], restrictions: LoginRestrictions
) -> None:
    """auth-options.c sshauthopt_from_cert: only what the certificate grants."""
    cert = keys.certificate("-n", "alice", *options, name="-".join(options).replace(" ", "_"))
    assert logged_in_with(server(keys), signed(cert, keys.user)) == restrictions


@pytest.mark.parametrize(
    ("peer", "admitted"),
    [("127.0.0.1", True), ("::ffff:127.0.0.9", True), ("10.0.0.1", False), ("::1", False)],
)
def test_source_address_is_checked_against_the_bound_peer(
    keys: Keys, peer: str, admitted: bool
) -> None:
    cert = keys.certificate(
        "-n", "alice", "-O", "source-address=127.0.0.0/8,192.0.2.1", name="src"
    )
    authenticator = SimpleAuthenticator(trusted_user_cas=[keys.ca], clock=lambda: NOW)
    assert isinstance(authenticator, PeerAuthenticator)
    got = logged_in_with(server(keys, authenticator.for_peer(peer)), signed(cert, keys.user))
    assert (got == LoginRestrictions()) is admitted


@pytest.mark.parametrize(("user_bits", "ca_bits"), [(384, 521), (521, 384)])
def test_ecdsa_p384_and_p521_certificate_and_ca(
    tmp_path: Path, user_bits: int, ca_bits: int
) -> None:
    """ecdsa-sha2-nistp384/521-cert-v01 user certificates signed by a P-521 or P-384
    CA, all made by ssh-keygen: the CA signs with SHA-512 or SHA-384 (RFC 5656
    section 6.2.1)."""

    def keygen(name: str, bits: int) -> Path:
        path = tmp_path / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ecdsa", "-b", str(bits), "-N", "", "-f", str(path)],
            check=True,
            timeout=30,
        )
        return path

    ca, user = keygen("ca", ca_bits), keygen("user", user_bits)
    subprocess.run(
        ["ssh-keygen", "-q", "-s", str(ca), "-I", "id", "-n", "alice", f"{user}.pub"],
        check=True,
        timeout=30,
    )
    cert_line = Path(f"{user}-cert.pub").read_text().split()
    assert cert_line[0] == f"ecdsa-sha2-nistp{user_bits}-cert-v01@openssh.com"
    cert = base64.b64decode(cert_line[1])
    ca_blob = base64.b64decode(Path(f"{ca}.pub").read_text().split()[1])
    user_key = HostKey.from_openssh(user.read_bytes())
    authenticator = SimpleAuthenticator(trusted_user_cas=[ca_blob], clock=lambda: NOW)
    keys = Keys(ca=ca_blob, user=user_key, directory=tmp_path)
    payload = signed(cert, user_key, algorithm=cert_line[0])
    assert succeeded(server(keys, authenticator), payload)
    # Another CA's certificate for the same key: refused.
    other = SimpleAuthenticator(trusted_user_cas=[user_key.public_blob], clock=lambda: NOW)
    assert not succeeded(server(keys, other), payload)
