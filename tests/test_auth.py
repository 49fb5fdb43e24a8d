"""RFC 4252 / RFC 4256 user authentication over payloads: ServerAuth and ClientAuth."""

from __future__ import annotations

from collections.abc import Collection

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from ptycore import DisconnectReason, ProtocolError
from ptycore._wire import Reader, encode_boolean, encode_string, encode_text, encode_uint32
from ptycore.auth import (
    AuthConfig,
    AuthDecision,
    AuthenticationFailed,
    AuthenticationSucceeded,
    AuthResult,
    BannerReceived,
    Challenge,
    ClientAuth,
    Prompt,
    ServerAuth,
    SimpleAuthenticator,
)

SESSION_ID = bytes(range(32))


class Ed25519Key:
    """A client key: the UserKey protocol over cryptography's Ed25519."""

    algorithms = ("ssh-ed25519",)

    def __init__(self, seed: int) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_blob = encode_text("ssh-ed25519") + encode_string(raw)

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        return encode_text("ssh-ed25519") + encode_string(self._key.sign(data))


def verify(algorithm: str, blob: bytes, signature: bytes, data: bytes) -> bool:
    """An Ed25519-only verifier, independent of ptycore's transport."""
    if algorithm != "ssh-ed25519":
        return False
    key = Reader(blob)
    key.text("type")
    sig = Reader(signature)
    sig.text("type")
    try:
        Ed25519PublicKey.from_public_bytes(key.string("key")).verify(sig.string("sig"), data)
    except InvalidSignature:
        return False
    return True


KEY = Ed25519Key(1)
OTHER_KEY = Ed25519Key(2)


def server(config: AuthConfig | None = None) -> ServerAuth:
    authenticator = SimpleAuthenticator(
        passwords={"alice": "secret"}, authorized_keys={"alice": [KEY.public_blob]}
    )
    return ServerAuth(authenticator, session_id=SESSION_ID, verify=verify, config=config)


def request(user: str, method: str, fields: bytes = b"", service: str = "ssh-connection") -> bytes:
    return b"\x32" + encode_text(user) + encode_text(service) + encode_text(method) + fields


def password(value: str) -> bytes:
    return encode_boolean(False) + encode_text(value)


def failure(methods: str, partial: bool = False) -> bytes:
    return b"\x33" + encode_text(methods) + encode_boolean(partial)


ALL = "publickey,password,keyboard-interactive"


def run_pair(client: ClientAuth, srv: ServerAuth) -> list[object]:
    """Shuttle payloads until both sides are quiet; SERVICE_REQUEST is answered here."""
    events: list[object] = []
    to_server = client.payloads_to_send()
    assert to_server[0] == b"\x05" + encode_text("ssh-userauth")
    events += client.receive_payload(b"\x06" + encode_text("ssh-userauth"))
    to_server = client.payloads_to_send()
    while to_server:
        for payload in to_server:
            events += srv.receive_payload(payload)
        for payload in srv.payloads_to_send():
            events += client.receive_payload(payload)
        to_server = client.payloads_to_send()
    return events


def test_none_then_password_succeeds() -> None:
    srv = server()
    assert srv.receive_payload(request("alice", "none")) == []
    assert srv.payloads_to_send() == [failure(ALL)]
    assert srv.failures == 0  # the first "none" is free (auth2.c userauth_finish)
    events = srv.receive_payload(request("alice", "password", password("secret")))
    assert events == [AuthenticationSucceeded(username="alice", method="password")]
    assert srv.payloads_to_send() == [b"\x34"]
    assert srv.authenticated
    # RFC 4252 5.1: later requests are ignored.
    assert srv.receive_payload(request("alice", "none")) == []
    assert srv.payloads_to_send() == []


def test_wrong_password_fails_and_counts() -> None:
    srv = server()
    events = srv.receive_payload(request("alice", "password", password("nope")))
    assert events == [AuthenticationFailed(username="alice", method="password")]
    assert srv.payloads_to_send() == [failure(ALL)]
    assert srv.failures == 1


