"""What ServerConnection and ClientConnection share: transport plumbing, channel verbs."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Final, TypeAlias

from ._errors import DisconnectReason, ProtocolError
from ._wire import Reader
from .auth import AuthEvent
from .connection import Connection, ConnectionEvent
from .transport import (
    DisconnectReceived,
    ExtInfoReceived,
    KeyExchangeComplete,
    PayloadReceived,
    Transport,
    TransportEvent,
    UnimplementedReceived,
    VersionReceived,
)

__all__ = ["ConnectionClosed", "Endpoint", "Event"]

MSG_SERVICE_REQUEST: Final = 5
MSG_SERVICE_ACCEPT: Final = 6
FIRST_AUTH: Final = 50
LAST_AUTH: Final = 79
FIRST_CONNECTION: Final = 80
FIRST_CHANNEL: Final = 90
LAST_CONNECTION: Final = 127


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionClosed:
    """The connection is over: nothing more is read or sent after ``data_to_send``.

    ``by_peer`` tells a DISCONNECT received from one we sent (a timeout or
    :meth:`~Endpoint.disconnect`).
    """

    reason: int
    description: str
    by_peer: bool


Event: TypeAlias = (
    VersionReceived
    | KeyExchangeComplete
    | UnimplementedReceived
    | AuthEvent
    | ConnectionEvent
    | ConnectionClosed
)
"""What :meth:`ServerConnection.receive_data <ptycore.server.ServerConnection.receive_data>`
and its client twin report."""


class Endpoint(abc.ABC):
    """Transport plus authentication plus connection, for one role.

    Subclasses route payloads 5, 6 and 50-79 to their authentication side and
    create :attr:`_connection` once the user is authenticated.
    """

    __slots__ = (
        "_closed",
        "_connection",
        "_transport",
    )

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._connection: Connection | None = None
        self._closed = False

    # -- introspection -------------------------------------------------------------------

    @property
    def session_id(self) -> bytes | None:
        """The exchange hash of the first key exchange."""
        return self._transport.session_id

    @property
    def peer_version(self) -> str | None:
        """The peer's identification string (``SSH-2.0-OpenSSH_9.2p1 ...``), once read."""
        return self._transport.peer_version

    @property
    def closed(self) -> bool:
        """Whether the connection is over (DISCONNECT sent or received)."""
        return self._closed or self._transport.closed

    @property
    def authenticated(self) -> bool:
        """Whether user authentication succeeded: channels may be used."""
        return self._connection is not None

    @property
    def channel_ids(self) -> tuple[int, ...]:
        """Channels not yet closed by both sides."""
        return self._channels().channel_ids

    # -- I/O -----------------------------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float | None = None) -> list[Event]:
        """Feed bytes from the peer; returns events in order.

        On a protocol error a DISCONNECT is queued, then :class:`~ptycore.ProtocolError`
        raised: flush :meth:`data_to_send`, then close the socket.
        """
        self._start_clock(now)
        try:
            transport_events = self._transport.receive_data(data, now=now)
        except ProtocolError:
            self._closed = True  # the transport queued the DISCONNECT
            raise
        events: list[Event] = []
        channel_payloads: list[bytes] = []
        try:
            for event in transport_events:
                if (
                    self._connection is not None
                    and type(event) is PayloadReceived
                    and FIRST_CHANNEL <= event.payload[0] <= LAST_CONNECTION
                ):
                    # Channel messages (90-127, most of every transfer) need nothing
                    # from the layers between; those that come together go together,
                    # so that the data of one read is one event.
                    channel_payloads.append(event.payload)
                    continue
                if channel_payloads:
                    events += self._channels().receive_payloads(channel_payloads)
                    channel_payloads = []
                events += self._transport_event(event)
            if channel_payloads:
                events += self._channels().receive_payloads(channel_payloads)
        except ProtocolError as error:
            self._fail(error)
            raise
        self._flush()
        return events

    def data_to_send(self) -> bytes:
        """Drain the bytes to write to the peer."""
        if not self.closed:
            self._flush()
        return self._transport.data_to_send()

    def buffers_to_send(self) -> list[bytes]:
        """:meth:`data_to_send` in pieces, for a vectored write
        (:meth:`ptycore.transport.Transport.buffers_to_send`)."""
        if not self.closed:
            self._flush()
        return self._transport.buffers_to_send()

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next run, or ``None``."""
        return self._transport.get_timer()

    def handle_timer(self, now: float) -> list[Event]:
        """Run what is due at ``now`` (the transport's rekey timer)."""
        if not self.closed:
            self._transport.handle_timer(now)
        return []

    def disconnect(
        self, reason: DisconnectReason = DisconnectReason.BY_APPLICATION, description: str = ""
    ) -> None:
        """Queue a DISCONNECT; flush :meth:`data_to_send`, then close."""
        if not self.closed:
            self._flush()
            self._transport.disconnect(reason, description)
        self._closed = True

    # -- channel verbs -------------------------------------------------------------------

    def send_data(self, channel_id: int, data: bytes) -> None:
        """Queue channel data; see :meth:`writable` for how much fits."""
        self._channels().send_data(channel_id, data)
        self._flush()

    def writable(self, channel_id: int) -> int:
        """How many bytes :meth:`send_data` takes on this channel now."""
        return self._channels().writable(channel_id)

    def consume_data(self, channel_id: int, size: int) -> bool:
        """Give back window for ``size`` received bytes now used, with
        ``ConnectionConfig(auto_consume=False)``: the peer sends no faster than that.

        Returns whether a WINDOW_ADJUST is now due; it leaves with the next
        :meth:`data_to_send` (:meth:`ptycore.connection.Connection.consume`)."""
        return self._channels().consume(channel_id, size)

    def send_eof(self, channel_id: int) -> None:
        """Queue EOF: no more data from us on this channel."""
        self._channels().session(channel_id).send_eof()
        self._flush()

    def close_channel(self, channel_id: int) -> None:
        """Queue CLOSE for this channel (after what is queued before it)."""
        self._channels().session(channel_id).close()
        self._flush()

    # -- internals -----------------------------------------------------------------------

    @abc.abstractmethod
    def _start_clock(self, now: float | None) -> None:
        """Server: the login grace timer starts with the first time given."""

    def _channels(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("no channels before authentication succeeded")
        return self._connection

    def _transport_event(self, event: TransportEvent) -> list[Event]:
        if isinstance(event, PayloadReceived):
            return self._payload(event.payload, event.sequence_number)
        if isinstance(event, KeyExchangeComplete):
            if event.initial:
                self._key_exchange_done(event)
            return [event]
        if isinstance(event, DisconnectReceived):
            self._closed = True
            return [
                ConnectionClosed(reason=event.reason, description=event.description, by_peer=True)
            ]
        if isinstance(event, VersionReceived | UnimplementedReceived):
            return [event]
        if isinstance(event, ExtInfoReceived):
            self._ext_info(event)
        return []

    def _payload(self, payload: bytes, sequence_number: int) -> list[Event]:
        number = payload[0]
        if number in (MSG_SERVICE_REQUEST, MSG_SERVICE_ACCEPT) or (
            FIRST_AUTH <= number <= LAST_AUTH
        ):
            return self._auth_payload(payload)
        if FIRST_CONNECTION <= number <= LAST_CONNECTION:
            if self._connection is None:
                # RFC 4252 section 6 / auth2.c: the connection protocol runs only after
                # authentication succeeded.
                raise ProtocolError(f"connection message {number} before authentication")
            return list(self._connection.receive_payload(payload))
        # RFC 4253 section 11.4: numbers nobody here knows get UNIMPLEMENTED.
        if not self._transport.closed:
            self._transport.send_unimplemented(sequence_number)
        return []

    def _reply(self, payload: bytes) -> None:
        """Queue an answer to something the peer sent.

        Dropped once the peer has disconnected: the packets read in the same chunk
        as its DISCONNECT are still reported, but answered to nobody.
        """
        if not self._transport.closed:
            self._transport.send_payload(payload)

    @abc.abstractmethod
    def _ext_info(self, event: ExtInfoReceived) -> None:
        """RFC 8308 EXT_INFO from the peer."""

    @abc.abstractmethod
    def _key_exchange_done(self, event: KeyExchangeComplete) -> None:
        """The first key exchange finished: start authentication."""

    @abc.abstractmethod
    def _auth_payload(self, payload: bytes) -> list[Event]:
        """Route SERVICE_REQUEST, SERVICE_ACCEPT and 50-79 to this role's authentication."""

    @abc.abstractmethod
    def _outgoing_auth(self) -> list[bytes]:
        """Drain what authentication wants to send."""

    def _flush(self) -> None:
        if self._transport.closed:
            return
        for payload in self._outgoing_auth():
            self._transport.send_payload(payload)
        if self._connection is not None:
            for payload in self._connection.payloads_to_send():
                self._transport.send_payload(payload)

    def _fail(self, error: ProtocolError) -> None:
        if not self._transport.closed:
            self._transport.disconnect(error.reason, str(error))  # names request, field, offset
        self._closed = True


def read_service_name(payload: bytes) -> str:
    """RFC 4253 section 10: byte 5 or 6, string service name."""
    reader = Reader(payload, 1)
    name = reader.text("service name", 64)
    reader.end("service message")
    return name
