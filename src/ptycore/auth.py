"""User authentication (RFC 4252, RFC 4256), sans-IO, for servers and clients.

Payloads in, payloads out: the transport below encrypts them, the connection object
above (:class:`~ptycore.server.ServerConnection`) routes message numbers 50-79 here.

Every server decision is made by an :class:`Authenticator` that the adapter supplies.
Its methods are synchronous: the core never waits. That is deliberate. OpenSSH's
preauth process also blocks on each decision (it asks its privileged monitor and
waits), and ptycore has no I/O to interleave, so an adapter that needs a slow check
(bcrypt, PAM, an LDAP query) runs :meth:`ServerConnection.receive_data
<ptycore.server.ServerConnection.receive_data>` in a worker thread
(``anyio.to_thread.run_sync``, ``deferToThread``): one connection's core is only
ever touched by one thread at a time, so nothing else needs locking, and the
protocol needs no half-decided states that a forgotten ``accept`` could strand.

OpenSSH's rules, with the source they come from:

- at most :attr:`AuthConfig.max_tries` (``MaxAuthTries``, 6) failures; the first
  ``none`` request is free (``auth2.c`` ``userauth_finish``); the next failure
  disconnects instead of answering (``auth.c`` ``auth_maxtries_exceeded``);
- the user name and service may not change between requests (``auth2.c``
  ``input_userauth_request``: "Change of username or service not allowed");
- a password longer than 1024 bytes fails without asking the authenticator
  (``auth-passwd.c`` ``MAX_PASSWORD_LEN``); a password change request fails
  (``auth2-passwd.c``: "password change not supported");
- ``ssh-rsa`` signatures (SHA-1) are refused, as OpenSSH 8.8 and later do by
  default; RSA keys sign with ``rsa-sha2-256`` or ``rsa-sha2-512`` (RFC 8332);
- the banner goes out before the reply to the first request (``auth2.c``
  ``userauth_banner``);
- certificates: only user certificates whose CA signature verifies, never with
  SHA-1 (``CASignatureAlgorithms``), and only when the authenticator decides on
  them (:class:`CertificateAuthenticator`).
"""

from __future__ import annotations

import copy
import enum
import hmac
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias, runtime_checkable

from ._certs import CERTIFICATE_ALGORITHMS, USER_CERTIFICATE, Certificate, parse_certificate
from ._errors import DisconnectReason, ProtocolError
from ._wire import Reader, encode_boolean, encode_string, encode_text, encode_uint32
from .keyoptions import UNRESTRICTED, LoginRestrictions, certificate_options

__all__ = [
    "SERVICE_CONNECTION",
    "SERVICE_USERAUTH",
    "AuthConfig",
    "AuthDecision",
    "AuthEvent",
    "AuthResult",
    "AuthenticationFailed",
    "AuthenticationSucceeded",
    "Authenticator",
    "BannerReceived",
    "Certificate",
    "CertificateAuthenticator",
    "Challenge",
    "ClientAuth",
    "LoginRestrictions",
    "PasswordPrompt",
    "PeerAuthenticator",
    "Prompt",
    "ServerAuth",
    "SignatureVerifier",
    "SimpleAuthenticator",
    "UserKey",
]

# RFC 4252 section 6 and RFC 4256 section 5: message numbers.
MSG_SERVICE_REQUEST: Final = 5
MSG_SERVICE_ACCEPT: Final = 6
MSG_USERAUTH_REQUEST: Final = 50
MSG_USERAUTH_FAILURE: Final = 51
MSG_USERAUTH_SUCCESS: Final = 52
MSG_USERAUTH_BANNER: Final = 53
MSG_USERAUTH_PK_OK: Final = 60
MSG_USERAUTH_INFO_REQUEST: Final = 60
MSG_USERAUTH_INFO_RESPONSE: Final = 61

SERVICE_USERAUTH: Final = "ssh-userauth"
SERVICE_CONNECTION: Final = "ssh-connection"

METHODS: Final = ("publickey", "password", "keyboard-interactive")
"""The methods a server can offer, in the order OpenSSH lists them (``auth2.c``
``authmethods``)."""