def test_password_change_request_is_refused() -> None:
    srv = server()
    fields = encode_boolean(True) + encode_text("secret") + encode_text("new")
    srv.receive_payload(request("alice", "password", fields))
    assert srv.payloads_to_send() == [failure(ALL)]
    assert not srv.authenticated


def test_overlong_password_fails_unchecked() -> None:
    class Counting(SimpleAuthenticator):
        calls = 0

        def check_password(self, username: str, password: str) -> AuthResult:
            Counting.calls += 1
            return True

    srv = ServerAuth(Counting(passwords={"a": "x"}), session_id=SESSION_ID, verify=verify)
    srv.receive_payload(request("a", "password", password("x" * 1025)))
    assert srv.payloads_to_send() == [failure(ALL)]
    assert Counting.calls == 0


def test_max_tries_disconnects_on_the_sixth_failure() -> None:
    srv = server()
    srv.receive_payload(request("alice", "none"))
    for _ in range(5):
        srv.receive_payload(request("alice", "password", password("wrong")))
    assert len(srv.payloads_to_send()) == 6
    with pytest.raises(ProtocolError) as info:
        srv.receive_payload(request("alice", "password", password("wrong")))
    assert info.value.reason is DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE
    assert srv.payloads_to_send() == []  # no FAILURE: the DISCONNECT replaces it


def test_max_tries_is_configurable() -> None:
    srv = server(AuthConfig(max_tries=1))
    srv.receive_payload(request("alice", "none"))
    with pytest.raises(ProtocolError):
        srv.receive_payload(request("alice", "password", password("wrong")))


def test_user_name_change_disconnects() -> None:
    srv = server()
    srv.receive_payload(request("alice", "none"))
    with pytest.raises(ProtocolError, match="change of user name"):
        srv.receive_payload(request("bob", "none"))


def test_unknown_service_disconnects() -> None:
    with pytest.raises(ProtocolError) as info:
        server().receive_payload(request("alice", "none", service="ssh-other"))
    assert info.value.reason is DisconnectReason.SERVICE_NOT_AVAILABLE


def test_banner_goes_before_the_first_reply_only() -> None:
    srv = server(AuthConfig(banner="Welcome\r\n"))
    srv.receive_payload(request("alice", "none"))
    assert srv.payloads_to_send() == [
        b"\x35" + encode_text("Welcome\r\n") + encode_string(b""),
        failure(ALL),
    ]
    srv.receive_payload(request("alice", "none"))
    assert srv.payloads_to_send() == [failure(ALL)]


def test_publickey_query_gets_pk_ok_and_is_not_counted() -> None:
    srv = server()
    fields = encode_boolean(False) + encode_text("ssh-ed25519") + encode_string(KEY.public_blob)
    assert srv.receive_payload(request("alice", "publickey", fields)) == []
    assert srv.payloads_to_send() == [
        b"\x3c" + encode_text("ssh-ed25519") + encode_string(KEY.public_blob)
    ]
    assert srv.failures == 0


def test_publickey_query_for_an_unknown_key_fails() -> None:
    srv = server()
    fields = (
        encode_boolean(False) + encode_text("ssh-ed25519") + encode_string(OTHER_KEY.public_blob)
    )
    srv.receive_payload(request("alice", "publickey", fields))
    assert srv.payloads_to_send() == [failure(ALL)]


def signed_request(key: Ed25519Key, user: str = "alice", session_id: bytes = SESSION_ID) -> bytes:
    head = request(user, "publickey", encode_boolean(True) + encode_text(key.algorithms[0]))
    head += encode_string(key.public_blob)
    return head + encode_string(key.sign(encode_string(session_id) + head))


def test_publickey_signature_succeeds() -> None:
    srv = server()
    events = srv.receive_payload(signed_request(KEY))
    assert events == [AuthenticationSucceeded(username="alice", method="publickey")]
    assert srv.payloads_to_send() == [b"\x34"]


