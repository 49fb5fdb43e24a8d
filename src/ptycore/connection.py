"""The connection protocol (RFC 4254): channels, flow control and global requests, sans-IO.

Payloads in, payloads out, numbered 80 to 127. Each session channel is driven by a
:class:`~ptycore.session.ServerSession` or :class:`~ptycore.session.ClientSession`;
this layer adds what the session machine leaves out: channel numbers, the windows
and maximum packet sizes of both directions, and the limits of a connection.

Flow control, as OpenSSH's ``channels.c`` does it:

- Receiving: a server opens a session channel with a window of 0 and grants
  :attr:`ConnectionConfig.window_size` only once the program started (``session.c``
  creates the channel with window 0; ``channel_set_fds`` sends the WINDOW_ADJUST),
  so no data arrives before the program runs. Data counts as consumed when it is
  handed to the application, or, with :attr:`ConnectionConfig.auto_consume` off,
  when the application says so with :meth:`Connection.consume` (as OpenSSH counts
  it when written to the program, so a slow program slows the peer down); a
  WINDOW_ADJUST gives the consumed bytes back once they are half the window, or
  once the peer's window is smaller than one packet (see ``_adjust_window`` for
  how this differs from ``channel_check_window``).
  A peer that overruns the window by more than a tenth of it, or sends a packet
  larger than the maximum it was given, is disconnected (``channel_input_data``
  allows the same tenth; it drops oversized packets, which would corrupt the
  stream, so ptycore refuses them).
- Sending: data is cut to the peer's window and maximum packet size (and to
  32768 bytes, the payload every implementation must accept, RFC 4253 section 6.1).
  What does not fit waits in the channel's queue, in order with the replies, EOF
  and CLOSE behind it, up to :attr:`ConnectionConfig.max_buffered_bytes`.
  :meth:`Connection.writable` says how much more may be queued; a
  :class:`ChannelWritable` event follows every WINDOW_ADJUST from the peer.
"""

from __future__ import annotations

import collections
import enum
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeAlias

from ._errors import ProtocolError
from ._wire import Reader, encode_boolean, encode_string, encode_text, encode_uint32
from .session import (
    ClientEvent,
    ClientSession,
    CloseReceived,
    DataReceived,
    Discarded,
    EOFReceived,
    Outgoing,
    OutgoingClose,
    OutgoingData,
    Role,
    ServerEvent,
    ServerSession,
    SessionPolicy,
    encode_outgoing,
)

__all__ = [
    "BufferFullError",
    "ChannelClosed",
    "ChannelDataReceived",
    "ChannelEOFReceived",
    "ChannelOpenFailed",
    "ChannelOpened",
    "ChannelWritable",
    "Connection",
    "ConnectionConfig",
    "ConnectionEvent",
    "GlobalReplyReceived",
    "GlobalRequestReceived",
    "OpenFailureReason",
    "SessionEvent",
]

# RFC 4254 section 9: message numbers.
MSG_GLOBAL_REQUEST: Final = 80
MSG_REQUEST_SUCCESS: Final = 81
MSG_REQUEST_FAILURE: Final = 82
MSG_CHANNEL_OPEN: Final = 90
MSG_CHANNEL_OPEN_CONFIRMATION: Final = 91
MSG_CHANNEL_OPEN_FAILURE: Final = 92
MSG_CHANNEL_WINDOW_ADJUST: Final = 93
MSG_CHANNEL_DATA: Final = 94
MSG_CHANNEL_EXTENDED_DATA: Final = 95
MSG_CHANNEL_EOF: Final = 96
MSG_CHANNEL_CLOSE: Final = 97
MSG_CHANNEL_REQUEST: Final = 98
MSG_CHANNEL_SUCCESS: Final = 99
MSG_CHANNEL_FAILURE: Final = 100

MAX_DATA_CHUNK: Final = 32768
"""RFC 4253 section 6.1: every implementation accepts 32768-byte payloads."""

MAX_NAME_LENGTH: Final = 1024
"""Cap on channel type and request names (OpenSSH's only cap is the packet size)."""

UINT32_MAX: Final = 0xFFFFFFFF

KNOWN_CHANNEL_TYPES: Final = frozenset(
    {
        # RFC 4254 sections 6.3.2, 7.2 and OpenSSH's PROTOCOL: types ptycore knows but
        # does not serve; they are refused as prohibited, not as unknown.
        "x11",
        "forwarded-tcpip",
        "direct-tcpip",
        "auth-agent@openssh.com",
        "direct-streamlocal@openssh.com",
        "forwarded-streamlocal@openssh.com",
        "tun@openssh.com",
    }
)