PUBLIC_KEY_ALGORITHMS: Final = {
    # algorithm name -> key type inside the public key blob (RFC 8332 section 3:
    # rsa-sha2-* signatures are made with "ssh-rsa" keys).
    "ssh-ed25519": "ssh-ed25519",
    "rsa-sha2-512": "ssh-rsa",
    "rsa-sha2-256": "ssh-rsa",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
}
"""Public key algorithms a server verifies; ``ssh-rsa`` (SHA-1) is left out as in
OpenSSH 8.8's default ``PubkeyAcceptedAlgorithms``."""

MAX_PASSWORD_LENGTH: Final = 1024
"""auth-passwd.c ``MAX_PASSWORD_LEN``: longer passwords fail unchecked."""

MAX_NAME_LENGTH: Final = 1024
"""Cap on user, service and method names; OpenSSH's only cap is the packet size,
and Linux user names are at most 32 bytes."""

MAX_KEY_BLOB_LENGTH: Final = 16384
"""Cap on a public key or signature blob (OpenSSH's ``SSHBUF_MAX_BIGNUM`` is 16 KiB:
an RSA key of 16384 bits has a 2 KiB modulus)."""

MAX_PROMPTS: Final = 100
"""auth2-chall.c refuses more than 100 keyboard-interactive responses ("too many
replies"); ptycore caps the prompts it sends and the answers it takes alike."""


class AuthDecision(enum.Enum):
    """What an :class:`Authenticator` decided about one attempt."""

    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL = "partial"
    """This method passed, but more are needed (RFC 4252 section 5.1, ``partial
    success``; OpenSSH's ``AuthenticationMethods``). The methods that can continue
    come from :meth:`Authenticator.methods_for`, which should then leave this one out."""


AuthResult: TypeAlias = bool | AuthDecision | LoginRestrictions
"""``True`` is :attr:`AuthDecision.SUCCESS`, ``False`` :attr:`AuthDecision.FAILURE`;
a :class:`LoginRestrictions` is a success under those restrictions."""


def _decision(result: AuthResult) -> AuthDecision:
    if isinstance(result, AuthDecision):
        return result
    if isinstance(result, LoginRestrictions):
        return AuthDecision.SUCCESS
    return AuthDecision.SUCCESS if result else AuthDecision.FAILURE


def _restrictions(result: AuthResult) -> LoginRestrictions:
    return result if isinstance(result, LoginRestrictions) else UNRESTRICTED


@dataclass(frozen=True, kw_only=True, slots=True)
class Prompt:
    """One keyboard-interactive prompt (RFC 4256 section 3.2)."""

    text: str
    echo: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Challenge:
    """A keyboard-interactive ``SSH_MSG_USERAUTH_INFO_REQUEST`` (RFC 4256 section 3.2)."""

    name: str = ""
    instruction: str = ""
    prompts: tuple[Prompt, ...] = ()

    def __post_init__(self) -> None:
        if len(self.prompts) > MAX_PROMPTS:
            raise ValueError(f"at most {MAX_PROMPTS} prompts, got {len(self.prompts)}")


class Authenticator(Protocol):
    """The server's policy: who may log in, and how. All methods are synchronous."""

    def methods_for(self, username: str) -> Collection[str]:
        """The methods ``username`` may still use: a subset of ``publickey``,
        ``keyboard-interactive`` and ``password``. Asked before each attempt and for
        every USERAUTH_FAILURE's list of methods that can continue."""
        ...

    def check_public_key(self, username: str, algorithm: str, public_blob: bytes) -> AuthResult:
        """Whether this key may log in as ``username``. Asked for a query (the
        answer decides PK_OK) and again before a signature is verified; the key's
        signature has not been checked when this runs."""
        ...

    def check_password(self, username: str, password: str) -> AuthResult:
        """Whether the password is right (compare in constant time)."""
        ...

    def start_keyboard_interactive(self, username: str, submethods: str) -> Challenge | AuthResult:
        """Begin keyboard-interactive: a challenge to send, or a decision now."""
        ...

    def answer_keyboard_interactive(
        self, username: str, responses: tuple[str, ...]
    ) -> Challenge | AuthResult:
        """The answers to the last challenge: another challenge, or a decision."""
        ...


@runtime_checkable
class CertificateAuthenticator(Authenticator, Protocol):
    """An :class:`Authenticator` that also accepts OpenSSH user certificates.

    Without this method certificates are refused. The core has checked the
    certificate's structure, that it is a user certificate, and the CA's signature;
    the policy is this method's: a trusted CA (``TrustedUserCAKeys``), ``username``
    among the principals, the validity window on a wall clock, and critical options
    the adapter can enforce (sshd refuses any it does not know).
    """

    def check_certificate(self, username: str, certificate: Certificate) -> AuthResult:
        """Whether this certificate may log in as ``username``."""
        ...