def test_publickey_signature_over_another_session_fails() -> None:
    srv = server()
    srv.receive_payload(signed_request(KEY, session_id=b"another session"))
    assert srv.payloads_to_send() == [failure(ALL)]


@pytest.mark.parametrize(
    ("algorithm", "blob"),
    [
        ("ssh-rsa", KEY.public_blob),  # SHA-1 RSA is not accepted
        ("rsa-sha2-256", KEY.public_blob),  # algorithm does not match the key type
        ("ssh-ed25519", b"\xff\xff"),  # malformed blob
    ],
)
def test_publickey_algorithm_must_fit_the_key(algorithm: str, blob: bytes) -> None:
    srv = server()
    fields = encode_boolean(False) + encode_text(algorithm) + encode_string(blob)
    srv.receive_payload(request("alice", "publickey", fields))
    assert srv.payloads_to_send() == [failure(ALL)]


def test_truncated_request_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        server().receive_payload(request("alice", "password", encode_boolean(False)))
    with pytest.raises(ProtocolError):
        server().receive_payload(request("alice", "password", password("x") + b"junk"))


def test_partial_success_lists_the_remaining_methods() -> None:
    class TwoFactor(SimpleAuthenticator):
        def __init__(self) -> None:
            super().__init__(
                passwords={"alice": "secret"}, authorized_keys={"alice": [KEY.public_blob]}
            )
            self.key_done = False

        def methods_for(self, username: str) -> Collection[str]:
            return ["password"] if self.key_done else ["publickey"]

        def check_public_key(
            self, username: str, algorithm: str, public_blob: bytes
        ) -> AuthResult:
            self.key_done = super().check_public_key(username, algorithm, public_blob) is True
            return AuthDecision.PARTIAL if self.key_done else False

    srv = ServerAuth(TwoFactor(), session_id=SESSION_ID, verify=verify)
    events = srv.receive_payload(signed_request(KEY))
    assert events == [AuthenticationFailed(username="alice", method="publickey", partial=True)]
    assert srv.payloads_to_send() == [failure("password", partial=True)]
    assert srv.failures == 0
    srv.receive_payload(request("alice", "password", password("secret")))
    assert srv.authenticated


def kbdint(submethods: str = "") -> bytes:
    return encode_string(b"") + encode_text(submethods)


def info_response(*answers: str) -> bytes:
    return b"\x3d" + encode_uint32(len(answers)) + b"".join(encode_text(a) for a in answers)


def test_keyboard_interactive_asks_for_the_password() -> None:
    srv = server()
    assert srv.receive_payload(request("alice", "keyboard-interactive", kbdint())) == []
    assert srv.payloads_to_send() == [
        b"\x3c"
        + encode_text("")
        + encode_text("")
        + encode_string(b"")
        + encode_uint32(1)
        + encode_text("Password: ")
        + encode_boolean(False)
    ]
    events = srv.receive_payload(info_response("secret"))
    assert events == [AuthenticationSucceeded(username="alice", method="keyboard-interactive")]


def test_keyboard_interactive_wrong_number_of_answers_disconnects() -> None:
    srv = server()
    srv.receive_payload(request("alice", "keyboard-interactive", kbdint()))
    with pytest.raises(ProtocolError, match="responses"):
        srv.receive_payload(info_response("a", "b"))


def test_info_response_without_a_challenge_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        server().receive_payload(info_response())


def test_a_new_request_abandons_keyboard_interactive() -> None:
    srv = server()
    srv.receive_payload(request("alice", "keyboard-interactive", kbdint()))
    srv.receive_payload(request("alice", "none"))
    srv.payloads_to_send()
    with pytest.raises(ProtocolError):
        srv.receive_payload(info_response("secret"))


def test_client_and_server_by_key() -> None:
    client = ClientAuth("alice", session_id=SESSION_ID, keys=[OTHER_KEY, KEY], password="no")
    events = run_pair(client, server())
    assert events[-1] == AuthenticationSucceeded(username="alice", method="publickey")
    assert client.authenticated