class OpenFailureReason(enum.IntEnum):
    """RFC 4254 section 5.1: ``SSH_MSG_CHANNEL_OPEN_FAILURE`` reason codes."""

    ADMINISTRATIVELY_PROHIBITED = 1
    CONNECT_FAILED = 2
    UNKNOWN_CHANNEL_TYPE = 3
    RESOURCE_SHORTAGE = 4


class BufferFullError(Exception):
    """More data was queued on a channel than :meth:`Connection.writable` allowed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionConfig:
    """Channel limits, with OpenSSH's values."""

    max_sessions: int = 10
    """sshd ``MaxSessions``: open session channels per connection (server side);
    more are refused with ``ADMINISTRATIVELY_PROHIBITED``."""
    window_size: int = 64 * 32768
    """Receive window per channel: OpenSSH's ``CHAN_SES_WINDOW_DEFAULT`` (2 MiB)."""
    max_packet_size: int = 32768
    """Largest data packet we accept: ``CHAN_SES_PACKET_DEFAULT`` (32 KiB)."""
    max_buffered_bytes: int = 64 * 32768
    """Outgoing data queued per channel beyond the peer's window. OpenSSH stops
    reading from the program while its buffer exceeds the peer's window; ptycore
    leaves the reading to the adapter and refuses data past this cap instead."""
    auto_consume: bool = True
    """Whether received data counts as consumed as soon as it is handed over. Turn
    it off to pace the peer by the application: call :meth:`Connection.consume`
    once the data is really used (h2's ``acknowledge_received_data``)."""
    session_policy: SessionPolicy = field(default_factory=SessionPolicy)
    """Rules for server session channels."""

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if not 0 < self.window_size <= UINT32_MAX:
            raise ValueError("window_size must be between 1 and 2**32 - 1")
        if not 0 < self.max_packet_size <= MAX_DATA_CHUNK:
            raise ValueError(f"max_packet_size must be between 1 and {MAX_DATA_CHUNK}")
        if self.max_buffered_bytes < 0:
            raise ValueError("max_buffered_bytes must not be negative")


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelOpened:
    """A session channel is open: the client opened it (server side), or the server
    confirmed ours (client side)."""

    channel_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelOpenFailed:
    """The server refused our CHANNEL_OPEN (client side); ``channel_id`` is free again."""

    channel_id: int
    reason: int
    description: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionEvent:
    """What the session machine of ``channel_id`` says about a request or reply:
    ``RequestReceived`` (decide with ``accept_request``/``reject_request``),
    ``RequestRefused``, ``WindowChanged``, ``RequestAnswered``, ``RequestAccepted``,
    ``ExitStatusReceived``, ``ExitSignalReceived`` (see :mod:`ptycore.session`)."""

    channel_id: int
    event: ServerEvent | ClientEvent


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelDataReceived:
    """Data on a channel; ``data_type`` 1 is stderr, ``None`` ordinary data.

    :meth:`Connection.receive_payload` reports one per packet;
    :meth:`Connection.receive_payloads`, which the server and client connections
    use, one per run of packets on a channel, as channel data is a byte stream
    (RFC 4254 section 5.2)."""

    channel_id: int
    data: bytes
    data_type: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelEOFReceived:
    """The peer sends no more data on this channel."""

    channel_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelClosed:
    """The peer closed the channel; our CLOSE is sent (or queued), the id is freed."""

    channel_id: int


@dataclass(frozen=True, kw_only=True, slots=True)
class GlobalRequestReceived:
    """A global request, already answered (for logging): ``accepted`` for
    ``no-more-sessions@openssh.com``; everything else, ``keepalive@openssh.com``
    included, was refused (REQUEST_FAILURE when it wanted a reply)."""

    name: str
    want_reply: bool
    accepted: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class GlobalReplyReceived:
    """The peer answered our global request ``name`` (REQUEST_SUCCESS or FAILURE)."""

    name: str
    success: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelWritable:
    """The peer's window grew: ``writable`` bytes may be queued now."""

    channel_id: int
    writable: int