@runtime_checkable
class PeerAuthenticator(Protocol):
    """An authenticator that decides by the client's address too (``from=`` in
    ``authorized_keys``). :class:`~ptycore.server.ServerConnection`, given the
    client's ``peer_address``, authenticates with ``for_peer(peer_address)``."""

    def for_peer(self, address: str) -> Authenticator:
        """The authenticator for one connection from ``address`` (an IP address as
        text, IPv6 without brackets)."""
        ...


class _ChecksPasswords(Protocol):
    def check_password(self, username: str, password: str) -> AuthResult: ...


class PasswordPrompt:
    """Keyboard-interactive as OpenSSH does it with ``KbdInteractiveAuthentication``
    and no PAM: one ``Password:`` prompt, not echoed, whose answer goes to the
    authenticator's own ``check_password``. A mixin for :class:`Authenticator`
    classes that check passwords."""

    __slots__ = ()

    def start_keyboard_interactive(self, username: str, submethods: str) -> Challenge | AuthResult:
        """Ask for the password."""
        return Challenge(prompts=(Prompt(text="Password: ", echo=False),))

    def answer_keyboard_interactive(
        self: _ChecksPasswords, username: str, responses: tuple[str, ...]
    ) -> Challenge | AuthResult:
        """The one answer must be the password."""
        if len(responses) != 1:
            return False
        result = self.check_password(username, responses[0])
        return result if _decision(result) is AuthDecision.SUCCESS else False