def test_client_and_server_by_password_after_a_wrong_key() -> None:
    client = ClientAuth("alice", session_id=SESSION_ID, keys=[OTHER_KEY], password="secret")
    events = run_pair(client, server(AuthConfig(banner="hi")))
    assert events[0] == BannerReceived(message="hi", language="")
    assert events[-1] == AuthenticationSucceeded(username="alice", method="password")


def test_client_keyboard_interactive() -> None:
    seen: list[Challenge] = []

    def respond(challenge: Challenge) -> list[str]:
        seen.append(challenge)
        return ["secret"]

    client = ClientAuth("alice", session_id=SESSION_ID, respond=respond)
    events = run_pair(client, server())
    assert seen == [Challenge(prompts=(Prompt(text="Password: "),))]
    assert events[-1] == AuthenticationSucceeded(username="alice", method="keyboard-interactive")


def test_client_gives_up_when_nothing_is_left() -> None:
    client = ClientAuth("alice", session_id=SESSION_ID, password="wrong")
    with pytest.raises(ProtocolError) as info:
        run_pair(client, server())
    assert info.value.reason is DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE


def test_client_rejects_unexpected_messages() -> None:
    client = ClientAuth("alice", session_id=SESSION_ID)
    with pytest.raises(ProtocolError):
        client.receive_payload(b"\x34")  # SUCCESS before SERVICE_ACCEPT


def test_client_asks_a_password_supplier_only_when_needed() -> None:
    asked: list[str] = []

    def supplier() -> str:
        asked.append("asked")
        return "secret"

    client = ClientAuth("alice", session_id=SESSION_ID, keys=[KEY], password=supplier)
    run_pair(client, server())
    assert asked == []  # the key was enough
    client = ClientAuth("alice", session_id=SESSION_ID, password=supplier)
    events = run_pair(client, server())
    assert events[-1] == AuthenticationSucceeded(username="alice", method="password")
    assert asked == ["asked"]


STEPS = {
    "none": request("alice", "none"),
    "good password": request("alice", "password", password("secret")),
    "bad password": request("alice", "password", password("guess")),
    "good query": request(
        "alice",
        "publickey",
        encode_boolean(False) + encode_text("ssh-ed25519") + encode_string(KEY.public_blob),
    ),
    "bad query": request(
        "alice",
        "publickey",
        encode_boolean(False) + encode_text("ssh-ed25519") + encode_string(OTHER_KEY.public_blob),
    ),
    "good signature": signed_request(KEY),
    "replayed signature": signed_request(KEY, session_id=b"another session"),
    "kbdint": request("alice", "keyboard-interactive", encode_string(b"") + encode_string(b"")),
    "good answer": info_response("secret"),
    "bad answer": info_response("guess"),
}


@given(st.lists(st.sampled_from(sorted(STEPS)), max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_sequence_of_attempts_follows_openssh_rules(steps: list[str]) -> None:
    """Authenticated exactly after a good credential; at most MaxAuthTries failures."""
    srv = server()
    failures = 0
    kbdint_pending = False
    for number, step in enumerate(steps, 1):
        answer = step in ("good answer", "bad answer")
        if answer and not kbdint_pending:
            with pytest.raises(ProtocolError):
                srv.receive_payload(STEPS[step])
            return
        expect_success = step in ("good password", "good signature", "good answer")
        free = (step == "none" and number == 1) or step in ("good query", "kbdint")
        if not expect_success and not free:
            failures += 1
        if failures >= 6:
            with pytest.raises(ProtocolError, match="Too many"):
                srv.receive_payload(STEPS[step])
            return
        srv.receive_payload(STEPS[step])
        srv.payloads_to_send()
        kbdint_pending = step == "kbdint"
        assert srv.authenticated is expect_success
        assert srv.failures == failures
        if expect_success:
            return