ConnectionEvent: TypeAlias = (
    ChannelOpened
    | ChannelOpenFailed
    | SessionEvent
    | ChannelDataReceived
    | ChannelEOFReceived
    | ChannelClosed
    | ChannelWritable
    | GlobalRequestReceived
    | GlobalReplyReceived
)


_Received: TypeAlias = ServerEvent | ClientEvent | ChannelWritable


class _Channel:
    """One channel's numbers, windows and outgoing queue."""

    __slots__ = (
        "close_received",
        "close_sent",
        "confirmed",
        "consumed",
        "excess",
        "local_id",
        "queue",
        "queued_bytes",
        "recv_max_packet",
        "recv_window",
        "recv_window_max",
        "remote_id",
        "send_max_packet",
        "send_window",
        "sent",
        "session",
        "unconsumed",
    )

    def __init__(self, local_id: int, session: ServerSession | ClientSession) -> None:
        self.local_id = local_id
        self.session = session
        self.confirmed = False  # the peer's channel number is known: messages may flow
        self.remote_id = 0
        self.recv_window = 0
        self.recv_window_max = 0
        self.recv_max_packet = 0
        self.consumed = 0  # consumed, not yet given back in a WINDOW_ADJUST
        self.unconsumed = 0  # handed to the application, not yet consumed
        self.excess = 0
        self.send_window = 0
        self.send_max_packet = 0
        # None while empty: an idle channel keeps no deque (760 bytes each).
        self.queue: collections.deque[Outgoing] | None = None
        self.queued_bytes = 0
        self.sent = 0  # bytes of the data item at the head of the queue already sent
        self.close_sent = False
        self.close_received = False


