"""ClientConnection: the client end of one SSH connection, sans-IO.

The twin of :class:`~ptycore.server.ServerConnection`: the same transport, the
client side of authentication (:class:`~ptycore.auth.ClientAuth`) and client
session channels (:class:`~ptycore.session.ClientSession`)::

    conn = ClientConnection(ClientConfig(), "alice", verify_host_key=trust,
                            keys=[HostKey.from_openssh(data)], password=None)
    ...  # AuthenticationSucceeded
    channel = conn.open_session()   # ChannelOpened follows
    conn.session(channel).request_pty(term="xterm", size=WindowSize(cols=80, rows=24))
    conn.session(channel).request_shell()
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ._endpoint import ConnectionClosed, Endpoint, Event
from .auth import AuthenticationSucceeded, Challenge, ClientAuth, UserKey
from .connection import Connection, ConnectionConfig
from .session import ClientSession
from .session import Role as SessionRole
from .transport import (
    ExtInfoReceived,
    HostKeyVerifier,
    KeyExchangeComplete,
    Role,
    Transport,
    TransportConfig,
)

__all__ = ["ClientConfig", "ClientConnection", "ConnectionClosed", "Event"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientConfig:
    """A client connection's configuration."""

    transport: TransportConfig = field(default_factory=TransportConfig)
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)


class ClientConnection(Endpoint):
    """The client end of one SSH connection.

    Authentication starts by itself after the key exchange and tries, in order,
    each key in ``keys``, keyboard-interactive (if ``respond`` is given) and
    ``password``. ``verify_host_key(algorithm, public_blob)`` is the trust
    decision (``known_hosts``).
    """

    __slots__ = (
        "_auth",
        "_config",
        "_keys",
        "_password",
        "_respond",
        "_server_sig_algs",
        "_username",
    )

    def __init__(
        self,
        config: ClientConfig | None,
        username: str,
        *,
        verify_host_key: HostKeyVerifier,
        keys: Sequence[UserKey] = (),
        password: str | Callable[[], str | None] | None = None,
        respond: Callable[[Challenge], Sequence[str]] | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._config = config or ClientConfig()
        super().__init__(
            Transport(
                Role.CLIENT, self._config.transport, verify_host_key=verify_host_key, random=random
            )
        )
        self._username = username
        self._keys = keys
        self._password = password
        self._respond = respond
        self._auth: ClientAuth | None = None
        self._server_sig_algs: tuple[str, ...] = ()

    def open_session(self) -> int:
        """Open a session channel; :class:`~ptycore.connection.ChannelOpened` follows."""
        channel_id = self._channels().open_session()
        self._flush()
        return channel_id

    def session(self, channel_id: int) -> ClientSession:
        """The session machine of a channel: request a PTY, a shell, a command..."""
        session = self._channels().session(channel_id)
        if not isinstance(session, ClientSession):  # a client only has client sessions
            raise TypeError(f"channel {channel_id} is not a client session")
        return session

    def _start_clock(self, now: float | None) -> None:
        """A client has no login grace time."""

    def _ext_info(self, event: ExtInfoReceived) -> None:
        # RFC 8308 section 3.1: server-sig-algs, a name-list of signature algorithms.
        names = event.extensions.get("server-sig-algs", b"")
        self._server_sig_algs = tuple(names.decode("ascii", "replace").split(","))
        if self._auth is not None:
            self._auth.set_server_sig_algs(self._server_sig_algs)

    def _key_exchange_done(self, event: KeyExchangeComplete) -> None:
        self._auth = ClientAuth(
            self._username,
            session_id=event.session_id,
            keys=self._keys,
            password=self._password,
            respond=self._respond,
        )
        self._auth.set_server_sig_algs(self._server_sig_algs)

    def _auth_payload(self, payload: bytes) -> list[Event]:
        auth = self._auth
        if auth is None:
            raise RuntimeError("unreachable: payloads only flow after the key exchange")
        events: list[Event] = list(auth.receive_payload(payload))
        for event in events:
            if isinstance(event, AuthenticationSucceeded) and self._connection is None:
                self._connection = Connection(SessionRole.CLIENT, self._config.connection)
                # Automatic rekeys (bytes, time) may start from now on, as ssh's
                # after_authentication (packet.c ssh_packet_need_rekeying).
                self._transport.set_authenticated()
        return events

    def _outgoing_auth(self) -> list[bytes]:
        return [] if self._auth is None else self._auth.payloads_to_send()
