"""Connection-layer messages that carry channel requests and their replies (RFC 4254).

``encode()`` gives the whole message payload, message number byte included;
``parse(data)`` takes the same and refuses anything else: another message number,
a field cut short, or bytes after the last field raise
:class:`~ptycore.ProtocolError`, with ``offset`` counted from the message number.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass

from ._errors import ProtocolError
from ._wire import Reader, encode_boolean, encode_text, pack_byte_uint32
from .requests import (
    DEFAULT_LIMITS,
    ChannelRequest,
    RequestLimits,
    _check_bool,
    _check_uint32,
    parse_request,
)

__all__ = [
    "ChannelFailureMessage",
    "ChannelRequestMessage",
    "ChannelSuccessMessage",
    "MessageNumber",
]

_REQUEST_CLASSES = typing.get_args(ChannelRequest)


class MessageNumber(enum.IntEnum):
    """The connection protocol's message numbers (RFC 4254 section 9)."""

    GLOBAL_REQUEST = 80
    REQUEST_SUCCESS = 81
    REQUEST_FAILURE = 82
    CHANNEL_OPEN = 90
    CHANNEL_OPEN_CONFIRMATION = 91
    CHANNEL_OPEN_FAILURE = 92
    CHANNEL_WINDOW_ADJUST = 93
    CHANNEL_DATA = 94
    CHANNEL_EXTENDED_DATA = 95
    CHANNEL_EOF = 96
    CHANNEL_CLOSE = 97
    CHANNEL_REQUEST = 98
    CHANNEL_SUCCESS = 99
    CHANNEL_FAILURE = 100


def _message_number(reader: Reader, expected: MessageNumber) -> None:
    number = reader.byte("message_number")
    if number != expected:
        raise ProtocolError(
            f"expected message {expected.value} ({expected.name}), got {number}",
            field="message_number",
            offset=0,
        )


def _end(reader: Reader) -> None:
    if reader.remaining:
        raise ProtocolError(
            f"{reader.remaining} unexpected bytes after the last field",
            field="payload",
            offset=reader.offset,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelRequestMessage:
    """``SSH_MSG_CHANNEL_REQUEST`` (RFC 4254 section 5.4)::

        byte      SSH_MSG_CHANNEL_REQUEST
        uint32    recipient channel
        string    request type in US-ASCII characters only
        boolean   want reply
        ....      type-specific data follows

    The type name and the type-specific data are the ``request``
    (:func:`~ptycore.parse_request`).
    """

    recipient_channel: int
    want_reply: bool
    request: ChannelRequest

    def __post_init__(self) -> None:
        _check_uint32("recipient_channel", self.recipient_channel)
        _check_bool("want_reply", self.want_reply)
        if not isinstance(self.request, _REQUEST_CLASSES):
            raise TypeError(f"request must be a channel request, not {self.request!r}")

    def encode(self) -> bytes:
        request = self.request
        return (
            pack_byte_uint32(MessageNumber.CHANNEL_REQUEST, self.recipient_channel)
            + encode_text(request.request_type)
            + encode_boolean(self.want_reply)
            + request.encode()
        )

    @classmethod
    def parse(
        cls, data: bytes, *, limits: RequestLimits = DEFAULT_LIMITS
    ) -> ChannelRequestMessage:
        """Parse the whole message; the request with :func:`~ptycore.parse_request`."""
        reader = Reader(data)
        _message_number(reader, MessageNumber.CHANNEL_REQUEST)
        recipient_channel = reader.uint32("recipient_channel")
        request_type = reader.string("request_type", limits.max_type_length)
        want_reply = reader.boolean("want_reply")
        start = reader.offset
        try:
            request = parse_request(request_type, reader.rest(), limits=limits)
        except ProtocolError as error:
            # Count from the message's start; a type name error points into the name.
            base = 9 if error.field == "request_type" else start
            raise ProtocolError(
                error.message,
                reason=error.reason,
                request_type=error.request_type,
                field=error.field,
                offset=None if error.offset is None else base + error.offset,
            ) from None
        message = object.__new__(cls)
        object.__setattr__(message, "recipient_channel", recipient_channel)
        object.__setattr__(message, "want_reply", want_reply)
        object.__setattr__(message, "request", request)
        return message


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelSuccessMessage:
    """``SSH_MSG_CHANNEL_SUCCESS`` (RFC 4254 section 5.4): byte 99, uint32 recipient."""

    recipient_channel: int

    def __post_init__(self) -> None:
        _check_uint32("recipient_channel", self.recipient_channel)

    def encode(self) -> bytes:
        return pack_byte_uint32(MessageNumber.CHANNEL_SUCCESS, self.recipient_channel)

    @classmethod
    def parse(cls, data: bytes) -> ChannelSuccessMessage:
        reader = Reader(data)
        _message_number(reader, MessageNumber.CHANNEL_SUCCESS)
        recipient_channel = reader.uint32("recipient_channel")
        _end(reader)
        return cls(recipient_channel=recipient_channel)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelFailureMessage:
    """``SSH_MSG_CHANNEL_FAILURE`` (RFC 4254 section 5.4): byte 100, uint32 recipient."""

    recipient_channel: int

    def __post_init__(self) -> None:
        _check_uint32("recipient_channel", self.recipient_channel)

    def encode(self) -> bytes:
        return pack_byte_uint32(MessageNumber.CHANNEL_FAILURE, self.recipient_channel)

    @classmethod
    def parse(cls, data: bytes) -> ChannelFailureMessage:
        reader = Reader(data)
        _message_number(reader, MessageNumber.CHANNEL_FAILURE)
        recipient_channel = reader.uint32("recipient_channel")
        _end(reader)
        return cls(recipient_channel=recipient_channel)