class Connection:
    """RFC 4254 for one side of an authenticated connection.

    Feed it payloads numbered 80-127 with :meth:`receive_payload`; drain what it
    sends with :meth:`payloads_to_send`. Sessions are reached by channel id; their
    own verbs (:meth:`session`) may be called directly, and what they queue is
    picked up by the next :meth:`payloads_to_send`.
    """

    __slots__ = (
        "_channels",
        "_config",
        "_global_pending",
        "_no_more_sessions",
        "_outgoing",
        "_role",
    )

    def __init__(self, role: Role, config: ConnectionConfig | None = None) -> None:
        self._role = role
        self._config = config or ConnectionConfig()
        self._channels: dict[int, _Channel] = {}
        self._outgoing: list[bytes] = []
        self._no_more_sessions = False
        # A list, not a deque: a few keepalives at most (ClientAliveCountMax), and an
        # empty deque costs every connection 760 bytes.
        self._global_pending: list[str] = []

    # -- introspection -------------------------------------------------------------------

    @property
    def channel_ids(self) -> tuple[int, ...]:
        """Ids of the channels not yet closed by both sides."""
        return tuple(self._channels)

    def session(self, channel_id: int) -> ServerSession | ClientSession:
        """The session machine of a channel (KeyError if there is none)."""
        return self._channels[channel_id].session

    def writable(self, channel_id: int) -> int:
        """How many more bytes :meth:`send_data` takes on this channel now.

        0 once we sent EOF or CLOSE, once the peer closed, and for a channel that is
        gone: the events of one batch may name a channel that a later event of the
        same batch closed.
        """
        channel = self._channels.get(channel_id)
        if channel is None or channel.close_received or channel.close_sent:
            return 0
        self._drain(channel)
        if channel.session.eof_sent:
            return 0
        return max(0, self._config.max_buffered_bytes + channel.send_window - channel.queued_bytes)

    def send_window(self, channel_id: int) -> int:
        """What the peer's window allows us to send on this channel right now."""
        return self._channel(channel_id).send_window

    # -- output --------------------------------------------------------------------------

    def payloads_to_send(self) -> list[bytes]:
        """Drain every payload to send, in order (sessions' queued output included)."""
        for channel in list(self._channels.values()):
            self._sync(channel)
        out, self._outgoing = self._outgoing, []
        return out

    # -- verbs ---------------------------------------------------------------------------

    def send_data(self, channel_id: int, data: bytes, data_type: int | None = None) -> None:
        """Queue data (``data_type`` 1 for stderr); split and sent as windows allow.

        Raises ``KeyError`` for a channel that is gone, the session machine's
        ``LocalProtocolError`` after EOF or CLOSE, and :class:`BufferFullError` past
        :meth:`writable`.
        """
        channel = self._channel(channel_id)
        self._drain(channel)
        room = self._config.max_buffered_bytes + channel.send_window - channel.queued_bytes
        if len(data) > room and not channel.session.eof_sent:
            raise BufferFullError(
                f"channel {channel_id}: {len(data)} bytes do not fit, {max(room, 0)} writable"
            )
        session = channel.session
        if data_type is None:
            session.send_data(data)
        elif isinstance(session, ServerSession):
            session.send_extended_data(data, data_type)
        else:
            raise ValueError("clients send no extended data (RFC 4254 5.2)")
        self._sync(channel)

    def consume(self, channel_id: int, size: int) -> bool:
        """Say that ``size`` bytes of received data were used (``auto_consume`` off).

        The peer's window grows again by what is consumed, in WINDOW_ADJUSTs of half
        the window at most once per half window: returns whether this call queued
        one, so that an adapter knows it has something to send. A channel that is
        gone is ignored: nothing more arrives on it.
        """
        if self._config.auto_consume:
            raise ValueError("consume() is for ConnectionConfig(auto_consume=False)")
        channel = self._channels.get(channel_id)
        if channel is None:
            return False
        if not 0 <= size <= channel.unconsumed:
            raise ValueError(f"channel {channel_id}: {size} bytes, {channel.unconsumed} received")
        channel.unconsumed -= size
        channel.consumed += size
        return self._adjust_window(channel)

    def send_global_request(self, name: str, *, want_reply: bool = True) -> None:
        """Queue a global request without data (``keepalive@openssh.com``); a
        :class:`GlobalReplyReceived` follows when it wants a reply."""
        # RFC 4254 section 4: byte 80, string request name, boolean want reply.
        self._outgoing.append(
            bytes([MSG_GLOBAL_REQUEST]) + encode_text(name) + encode_boolean(want_reply)
        )
        if want_reply:
            self._global_pending.append(name)

    def open_session(self) -> int:
        """Client: open a session channel; :class:`ChannelOpened` follows."""
        if self._role is not Role.CLIENT:
            raise ValueError("only a client opens session channels")
        channel = _Channel(self._free_id(), ClientSession())
        self._open_receive_window(channel, announce=False)
        self._channels[channel.local_id] = channel
        # RFC 4254 section 6.1: byte 90, string "session", uint32 sender channel,
        # uint32 initial window size, uint32 maximum packet size.
        self._outgoing.append(
            bytes([MSG_CHANNEL_OPEN])
            + encode_text("session")
            + encode_uint32(channel.local_id)
            + encode_uint32(channel.recv_window)
            + encode_uint32(channel.recv_max_packet)
        )
        return channel.local_id

    # -- input ---------------------------------------------------------------------------

    def receive_payloads(self, payloads: Sequence[bytes]) -> list[ConnectionEvent]:
        """Take payloads numbered 80 to 127 that arrived together, in order.

        Consecutive data on one channel (and of one type) is reported as one
        :class:`ChannelDataReceived`: channel data is a byte stream (RFC 4254 section
        5.2), and an application is better served by what arrived in one piece than
        by an event per packet of at most 32 KiB. Each packet is still checked
        against the channel's window and maximum packet size.
        """
        events: list[ConnectionEvent] = []
        start, count = 0, len(payloads)
        while start < count:
            head = payloads[start]
            key = _data_run_key(head)
            end = start + 1
            while end < count and key is not None and payloads[end][: len(key)] == key:
                end += 1
            run = self._channel_data(payloads[start:end], len(key) + 4) if key else None
            if run is None:
                events += self.receive_payload(head)
                start += 1
            else:
                events += run
                start = end
        return events

    def receive_payload(self, payload: bytes) -> list[ConnectionEvent]:
        """Take one payload numbered 80 to 127."""
        number = payload[0] if payload else -1
        reader = Reader(payload, 1)
        if number == MSG_GLOBAL_REQUEST:
            return [self._global_request(reader)]
        if number in (MSG_REQUEST_SUCCESS, MSG_REQUEST_FAILURE) and self._global_pending:
            # RFC 4254 section 4: replies come in the order of the requests. A success
            # may carry request-specific data, which none of ours expects.
            name = self._global_pending.pop(0)
            return [GlobalReplyReceived(name=name, success=number == MSG_REQUEST_SUCCESS)]
        if number == MSG_CHANNEL_OPEN:
            return self._channel_open(reader)
        if MSG_CHANNEL_OPEN_CONFIRMATION <= number <= MSG_CHANNEL_FAILURE:  # 91-100
            channel = self._channel(reader.uint32("recipient channel"), number)
            if number in (MSG_CHANNEL_OPEN_CONFIRMATION, MSG_CHANNEL_OPEN_FAILURE):
                return self._open_reply(channel, number, reader)
            if not channel.confirmed:
                raise ProtocolError(f"message {number} on channel {channel.local_id} before open")
            events = self._channel_message(channel, number, reader)
            if number != MSG_CHANNEL_DATA:  # data makes the session send nothing
                self._sync(channel)
            return events
        raise ProtocolError(f"unexpected connection message {number}")

    def _channel_data(
        self, payloads: Sequence[bytes], header_size: int
    ) -> list[ConnectionEvent] | None:
        """Data packets for one channel, of one type, in one go: most packets of a
        transfer, read without the general path's layers. ``None`` when one is not
        well formed or the channel is not open: the general path then reads them one
        by one and says what is wrong."""
        # RFC 4254 section 5.2: byte 94, uint32 recipient channel, string data; or
        # byte 95, uint32 recipient channel, uint32 data type code, string data.
        first = payloads[0]
        channel = self._channels.get(_UINT32.unpack_from(first, 1)[0])
        if channel is None or not channel.confirmed:
            return None
        for payload in payloads:
            if (
                len(payload) < header_size
                or _UINT32.unpack_from(payload, header_size - 4)[0] != len(payload) - header_size
            ):
                return None
        for payload in payloads:
            self._account_received(channel, len(payload) - header_size)
        if len(payloads) == 1:
            data = first[header_size:]
        else:
            data = b"".join([memoryview(payload)[header_size:] for payload in payloads])
        session = channel.session
        if header_size == _DATA_HEADER.size:
            event = session.receive_data(data)
        else:
            event = session.receive_extended_data(_UINT32.unpack_from(first, 5)[0], data)
        if type(event) is DataReceived:
            return [self._data_received(channel, event)]
        return self._wrap(channel, event)

    # -- global requests -----------------------------------------------------------------

    def _global_request(self, reader: Reader) -> GlobalRequestReceived:
        # RFC 4254 section 4: byte 80, string request name, boolean want reply, data.
        name = reader.text("request name", MAX_NAME_LENGTH)
        want_reply = reader.boolean("want reply")
        if name == "no-more-sessions@openssh.com" and self._role is Role.SERVER:
            # OpenSSH PROTOCOL 2.2: no further session channels will be opened.
            self._no_more_sessions = True
            return GlobalRequestReceived(name=name, want_reply=want_reply, accepted=True)
        if want_reply:
            # serverloop.c server_input_global_request: anything else (keepalive@openssh.com
            # included: any reply means alive) gets REQUEST_FAILURE.
            self._outgoing.append(bytes([MSG_REQUEST_FAILURE]))
        return GlobalRequestReceived(name=name, want_reply=want_reply, accepted=False)

    # -- opening -------------------------------------------------------------------------

    def _channel_open(self, reader: Reader) -> list[ConnectionEvent]:
        # RFC 4254 section 5.1: byte 90, string channel type, uint32 sender channel,
        # uint32 initial window size, uint32 maximum packet size, type-specific data.
        channel_type = reader.text("channel type", MAX_NAME_LENGTH)
        sender = reader.uint32("sender channel")
        window = reader.uint32("initial window size")
        max_packet = reader.uint32("maximum packet size")
        if self._role is not Role.SERVER or channel_type != "session":
            if channel_type in KNOWN_CHANNEL_TYPES:
                reason = OpenFailureReason.ADMINISTRATIVELY_PROHIBITED
            else:
                reason = OpenFailureReason.UNKNOWN_CHANNEL_TYPE
            self._open_failure(sender, reason, f"{channel_type} channels are not served")
            return []
        reader.end("session channel open")
        if self._no_more_sessions:
            # serverloop.c server_request_session: "Possible attack: attempt to open a
            # session after additional sessions disabled" drops the connection.
            raise ProtocolError("session channel opened after no-more-sessions@openssh.com")
        sessions = sum(1 for c in self._channels.values() if not c.close_sent)
        if sessions >= self._config.max_sessions:
            # session.c session_new refuses beyond MaxSessions; serverloop.c answers
            # ADMINISTRATIVELY_PROHIBITED.
            self._open_failure(
                sender, OpenFailureReason.ADMINISTRATIVELY_PROHIBITED, "too many sessions"
            )
            return []
        channel = _Channel(self._free_id(), ServerSession(self._config.session_policy))
        channel.remote_id = sender
        channel.confirmed = True
        channel.send_window = window
        channel.send_max_packet = max_packet
        channel.recv_max_packet = self._config.max_packet_size
        self._channels[channel.local_id] = channel
        # RFC 4254 section 5.1: byte 91, uint32 recipient channel, uint32 sender channel,
        # uint32 initial window size (0: no data before the program starts, as session.c),
        # uint32 maximum packet size.
        self._outgoing.append(
            bytes([MSG_CHANNEL_OPEN_CONFIRMATION])
            + encode_uint32(sender)
            + encode_uint32(channel.local_id)
            + encode_uint32(0)
            + encode_uint32(channel.recv_max_packet)
        )
        return [ChannelOpened(channel_id=channel.local_id)]

    def _open_failure(self, sender: int, reason: OpenFailureReason, description: str) -> None:
        # RFC 4254 section 5.1: byte 92, uint32 recipient channel, uint32 reason code,
        # string description (UTF-8), string language tag.
        self._outgoing.append(
            bytes([MSG_CHANNEL_OPEN_FAILURE])
            + encode_uint32(sender)
            + encode_uint32(reason)
            + encode_text(description)
            + encode_string(b"")
        )

    def _open_reply(self, channel: _Channel, number: int, reader: Reader) -> list[ConnectionEvent]:
        if channel.confirmed:
            raise ProtocolError(f"open reply for channel {channel.local_id}, which is open")
        if number == MSG_CHANNEL_OPEN_FAILURE:
            reason = reader.uint32("reason code")
            description = reader.text("description")
            reader.text("language tag", MAX_NAME_LENGTH)
            reader.end("channel open failure")
            del self._channels[channel.local_id]
            return [
                ChannelOpenFailed(
                    channel_id=channel.local_id, reason=reason, description=description
                )
            ]
        channel.remote_id = reader.uint32("sender channel")
        channel.confirmed = True
        channel.send_window = reader.uint32("initial window size")
        channel.send_max_packet = reader.uint32("maximum packet size")
        reader.end("channel open confirmation")
        self._sync(channel)
        return [ChannelOpened(channel_id=channel.local_id)]

    # -- channel messages ----------------------------------------------------------------

    def _channel_message(
        self, channel: _Channel, number: int, reader: Reader
    ) -> list[ConnectionEvent]:
        handler = _CHANNEL_HANDLERS[number]
        return self._wrap(channel, handler(self, channel, reader))

    def _on_window_adjust(self, channel: _Channel, reader: Reader) -> _Received:
        # RFC 4254 section 5.2: uint32 bytes to add.
        add = reader.uint32("bytes to add")
        reader.end("window adjust")
        if channel.send_window + add > UINT32_MAX:
            # channels.c channel_input_window_adjust: "adjust overflows remote window".
            raise ProtocolError(f"channel {channel.local_id}: window adjust overflows")
        channel.send_window += add
        self._pump(channel)
        return ChannelWritable(
            channel_id=channel.local_id, writable=self.writable(channel.local_id)
        )

    def _on_data(self, channel: _Channel, reader: Reader) -> _Received:
        # RFC 4254 section 5.2: byte 94, uint32 recipient channel, string data.
        data = reader.string("data")
        reader.end("channel data")
        self._account_received(channel, len(data))
        return channel.session.receive_data(data)

    def _on_extended_data(self, channel: _Channel, reader: Reader) -> _Received:
        # RFC 4254 section 5.2: byte 95, uint32 recipient, uint32 data type code, string data.
        data_type = reader.uint32("data type code")
        data = reader.string("data")
        reader.end("channel extended data")
        self._account_received(channel, len(data))
        return channel.session.receive_extended_data(data_type, data)

    def _on_eof(self, channel: _Channel, reader: Reader) -> _Received:
        reader.end("channel EOF")
        return channel.session.receive_eof()

    def _on_close(self, channel: _Channel, reader: Reader) -> _Received:
        reader.end("channel close")
        # A second CLOSE cannot reach here: the channel is freed at the first, since
        # ours follows at once (nothing is left in front of it).
        channel.close_received = True
        # RFC 4254 section 5.3: the peer reads nothing more; queued data is dropped.
        if channel.queue:
            channel.queue = collections.deque(
                item for item in channel.queue if not isinstance(item, OutgoingData)
            )
        channel.queued_bytes = 0
        channel.sent = 0
        return channel.session.receive_close()

    def _on_request(self, channel: _Channel, reader: Reader) -> _Received:
        # RFC 4254 section 5.4: string request type, boolean want reply, type-specific data.
        request_type = reader.text("request type", MAX_NAME_LENGTH)
        want_reply = reader.boolean("want reply")
        return channel.session.receive_channel_request(request_type, reader.rest(), want_reply)

    def _on_success(self, channel: _Channel, reader: Reader) -> _Received:
        reader.end("channel success")
        return channel.session.receive_reply(True)

    def _on_failure(self, channel: _Channel, reader: Reader) -> _Received:
        reader.end("channel failure")
        return channel.session.receive_reply(False)

    def _wrap(self, channel: _Channel, event: _Received) -> list[ConnectionEvent]:
        channel_id = channel.local_id
        if isinstance(event, Discarded):
            return []
        if isinstance(event, ChannelWritable):
            return [event]
        if isinstance(event, DataReceived):
            return [self._data_received(channel, event)]
        if isinstance(event, EOFReceived):
            return [ChannelEOFReceived(channel_id=channel_id)]
        if isinstance(event, CloseReceived):
            return [ChannelClosed(channel_id=channel_id)]
        return [SessionEvent(channel_id=channel_id, event=event)]

    def _data_received(self, channel: _Channel, event: DataReceived) -> ChannelDataReceived:
        if self._config.auto_consume:
            channel.consumed += len(event.data)
            self._adjust_window(channel)
        else:
            channel.unconsumed += len(event.data)
        return ChannelDataReceived(
            channel_id=channel.local_id, data=event.data, data_type=event.data_type
        )

    def _account_received(self, channel: _Channel, length: int) -> None:
        if length > channel.recv_max_packet:
            raise ProtocolError(
                f"channel {channel.local_id}: {length}-byte packet, maximum "
                f"{channel.recv_max_packet}"
            )
        if length <= channel.recv_window:
            channel.recv_window -= length
            return
        # channels.c channel_input_data: count the excess, allow a tenth of the window.
        channel.excess += length - channel.recv_window
        channel.recv_window = 0
        if channel.excess > channel.recv_window_max // 10:
            raise ProtocolError(f"channel {channel.local_id}: peer ignored the channel window")

    def _adjust_window(self, channel: _Channel) -> bool:
        # Give the consumed bytes back once they are half the window, as h2's
        # WindowManager and h2o do, or once the peer cannot send a whole packet more;
        # never after CLOSE (channels.c channel_check_window). OpenSSH also adjusts
        # as soon as three packets are outstanding, checked once per poll loop; checked
        # per consume that is a WINDOW_ADJUST (a packet, a send and a wake-up of the
        # peer) for every read of a bulk upload, while half of a 2 MiB window keeps
        # more in flight than loopback or a LAN needs.
        consumed = channel.consumed
        if consumed == 0 or channel.close_sent or channel.close_received:
            return False
        if (
            consumed < channel.recv_window_max // 2
            and channel.recv_window >= channel.recv_max_packet
        ):
            return False
        self._window_adjust(channel, consumed)
        channel.consumed = 0
        return True

    def _window_adjust(self, channel: _Channel, add: int) -> None:
        # RFC 4254 section 5.2: byte 93, uint32 recipient channel, uint32 bytes to add.
        channel.recv_window += add
        self._outgoing.append(
            bytes([MSG_CHANNEL_WINDOW_ADJUST])
            + encode_uint32(channel.remote_id)
            + encode_uint32(add)
        )

    def _open_receive_window(self, channel: _Channel, *, announce: bool) -> None:
        channel.recv_window_max = self._config.window_size
        channel.recv_max_packet = self._config.max_packet_size
        if announce:
            self._window_adjust(channel, self._config.window_size)
        else:
            channel.recv_window = self._config.window_size

    # -- sending -------------------------------------------------------------------------

    def _drain(self, channel: _Channel) -> None:
        for item in channel.session.items_to_send():
            if isinstance(item, OutgoingData):
                if channel.close_received or not item.data:
                    continue
                channel.queued_bytes += len(item.data)
            if channel.queue is None:
                channel.queue = collections.deque()
            channel.queue.append(item)

    def _sync(self, channel: _Channel) -> None:
        """Move the session's output into the queue, send what fits, free when closed."""
        self._drain(channel)
        if not channel.confirmed:
            return
        session = channel.session
        if (
            isinstance(session, ServerSession)
            and channel.recv_window_max == 0
            and session.program_started
            and not (channel.close_sent or channel.close_received)
        ):
            # session.c: the window opens once the program runs (channel_set_fds).
            self._open_receive_window(channel, announce=True)
        self._pump(channel)
        if not channel.queue:
            channel.queue = None
        if channel.close_sent and channel.close_received:
            del self._channels[channel.local_id]

    def _pump(self, channel: _Channel) -> None:
        if not channel.confirmed:
            return
        remote_id = channel.remote_id
        queue = channel.queue
        while queue:
            item = queue[0]
            if isinstance(item, OutgoingData):
                # channel.sent counts what of queue[0] is already out, so a large
                # buffer is cut into packets without copying its tail each time.
                view = memoryview(item.data)
                limit = min(channel.send_max_packet, MAX_DATA_CHUNK)
                while channel.sent < len(view) and channel.send_window > 0 and limit > 0:
                    size = min(len(view) - channel.sent, channel.send_window, limit)
                    chunk = view[channel.sent : channel.sent + size]
                    self._outgoing.append(_data_message(remote_id, item.data_type, chunk))
                    channel.sent += size
                    channel.send_window -= size
                    channel.queued_bytes -= size
                if channel.sent < len(view):
                    return
                channel.sent = 0
            else:
                self._outgoing.append(encode_outgoing(item, remote_id))
                if isinstance(item, OutgoingClose):
                    channel.close_sent = True
            queue.popleft()

    # -- helpers -------------------------------------------------------------------------

    def _channel(self, channel_id: int, number: int | None = None) -> _Channel:
        channel = self._channels.get(channel_id)
        if channel is None:
            if number is None:
                raise KeyError(channel_id)
            # channels.c channel_from_packet_id: "referred to nonexistent channel".
            raise ProtocolError(f"message {number} for nonexistent channel {channel_id}")
        return channel

    def _free_id(self) -> int:
        # channels.c channel_new reuses the lowest free slot.
        channel_id = 0
        while channel_id in self._channels:
            channel_id += 1
        return channel_id


