"""ServerConnection: one SSH server connection, sans-IO, from bytes to session events.

It composes the transport (:mod:`ptycore.transport`), user authentication
(:mod:`ptycore.auth`) and the connection protocol (:mod:`ptycore.connection`), whose
session channels the session machine (:mod:`ptycore.session`) drives::

    conn = ServerConnection(ServerConfig(), authenticator, host_keys, now=clock())
    sock.sendall(conn.data_to_send())                  # version line and KEXINIT
    while not conn.closed:
        try:
            events = conn.receive_data(sock.recv(65536), now=clock())
        except ProtocolError:
            sock.sendall(conn.data_to_send()); break   # the DISCONNECT is queued
        for event in events:
            ...                                        # SessionEvent -> accept_request ...
        sock.sendall(conn.data_to_send())
        # and call handle_timer(now) when get_timer() says

Every verb only queues; :meth:`~ServerConnection.data_to_send` drains. Errors
surface in three places: :class:`~ptycore.ProtocolError` from ``receive_data`` (the
peer broke the protocol or ran out of attempts: DISCONNECT queued, flush and
close), :class:`~ptycore.session.LocalProtocolError`, ``ValueError``,
``RuntimeError`` or :class:`~ptycore.connection.BufferFullError` from a verb (the
application asked for something the rules forbid: nothing changed), and a
:class:`~ptycore.ConnectionClosed` event (the peer said goodbye, the login
grace time ran out, or the client stopped answering keepalives).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ._endpoint import (
    MSG_SERVICE_ACCEPT,
    MSG_SERVICE_REQUEST,
    ConnectionClosed,
    Endpoint,
    Event,
    read_service_name,
)
from ._errors import DisconnectReason, ProtocolError
from ._wire import Reader, encode_boolean, encode_string, encode_text
from .auth import (
    SERVICE_USERAUTH,
    AuthConfig,
    AuthenticationSucceeded,
    Authenticator,
    PeerAuthenticator,
    ServerAuth,
)
from .connection import Connection, ConnectionConfig, GlobalReplyReceived
from .keyoptions import UNRESTRICTED, LoginRestrictions
from .session import Role as SessionRole
from .session import ServerSession
from .transport import (
    ExtInfoReceived,
    HostKey,
    KeyExchangeComplete,
    Role,
    Transport,
    TransportConfig,
    verify_signature,
)

__all__ = ["ConnectionClosed", "Event", "ServerConfig", "ServerConnection"]

MSG_GLOBAL_REQUEST: Final = 80
MSG_REQUEST_SUCCESS: Final = 81
MSG_REQUEST_FAILURE: Final = 82
HOSTKEYS: Final = "hostkeys-00@openssh.com"
HOSTKEYS_PROVE: Final = "hostkeys-prove-00@openssh.com"
KEEPALIVE: Final = "keepalive@openssh.com"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerConfig:
    """Everything a server connection is configured with, each part validated."""

    transport: TransportConfig = field(default_factory=TransportConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    client_alive_interval: float = 0.0
    """sshd ``ClientAliveInterval``: after this many seconds without a byte from the
    client, ask it ``keepalive@openssh.com``; 0 (OpenSSH's default) never asks."""
    client_alive_count_max: int = 3
    """sshd ``ClientAliveCountMax``: unanswered keepalives before the connection is
    dropped (``serverloop.c`` ``client_alive_check``: "Timeout, client not responding")."""

    def __post_init__(self) -> None:
        if self.client_alive_interval < 0:
            raise ValueError("client_alive_interval must not be negative")
        if self.client_alive_count_max < 0:
            raise ValueError("client_alive_count_max must not be negative")


class ServerConnection(Endpoint):
    """The server end of one SSH connection.

    ``now`` is the time the connection was accepted on the adapter's clock (any
    monotonic seconds); the login grace time counts from it, or from the first
    ``now`` given to :meth:`receive_data` when it is ``None``. ``peer_address`` is
    the client's IP address as text: a :class:`~ptycore.auth.PeerAuthenticator`
    then decides with ``authenticator.for_peer(peer_address)`` (``from=`` in
    ``authorized_keys``).

    The :class:`~ptycore.auth.LoginRestrictions` the authenticator granted the
    login with apply to every session: their
    :meth:`~ptycore.auth.LoginRestrictions.session_policy` replaces
    ``config.connection.session_policy`` (a pty-req refused with ``no-pty``, a
    forced command in place of every program).
    """

    __slots__ = (
        "_alive_deadline",
        "_alive_outstanding",
        "_announcements",
        "_auth",
        "_authenticator",
        "_config",
        "_grace_deadline",
        "_host_key_algorithm",
        "_host_keys",
        "_now",
        "_peer_address",
        "_restrictions",
        "_service_accepted",
        "_username",
    )

    def __init__(
        self,
        config: ServerConfig | None,
        authenticator: Authenticator,
        host_keys: Sequence[HostKey],
        random: Callable[[int], bytes] = os.urandom,
        *,
        now: float | None = None,
        peer_address: str | None = None,
    ) -> None:
        self._config = config or ServerConfig()
        super().__init__(
            Transport(Role.SERVER, self._config.transport, host_keys=host_keys, random=random)
        )
        if peer_address is not None and isinstance(authenticator, PeerAuthenticator):
            authenticator = authenticator.for_peer(peer_address)
        self._authenticator = authenticator
        self._peer_address = peer_address
        self._restrictions = UNRESTRICTED
        self._auth: ServerAuth | None = None
        self._service_accepted = False
        self._username: str | None = None
        self._grace_deadline: float | None = None
        self._host_keys = tuple(host_keys)
        self._host_key_algorithm = ""
        self._announcements: list[bytes] = []
        self._now = 0.0 if now is None else now
        self._alive_deadline: float | None = None
        self._alive_outstanding = 0
        self._start_clock(now)

    @property
    def username(self) -> str | None:
        """The authenticated user, once authentication succeeded."""
        return self._username

    @property
    def peer_address(self) -> str | None:
        """The client's address, as given."""
        return self._peer_address

    @property
    def restrictions(self) -> LoginRestrictions:
        """What the login is restricted to (nothing before it)."""
        return self._restrictions

    # -- session verbs -------------------------------------------------------------------

    def session(self, channel_id: int) -> ServerSession:
        """The session machine of a channel, for what the verbs here do not cover."""
        session = self._channels().session(channel_id)
        if not isinstance(session, ServerSession):  # a server only has server sessions
            raise TypeError(f"channel {channel_id} is not a server session")
        return session

    def accept_request(self, channel_id: int, handle: int) -> None:
        """Grant a request; replies go out in request order (RFC 4254 section 5.4)."""
        self.session(channel_id).accept(handle)
        self._flush()

    def reject_request(self, channel_id: int, handle: int) -> None:
        """Refuse a request; replies go out in request order."""
        self.session(channel_id).reject(handle)
        self._flush()

    def send_stderr(self, channel_id: int, data: bytes) -> None:
        """Queue extended data of type 1 (stderr, RFC 4254 section 5.2)."""
        self._channels().send_data(channel_id, data, 1)
        self._flush()

    def send_exit_status(self, channel_id: int, status: int) -> None:
        """Report the program's exit status (all 32 bits)."""
        self.session(channel_id).send_exit_status(status)
        self._flush()

    def send_exit_signal(
        self, channel_id: int, name: str, *, core_dumped: bool = False, message: str = ""
    ) -> None:
        """Report the signal (name without ``SIG``) that killed the program."""
        self.session(channel_id).send_exit_signal(name, core_dumped=core_dumped, message=message)
        self._flush()

    # -- timers --------------------------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float | None = None) -> list[Event]:
        """Feed bytes from the client; see :meth:`Endpoint.receive_data
        <ptycore._endpoint.Endpoint.receive_data>`. ``now`` also restarts the
        client-alive timer."""
        if now is not None:
            self._now = now
        events = super().receive_data(data, now=now)
        if data and self._alive_deadline is not None:
            self._alive_deadline = self._now + self._config.client_alive_interval
        return events

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next run: the login grace deadline, a
        client-alive check or a rekey."""
        timer = super().get_timer()
        for other in (self._grace(), self._alive()):
            if other is not None and (timer is None or other < timer):
                timer = other
        return timer

    def handle_timer(self, now: float) -> list[Event]:
        """Fire what is due: after ``LoginGraceTime`` without login, or
        ``ClientAliveCountMax`` unanswered keepalives, disconnect; send a keepalive."""
        self._now = now
        grace = self._grace()
        if grace is not None and now >= grace and not self.closed:
            # sshd's grace_alarm_handler just exits; a DISCONNECT tells the client why.
            return self._give_up("Timeout before authentication")
        alive = self._alive()
        if alive is not None and now >= alive:
            if self._alive_outstanding >= self._config.client_alive_count_max:
                # serverloop.c client_alive_check exits; the DISCONNECT costs nothing.
                return self._give_up("Timeout, client not responding")
            self._alive_outstanding += 1
            self._alive_deadline = now + self._config.client_alive_interval
            self._channels().send_global_request(KEEPALIVE)
            self._flush()
        return super().handle_timer(now)

    def _give_up(self, description: str) -> list[Event]:
        self.disconnect(DisconnectReason.BY_APPLICATION, description)
        return [
            ConnectionClosed(
                reason=DisconnectReason.BY_APPLICATION, description=description, by_peer=False
            )
        ]

    def _alive(self) -> float | None:
        return None if self.closed else self._alive_deadline

    def _grace(self) -> float | None:
        if self.authenticated or self._config.auth.login_grace_time == 0:
            return None
        return self._grace_deadline

    def _start_clock(self, now: float | None) -> None:
        if now is not None and self._grace_deadline is None:
            self._grace_deadline = now + self._config.auth.login_grace_time

    # -- authentication ------------------------------------------------------------------

    def _ext_info(self, event: ExtInfoReceived) -> None:
        """A client's EXT_INFO names nothing a server uses (RFC 8308 section 3)."""

    def _key_exchange_done(self, event: KeyExchangeComplete) -> None:
        self._host_key_algorithm = event.algorithms.host_key
        self._auth = ServerAuth(
            self._authenticator,
            session_id=event.session_id,
            verify=verify_signature,
            config=self._config.auth,
        )

    def _auth_payload(self, payload: bytes) -> list[Event]:
        number = payload[0]
        auth = self._auth
        if number == MSG_SERVICE_REQUEST:
            service = read_service_name(payload)
            if auth is None or self._service_accepted or service != SERVICE_USERAUTH:
                # RFC 4253 section 10: a service we do not offer disconnects.
                raise ProtocolError(
                    f"service {service!r} not available",
                    reason=DisconnectReason.SERVICE_NOT_AVAILABLE,
                )
            self._service_accepted = True
            self._reply(bytes([MSG_SERVICE_ACCEPT]) + encode_text(service))
            return []
        if auth is None or not self._service_accepted or number == MSG_SERVICE_ACCEPT:
            raise ProtocolError(f"authentication message {number} before SERVICE_ACCEPT")
        events: list[Event] = list(auth.receive_payload(payload))
        for event in events:
            if isinstance(event, AuthenticationSucceeded) and self._connection is None:
                self._username = event.username
                self._restrictions = event.restrictions
                connection = self._config.connection
                policy = event.restrictions.session_policy(connection.session_policy)
                if policy is not connection.session_policy:
                    connection = dataclasses.replace(connection, session_policy=policy)
                self._connection = Connection(SessionRole.SERVER, connection)
                self._announce_host_keys()
                if self._config.client_alive_interval > 0:
                    self._alive_deadline = self._now + self._config.client_alive_interval
                # Automatic rekeys (bytes, time) may start from now on, as sshd's
                # after_authentication (packet.c ssh_packet_need_rekeying). USERAUTH_SUCCESS
                # is queued first: OpenSSH's client drops a KEXINIT read before it
                # (sshconnect2.c input_userauth_error).
                self._flush()
                self._transport.set_authenticated()
        return events

    def _outgoing_auth(self) -> list[bytes]:
        if self._auth is None:
            return []
        out = self._auth.payloads_to_send() + self._announcements
        self._announcements = []
        return out

    # -- host key rotation (OpenSSH PROTOCOL section 2.5) ---------------------------------

    def _announce_host_keys(self) -> None:
        # sshd.c notify_hostkeys, after authentication: byte 80, string
        # "hostkeys-00@openssh.com", boolean FALSE, string host key blob * n.
        self._announcements.append(
            bytes([MSG_GLOBAL_REQUEST])
            + encode_text(HOSTKEYS)
            + encode_boolean(False)
            + b"".join(encode_string(key.public_blob) for key in self._host_keys)
        )

    def _payload(self, payload: bytes, sequence_number: int) -> list[Event]:
        if payload[0] == MSG_GLOBAL_REQUEST and self.authenticated:
            reader = Reader(payload, 1)
            if reader.text("request name", 64) == HOSTKEYS_PROVE:
                self._prove_host_keys(reader)
                return []
        events = super()._payload(payload, sequence_number)
        for event in events:
            if isinstance(event, GlobalReplyReceived) and event.name == KEEPALIVE:
                # serverloop.c server_input_keep_alive: any answer means alive.
                self._alive_outstanding = 0
        return events

    def _prove_host_keys(self, reader: Reader) -> None:
        # byte 80, string "hostkeys-prove-00@openssh.com", boolean TRUE, string blob * n;
        # the reply: byte 81, string signature * n, each over string
        # "hostkeys-prove-00@openssh.com", string session identifier, string host key.
        if not reader.boolean("want reply"):
            return
        keys = {key.public_blob: key for key in self._host_keys}
        prefix = encode_text(HOSTKEYS_PROVE) + encode_string(self.session_id or b"")
        signatures: list[bytes] = []
        ok = True
        while reader.remaining:
            blob = reader.string("host key", 16384)
            key = keys.get(blob)
            if key is None:
                ok = False  # serverloop.c: "unknown host key requested" fails the request
                break
            # serverloop.c server_input_hostkeys_prove: RSA signs with the algorithm
            # the key exchange used when that was RSA; ptycore never signs with SHA-1.
            algorithm = (
                self._host_key_algorithm
                if self._host_key_algorithm in key.algorithms
                else key.algorithm
            )
            signatures.append(encode_string(key.sign(prefix + encode_string(blob), algorithm)))
        self._flush()  # replies to global requests go out in request order (RFC 4254 4)
        if ok and signatures:
            self._reply(bytes([MSG_REQUEST_SUCCESS]) + b"".join(signatures))
        else:
            self._reply(bytes([MSG_REQUEST_FAILURE]))