class SimpleAuthenticator(PasswordPrompt):
    """An :class:`Authenticator` over a table of passwords and of authorized keys.

    ``authorized_keys`` maps a user to the public key blobs (the base64-decoded
    middle field of an ``authorized_keys`` line) that may log in; ``passwords``
    maps a user to a password, compared in constant time. Keyboard-interactive
    asks for the password, as OpenSSH does with ``KbdInteractiveAuthentication``
    and no PAM. Certificates signed by one of ``trusted_user_cas`` (CA public key
    blobs, sshd's ``TrustedUserCAKeys``) log in a user named among their
    principals while ``clock()`` (seconds since the epoch, ``time.time`` in an
    adapter) is inside their validity window, with what the certificate grants
    (:func:`ptycore.keyoptions.certificate_options`: a PTY only with
    ``permit-pty``, its ``force-command``, its ``source-address`` checked against
    the address :meth:`for_peer` was given, as a :class:`PeerAuthenticator`).
    """

    def __init__(
        self,
        *,
        passwords: Mapping[str, str] | None = None,
        authorized_keys: Mapping[str, Iterable[bytes]] | None = None,
        trusted_user_cas: Iterable[bytes] = (),
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._passwords = dict(passwords or {})
        self._keys = {user: frozenset(blobs) for user, blobs in (authorized_keys or {}).items()}
        self._cas = frozenset(trusted_user_cas)
        if self._cas and clock is None:
            raise ValueError("trusted_user_cas needs a clock for the validity windows")
        self._clock = clock
        self._peer_address: str | None = None

    def for_peer(self, address: str) -> SimpleAuthenticator:
        """The same tables, for a connection from ``address`` (``source-address``);
        itself when it trusts no CA (nothing then depends on the address)."""
        if not self._cas:
            return self
        bound = copy.copy(self)
        bound._peer_address = address
        return bound

    def check_certificate(self, username: str, certificate: Certificate) -> AuthResult:
        clock = self._clock
        if not (
            certificate.ca_blob in self._cas
            and clock is not None
            and username in certificate.principals
        ):
            return False
        now = clock()
        if not certificate.valid_at(now):
            return False
        try:
            options = certificate_options(certificate)
        except ValueError:
            return False
        if options.refusal(peer_address=self._peer_address, now=now) is not None:
            return False
        return options.restrictions

    def methods_for(self, username: str) -> Collection[str]:
        methods = ["publickey"]
        if self._passwords:
            methods += ["keyboard-interactive", "password"]
        return methods

    def check_public_key(self, username: str, algorithm: str, public_blob: bytes) -> AuthResult:
        return public_blob in self._keys.get(username, frozenset())

    def check_password(self, username: str, password: str) -> AuthResult:
        expected = self._passwords.get(username)
        # Compare even for unknown users, so timing does not tell which exist.
        ok = hmac.compare_digest(
            password.encode("utf-8", "surrogateescape"),
            (expected if expected is not None else "\0").encode("utf-8", "surrogateescape"),
        )
        return ok and expected is not None


SignatureVerifier: TypeAlias = Callable[[str, bytes, bytes, bytes], bool]
"""``verify(algorithm, public_blob, signature_blob, data) -> bool``: whether
``signature_blob`` (``string algorithm, string signature``, RFC 4253 section 6.6) is
a valid ``algorithm`` signature of ``data`` by the key ``public_blob``. Malformed
blobs are ``False``, never an exception."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthConfig:
    """Server authentication limits, with OpenSSH's defaults."""

    max_tries: int = 6
    """``MaxAuthTries``: failed attempts before the connection is dropped."""
    login_grace_time: float = 120.0
    """``LoginGraceTime`` in seconds from the connection's start; 0 disables it."""
    banner: str | None = None
    """``Banner``: text sent before the reply to the first request."""

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if self.login_grace_time < 0:
            raise ValueError("login_grace_time must not be negative")


# --- events -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthenticationSucceeded:
    """The user is logged in (server: we sent SUCCESS; client: we received it)."""

    username: str
    method: str
    restrictions: LoginRestrictions = UNRESTRICTED
    """Server: what the authenticator restricted this login to (applied to every
    session of the connection)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthenticationFailed:
    """One attempt failed (server side; for logging, as OpenSSH's ``Failed ...`` lines)."""

    username: str
    method: str
    partial: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class BannerReceived:
    """The server's USERAUTH_BANNER (client side): show it to the user."""

    message: str
    language: str


AuthEvent: TypeAlias = AuthenticationSucceeded | AuthenticationFailed | BannerReceived


def _failure(methods: Iterable[str], partial: bool) -> bytes:
    # RFC 4252 section 5.1: byte 51, name-list methods that can continue, boolean partial.
    offered = set(methods)
    names = ",".join(m for m in METHODS if m in offered)
    return bytes([MSG_USERAUTH_FAILURE]) + encode_string(names.encode()) + encode_boolean(partial)


def _banner(message: str) -> bytes:
    # RFC 4252 section 5.4: byte 53, string message (UTF-8), string language tag.
    return bytes([MSG_USERAUTH_BANNER]) + encode_text(message) + encode_string(b"")


class ServerAuth:
    """The server side of RFC 4252 over payloads.

    Feed it every payload with a message number from 50 to 79 through
    :meth:`receive_payload`; drain what it answers with :meth:`payloads_to_send`.
    Errors raise :class:`~ptycore.ProtocolError` with the disconnect reason; the
    caller sends the DISCONNECT.
    """

    __slots__ = (
        "_attempts",
        "_authenticated",
        "_authenticator",
        "_config",
        "_failures",
        "_kbdint",
        "_outgoing",
        "_service",
        "_session_id",
        "_username",
        "_verify",
    )

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        session_id: bytes,
        verify: SignatureVerifier,
        config: AuthConfig | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._session_id = session_id
        self._verify = verify
        self._config = config or AuthConfig()
        self._outgoing: list[bytes] = []
        self._attempts = 0
        self._failures = 0
        self._username: str | None = None
        self._service: str | None = None
        self._kbdint: tuple[str, int] | None = None  # (user, prompts) awaiting INFO_RESPONSE
        self._authenticated: str | None = None

    @property
    def authenticated(self) -> bool:
        """Whether USERAUTH_SUCCESS was sent."""
        return self._authenticated is not None

    @property
    def username(self) -> str | None:
        """The user name of the first request (it may not change afterwards)."""
        return self._username

    @property
    def failures(self) -> int:
        """Failed attempts so far (the first ``none`` is not counted)."""
        return self._failures

    def payloads_to_send(self) -> list[bytes]:
        """Drain the payloads to send, in order."""
        out, self._outgoing = self._outgoing, []
        return out

    def receive_payload(self, payload: bytes) -> list[AuthEvent]:
        """Take one payload with a message number from 50 to 79."""
        number = payload[0] if payload else -1
        if self._authenticated is not None:
            # RFC 4252 section 5.1: requests after success SHOULD be ignored.
            if number == MSG_USERAUTH_REQUEST:
                return []
            raise ProtocolError(f"authentication message {number} after success")
        if number == MSG_USERAUTH_REQUEST:
            return self._request(payload)
        if number == MSG_USERAUTH_INFO_RESPONSE and self._kbdint is not None:
            return self._info_response(payload, *self._kbdint)
        raise ProtocolError(f"unexpected authentication message {number}")

    # -- USERAUTH_REQUEST ------------------------------------------------------------------

    def _request(self, payload: bytes) -> list[AuthEvent]:
        # RFC 4252 section 5: byte 50, string user name (UTF-8), string service name,
        # string method name, method-specific fields.
        reader = Reader(payload, 1)
        username = reader.text("user name", MAX_NAME_LENGTH)
        service = reader.text("service name", MAX_NAME_LENGTH)
        method = reader.text("method name", MAX_NAME_LENGTH)
        # RFC 4252 section 5: a new request abandons an unfinished one (keyboard-interactive).
        self._kbdint = None
        self._attempts += 1
        if self._username is None:
            if service != SERVICE_CONNECTION:
                # RFC 4252 section 5: the server MAY disconnect, RECOMMENDED with a message.
                raise ProtocolError(
                    f"service {service!r} not available",
                    reason=DisconnectReason.SERVICE_NOT_AVAILABLE,
                )
            self._username, self._service = username, service
            if self._config.banner is not None:
                self._outgoing.append(_banner(self._config.banner))
        elif (username, service) != (self._username, self._service):
            # auth2.c input_userauth_request: "Change of username or service not allowed".
            raise ProtocolError(
                f"change of user name or service not allowed: "
                f"({self._username!r}, {self._service!r}) -> ({username!r}, {service!r})"
            )
        allowed = set(self._authenticator.methods_for(username)) & set(METHODS)
        if method == "publickey" and method in allowed:
            return self._publickey(reader, payload, username)
        if method == "password" and method in allowed:
            return self._password(reader, username)
        if method == "keyboard-interactive" and method in allowed:
            return self._kbdint_start(reader, username)
        # "none" and every method not offered: failure, which lists what is offered
        # (RFC 4252 section 5.2). The payload of an unknown method is not ours to parse.
        return self._finish(username, method, AuthDecision.FAILURE)

    def _publickey(self, reader: Reader, payload: bytes, username: str) -> list[AuthEvent]:
        # RFC 4252 section 7: boolean has_signature, string algorithm, string key blob,
        # [string signature].
        has_signature = reader.boolean("has signature")
        algorithm = reader.text("public key algorithm", MAX_NAME_LENGTH)
        blob = reader.string("public key blob", MAX_KEY_BLOB_LENGTH)
        signed_end = reader.offset
        signature = reader.string("signature", MAX_KEY_BLOB_LENGTH) if has_signature else None
        reader.end("publickey request")
        checked = self._check_key(username, algorithm, blob)
        if checked is None:
            return self._finish(username, "publickey", AuthDecision.FAILURE)
        result, signature_algorithm, key_blob = checked
        if signature is None:
            # RFC 4252 section 7: PK_OK, byte 60, string algorithm, string key blob. Not a
            # failure and not counted (auth2-pubkey.c sets authctxt->postponed).
            self._outgoing.append(
                bytes([MSG_USERAUTH_PK_OK]) + encode_text(algorithm) + encode_string(blob)
            )
            return []
        # RFC 4252 section 7: the signature covers string session_id followed by the
        # request exactly as received up to the signature. A certificate's key signs
        # with the plain algorithm (PROTOCOL.certkeys).
        data = encode_string(self._session_id) + payload[:signed_end]
        if _blob_type(signature) != signature_algorithm or not self._verify(
            signature_algorithm, key_blob, signature, data
        ):
            return self._finish(username, "publickey", AuthDecision.FAILURE)
        return self._finish(username, "publickey", result)

    def _check_key(
        self, username: str, algorithm: str, blob: bytes
    ) -> tuple[AuthResult, str, bytes] | None:
        """The authenticator's answer, signature algorithm and plain key blob; None
        to fail."""
        certified = CERTIFICATE_ALGORITHMS.get(algorithm)
        if certified is not None:
            cert_type, signature_algorithm = certified
            authenticator = self._authenticator
            if not isinstance(authenticator, CertificateAuthenticator):
                return None
            certificate = None
            if _blob_type(blob) == cert_type:
                certificate = parse_certificate(blob, self._verify)
            # auth2-pubkey.c user_cert_trusted_ca: a valid user certificate, then policy.
            if certificate is None or certificate.cert_type != USER_CERTIFICATE:
                return None
            result = authenticator.check_certificate(username, certificate)
            key_blob = certificate.public_blob
        elif PUBLIC_KEY_ALGORITHMS.get(algorithm) == _blob_type(blob):
            result = self._authenticator.check_public_key(username, algorithm, blob)
            signature_algorithm, key_blob = algorithm, blob
        else:
            # auth2-pubkey.c: an unknown algorithm or a key of another type fails.
            return None
        if _decision(result) is AuthDecision.FAILURE:
            return None
        return result, signature_algorithm, key_blob

    def _password(self, reader: Reader, username: str) -> list[AuthEvent]:
        # RFC 4252 section 8: boolean change, string password, [string new password].
        change = reader.boolean("password change flag")
        password = reader.string("password")
        if change:
            reader.string("new password")
        reader.end("password request")
        if change or len(password) > MAX_PASSWORD_LENGTH:
            # auth2-passwd.c refuses changes; auth-passwd.c refuses long passwords.
            return self._finish(username, "password", AuthDecision.FAILURE)
        text = password.decode("utf-8", "surrogateescape")
        result = self._authenticator.check_password(username, text)
        return self._finish(username, "password", result)

    def _kbdint_start(self, reader: Reader, username: str) -> list[AuthEvent]:
        # RFC 4256 section 3.1: string language tag (deprecated), string submethods.
        reader.string("language tag", MAX_NAME_LENGTH)
        submethods = reader.text("submethods", MAX_NAME_LENGTH)
        reader.end("keyboard-interactive request")
        outcome = self._authenticator.start_keyboard_interactive(username, submethods)
        return self._kbdint_outcome(username, outcome)

    def _info_response(self, payload: bytes, username: str, prompts: int) -> list[AuthEvent]:
        # RFC 4256 section 3.4: byte 61, int num-responses, string response * n.
        reader = Reader(payload, 1)
        count = reader.uint32("num-responses")
        if count != prompts:
            # auth2-chall.c input_userauth_info_response: "wrong number of replies".
            raise ProtocolError(
                f"{count} keyboard-interactive responses to {prompts} prompts",
                field="num-responses",
                offset=1,
            )
        responses = tuple(reader.text("response", MAX_PASSWORD_LENGTH) for _ in range(count))
        reader.end("keyboard-interactive response")
        self._kbdint = None
        outcome = self._authenticator.answer_keyboard_interactive(username, responses)
        return self._kbdint_outcome(username, outcome)

    def _kbdint_outcome(self, username: str, outcome: Challenge | AuthResult) -> list[AuthEvent]:
        if not isinstance(outcome, Challenge):
            return self._finish(username, "keyboard-interactive", outcome)
        # RFC 4256 section 3.2: byte 60, string name, string instruction, string language
        # tag, int num-prompts, (string prompt, boolean echo) * n.
        parts = [
            bytes([MSG_USERAUTH_INFO_REQUEST]),
            encode_text(outcome.name),
            encode_text(outcome.instruction),
            encode_string(b""),
            encode_uint32(len(outcome.prompts)),
        ]
        for prompt in outcome.prompts:
            parts += [encode_text(prompt.text), encode_boolean(prompt.echo)]
        self._outgoing.append(b"".join(parts))
        self._kbdint = (username, len(outcome.prompts))
        return []

    def _finish(self, username: str, method: str, result: AuthResult) -> list[AuthEvent]:
        decision = _decision(result)
        if decision is AuthDecision.SUCCESS:
            self._authenticated = username
            self._outgoing.append(bytes([MSG_USERAUTH_SUCCESS]))
            return [
                AuthenticationSucceeded(
                    username=username, method=method, restrictions=_restrictions(result)
                )
            ]
        partial = decision is AuthDecision.PARTIAL
        # auth2.c userauth_finish: the first "none" and partial successes are free.
        if not partial and (self._attempts > 1 or method != "none"):
            self._failures += 1
        if self._failures >= self._config.max_tries:
            # auth.c auth_maxtries_exceeded disconnects instead of sending the failure.
            # OpenSSH sends reason 2 (PROTOCOL_ERROR); RFC 4253's reason 14 says it exactly.
            raise ProtocolError(
                "Too many authentication failures",
                reason=DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE,
            )
        self._outgoing.append(_failure(self._authenticator.methods_for(username), partial))
        if method == "none" and self._attempts == 1:
            return []
        return [AuthenticationFailed(username=username, method=method, partial=partial)]


def _blob_type(blob: bytes) -> str | None:
    """The name at the start of a key or signature blob, or None if malformed."""
    try:
        return Reader(blob).text("type", MAX_NAME_LENGTH)
    except ProtocolError:
        return None


# --- client side --------------------------------------------------------------------------


class UserKey(Protocol):
    """A private key the client authenticates with (:class:`ptycore.transport.HostKey` is one)."""

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The signature algorithms it can make, best first (``rsa-sha2-512``,
        ``rsa-sha2-256`` for RSA)."""
        ...

    @property
    def public_blob(self) -> bytes:
        """The public key in SSH wire format."""
        ...

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        """A signature blob (``string algorithm, string signature``) over ``data``."""
        ...


class _ClientStep(enum.Enum):
    SERVICE = "waiting for SERVICE_ACCEPT"
    NONE = "sent none"
    PUBLICKEY = "sent publickey"
    PASSWORD = "sent password"  # noqa: S105 (a state name)
    KEYBOARD_INTERACTIVE = "sent keyboard-interactive"
    DONE = "authenticated"


class ClientAuth:
    """The client side of RFC 4252: asks for the service, then tries methods in order.

    Order: ``none`` (to learn the methods), each key by ``publickey`` (signed at
    once, without the PK_OK query), ``keyboard-interactive`` if ``respond`` is
    given, then ``password`` (a string, or a function asked only when the server
    offers password authentication; ``None`` from it skips), each only if the
    server lists it. When nothing is
    left, :class:`~ptycore.ProtocolError` with reason
    ``NO_MORE_AUTH_METHODS_AVAILABLE`` is raised, as OpenSSH's client gives up with
    "Permission denied".
    """

    def __init__(
        self,
        username: str,
        *,
        session_id: bytes,
        keys: Sequence[UserKey] = (),
        password: str | Callable[[], str | None] | None = None,
        respond: Callable[[Challenge], Sequence[str]] | None = None,
    ) -> None:
        self._username = username
        self._session_id = session_id
        self._keys = list(keys)
        self._password = password
        self._respond = respond
        self._step = _ClientStep.SERVICE
        self._password_tried = False
        self._kbdint_tried = False
        self._server_sig_algs: tuple[str, ...] = ()
        self._method = "none"
        # RFC 4253 section 10: byte 5, string service name.
        self._outgoing = [bytes([MSG_SERVICE_REQUEST]) + encode_string(SERVICE_USERAUTH.encode())]

    @property
    def authenticated(self) -> bool:
        """Whether the server sent USERAUTH_SUCCESS."""
        return self._step is _ClientStep.DONE

    def payloads_to_send(self) -> list[bytes]:
        """Drain the payloads to send, in order."""
        out, self._outgoing = self._outgoing, []
        return out

    def receive_payload(self, payload: bytes) -> list[AuthEvent]:
        """Take SERVICE_ACCEPT (6) or a message numbered 50-79."""
        number = payload[0] if payload else -1
        reader = Reader(payload, 1)
        if number == MSG_USERAUTH_BANNER and self._step is not _ClientStep.DONE:
            message = reader.text("banner message")
            language = reader.text("language tag", MAX_NAME_LENGTH)
            reader.end("banner")
            return [BannerReceived(message=message, language=language)]
        if number == MSG_SERVICE_ACCEPT and self._step is _ClientStep.SERVICE:
            reader.text("service name", MAX_NAME_LENGTH)
            self._send_request("none", b"")
            self._step = _ClientStep.NONE
            return []
        if number == MSG_USERAUTH_SUCCESS and self._step not in (
            _ClientStep.SERVICE,
            _ClientStep.DONE,
        ):
            reader.end("success")
            self._step = _ClientStep.DONE
            return [AuthenticationSucceeded(username=self._username, method=self._method)]
        if number == MSG_USERAUTH_FAILURE and self._step not in (
            _ClientStep.SERVICE,
            _ClientStep.DONE,
        ):
            methods = reader.name_list("authentications that can continue")
            reader.boolean("partial success")
            reader.end("failure")
            self._next_method(set(methods))
            return []
        respond = self._respond
        if (
            number == MSG_USERAUTH_INFO_REQUEST
            and self._step is _ClientStep.KEYBOARD_INTERACTIVE
            and respond is not None
        ):
            self._info_request(reader, respond)
            return []
        raise ProtocolError(f"unexpected authentication message {number} ({self._step.value})")

    def _send_request(self, method: str, fields: bytes) -> None:
        # RFC 4252 section 5: byte 50, string user, string service, string method, fields.
        self._method = method
        self._outgoing.append(self._request_head(method) + fields)

    def _request_head(self, method: str) -> bytes:
        return (
            bytes([MSG_USERAUTH_REQUEST])
            + encode_text(self._username)
            + encode_text(SERVICE_CONNECTION)
            + encode_text(method)
        )

    def _next_method(self, methods: set[str]) -> None:
        if "publickey" in methods and self._keys:
            key = self._keys.pop(0)
            algorithm = self._algorithm_for(key)
            # RFC 4252 section 7: sign session_id + the request up to the signature.
            head = (
                self._request_head("publickey")
                + encode_boolean(True)
                + encode_text(algorithm)
                + encode_string(key.public_blob)
            )
            signature = key.sign(encode_string(self._session_id) + head, algorithm)
            self._method = "publickey"
            self._outgoing.append(head + encode_string(signature))
            self._step = _ClientStep.PUBLICKEY
        elif "keyboard-interactive" in methods and self._respond and not self._kbdint_tried:
            # RFC 4256 section 3.1: string language tag, string submethods.
            self._kbdint_tried = True
            self._send_request("keyboard-interactive", encode_string(b"") + encode_string(b""))
            self._step = _ClientStep.KEYBOARD_INTERACTIVE
        elif "password" in methods and (password := self._take_password()) is not None:
            # RFC 4252 section 8: boolean FALSE, string password.
            self._send_request("password", encode_boolean(False) + encode_text(password))
            self._step = _ClientStep.PASSWORD
        else:
            raise ProtocolError(
                f"Permission denied ({','.join(sorted(methods))})",
                reason=DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE,
            )

    def set_server_sig_algs(self, names: Iterable[str]) -> None:
        """The server's ``server-sig-algs`` (RFC 8308 section 3.1, from EXT_INFO)."""
        self._server_sig_algs = tuple(names)

    def _algorithm_for(self, key: UserKey) -> str:
        # RFC 8332 section 3.3: choose an RSA signature the server says it accepts;
        # without EXT_INFO, the key's best.
        for algorithm in key.algorithms:
            if algorithm in self._server_sig_algs:
                return algorithm
        return key.algorithms[0]

    def _take_password(self) -> str | None:
        """The password, asked of the supplier once, at the moment it is needed."""
        if self._password_tried:
            return None
        self._password_tried = True
        password = self._password
        return password() if callable(password) else password

    def _info_request(self, reader: Reader, respond: Callable[[Challenge], Sequence[str]]) -> None:
        # RFC 4256 section 3.2: string name, string instruction, string language tag,
        # int num-prompts, (string prompt, boolean echo) * n.
        name = reader.text("name")
        instruction = reader.text("instruction")
        reader.string("language tag", MAX_NAME_LENGTH)
        count = reader.uint32("num-prompts")
        if count > MAX_PROMPTS:
            raise ProtocolError(f"{count} prompts, more than {MAX_PROMPTS}", field="num-prompts")
        prompts = tuple(
            Prompt(text=reader.text("prompt"), echo=reader.boolean("echo")) for _ in range(count)
        )
        reader.end("info request")
        responses = list(respond(Challenge(name=name, instruction=instruction, prompts=prompts)))
        if len(responses) != count:
            raise ValueError(f"{len(responses)} responses to {count} prompts")
        # RFC 4256 section 3.4: byte 61, int num-responses, string response * n.
        self._outgoing.append(
            bytes([MSG_USERAUTH_INFO_RESPONSE])
            + encode_uint32(count)
            + b"".join(encode_text(r) for r in responses)
        )