_UINT32: Final = struct.Struct(">I")
_DATA_HEADER: Final = struct.Struct(">BII")
_EXTENDED_DATA_HEADER: Final = struct.Struct(">BIII")


def _data_run_key(payload: bytes) -> bytes | None:
    """What a data payload's run shares (number, channel, and type for extended
    data), or ``None`` for any other payload."""
    if payload[:1] == b"\x5e" and len(payload) >= _DATA_HEADER.size:
        return payload[:5]
    if payload[:1] == b"\x5f" and len(payload) >= _EXTENDED_DATA_HEADER.size:
        return payload[:9]
    return None


def _data_message(remote_id: int, data_type: int | None, chunk: memoryview) -> bytes:
    # RFC 4254 section 5.2: byte 94, uint32 recipient channel, string data; or byte 95,
    # uint32 recipient channel, uint32 data type code, string data.
    if data_type is None:
        header = _DATA_HEADER.pack(MSG_CHANNEL_DATA, remote_id, len(chunk))
    else:
        header = _EXTENDED_DATA_HEADER.pack(
            MSG_CHANNEL_EXTENDED_DATA, remote_id, data_type, len(chunk)
        )
    return header + chunk


_Handler: TypeAlias = Callable[[Connection, _Channel, Reader], _Received]

_CHANNEL_HANDLERS: Final[Mapping[int, _Handler]] = MappingProxyType(
    {
        MSG_CHANNEL_WINDOW_ADJUST: Connection._on_window_adjust,
        MSG_CHANNEL_DATA: Connection._on_data,
        MSG_CHANNEL_EXTENDED_DATA: Connection._on_extended_data,
        MSG_CHANNEL_EOF: Connection._on_eof,
        MSG_CHANNEL_CLOSE: Connection._on_close,
        MSG_CHANNEL_REQUEST: Connection._on_request,
        MSG_CHANNEL_SUCCESS: Connection._on_success,
        MSG_CHANNEL_FAILURE: Connection._on_failure,
    }
)
"""Messages on an open channel (RFC 4254 sections 5.2-5.4), by message number."""
