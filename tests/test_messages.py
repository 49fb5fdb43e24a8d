"""SSH_MSG_CHANNEL_REQUEST, SUCCESS and FAILURE: round trips, strictness, offsets."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ptycore import (
    ChannelFailureMessage,
    ChannelRequestMessage,
    ChannelSuccessMessage,
    ExecRequest,
    MessageNumber,
    ProtocolError,
    PtyRequest,
    RequestLimits,
    ShellRequest,
    UnknownRequest,
    WindowSize,
)
from test_requests import OPENSSH_PTY_REQ, requests, string, uint32s

Reply = type[ChannelSuccessMessage] | type[ChannelFailureMessage]


def request_message(channel: int, name: bytes, want_reply: int, payload: bytes) -> bytes:
    return bytes([98]) + struct.pack(">I", channel) + string(name) + bytes([want_reply]) + payload


def test_message_numbers_are_rfc_4254_section_9() -> None:
    assert {m.name: m.value for m in MessageNumber} == {
        "GLOBAL_REQUEST": 80,
        "REQUEST_SUCCESS": 81,
        "REQUEST_FAILURE": 82,
        "CHANNEL_OPEN": 90,
        "CHANNEL_OPEN_CONFIRMATION": 91,
        "CHANNEL_OPEN_FAILURE": 92,
        "CHANNEL_WINDOW_ADJUST": 93,
        "CHANNEL_DATA": 94,
        "CHANNEL_EXTENDED_DATA": 95,
        "CHANNEL_EOF": 96,
        "CHANNEL_CLOSE": 97,
        "CHANNEL_REQUEST": 98,
        "CHANNEL_SUCCESS": 99,
        "CHANNEL_FAILURE": 100,
    }


@given(uint32s, st.booleans(), requests)
def test_request_message_round_trips(channel: int, want_reply: bool, request: Any) -> None:
    message = ChannelRequestMessage(
        recipient_channel=channel, want_reply=want_reply, request=request
    )
    wire = message.encode()
    assert wire[0] == MessageNumber.CHANNEL_REQUEST
    parsed = ChannelRequestMessage.parse(wire)
    assert parsed == message
    assert parsed.encode() == wire


def test_real_pty_req_message() -> None:
    wire = request_message(0, b"pty-req", 1, OPENSSH_PTY_REQ)
    message = ChannelRequestMessage.parse(wire)
    assert message.recipient_channel == 0
    assert message.want_reply is True
    assert isinstance(message.request, PtyRequest)
    assert message.request.size == WindowSize(cols=80, rows=24)
    assert message.encode() == wire


@pytest.mark.parametrize(
    ("cls", "number"),
    [(ChannelSuccessMessage, 99), (ChannelFailureMessage, 100)],
)
@given(channel=uint32s)
def test_replies_round_trip(cls: Reply, number: int, channel: int) -> None:
    message = cls(recipient_channel=channel)
    wire = message.encode()
    assert wire == bytes([number]) + struct.pack(">I", channel)
    assert cls.parse(wire) == message


@given(st.binary(max_size=80))
def test_any_bytes_give_a_message_or_a_protocol_error(data: bytes) -> None:
    for parse in (
        ChannelRequestMessage.parse,
        ChannelSuccessMessage.parse,
        ChannelFailureMessage.parse,
    ):
        result = parse_or_error(parse, data)
        if isinstance(result, ProtocolError):
            assert result.field is not None
            assert result.offset is not None
            assert 0 <= result.offset <= len(data)
        else:
            assert result.encode()[0] == data[0]


def parse_or_error(parse: Any, data: bytes) -> Any:
    try:
        return parse(data)
    except ProtocolError as error:
        return error


# Offsets count from the message number byte.
MALFORMED: list[tuple[Any, bytes, str, int, str | None]] = [
    (ChannelRequestMessage, b"", "message_number", 0, None),
    (ChannelRequestMessage, bytes([99, 0, 0, 0, 0]), "message_number", 0, None),
    (ChannelRequestMessage, bytes([98, 0, 0]), "recipient_channel", 1, None),
    (ChannelRequestMessage, bytes([98, 0, 0, 0, 0, 0, 0]), "request_type", 5, None),
    (ChannelRequestMessage, request_message(1, b"shell", 1, b"")[:-1], "want_reply", 14, None),
    (ChannelRequestMessage, request_message(1, b"shell", 1, b"!"), "payload", 15, "shell"),
    (ChannelRequestMessage, request_message(1, b"exec", 0, b"\0\0"), "command", 14, "exec"),
    (
        ChannelRequestMessage,
        request_message(1, b"x\0y", 0, b""),
        "request_type",
        10,
        "x\0y",
    ),
    (ChannelSuccessMessage, b"", "message_number", 0, None),
    (ChannelSuccessMessage, bytes([100, 0, 0, 0, 0]), "message_number", 0, None),
    (ChannelSuccessMessage, bytes([99, 0, 0, 0]), "recipient_channel", 1, None),
    (ChannelSuccessMessage, bytes([99, 0, 0, 0, 0, 0]), "payload", 5, None),
    (ChannelFailureMessage, bytes([99, 0, 0, 0, 0]), "message_number", 0, None),
    (ChannelFailureMessage, bytes([100, 0, 0, 0, 0, 0]), "payload", 5, None),
    (ChannelFailureMessage, bytes([100]), "recipient_channel", 1, None),
]


@pytest.mark.parametrize(("cls", "data", "field", "offset", "request_type"), MALFORMED)
def test_malformed_messages(
    cls: Any, data: bytes, field: str, offset: int, request_type: str | None
) -> None:
    with pytest.raises(ProtocolError) as info:
        cls.parse(data)
    error = info.value
    assert (error.field, error.offset, error.request_type) == (field, offset, request_type)


def test_request_type_cap_applies_to_the_message() -> None:
    wire = request_message(7, b"x-" + b"a" * 300, 0, b"")
    with pytest.raises(ProtocolError) as info:
        ChannelRequestMessage.parse(wire)
    assert (info.value.field, info.value.offset) == ("request_type", 5)
    limits = RequestLimits(max_type_length=302)
    message = ChannelRequestMessage.parse(wire, limits=limits)
    assert message.request == UnknownRequest(request_type="x-" + "a" * 300, payload=b"")


def test_any_nonzero_want_reply_is_true() -> None:
    message = ChannelRequestMessage.parse(request_message(3, b"shell", 2, b""))
    assert message == ChannelRequestMessage(
        recipient_channel=3, want_reply=True, request=ShellRequest()
    )


@pytest.mark.parametrize(
    ("cls", "kwargs", "error"),
    [
        (ChannelSuccessMessage, {"recipient_channel": -1}, ValueError),
        (ChannelFailureMessage, {"recipient_channel": 2**32}, ValueError),
        (ChannelFailureMessage, {"recipient_channel": "0"}, TypeError),
        (
            ChannelRequestMessage,
            {"recipient_channel": 0, "want_reply": 1, "request": ShellRequest()},
            TypeError,
        ),
        (
            ChannelRequestMessage,
            {"recipient_channel": 0, "want_reply": True, "request": b"shell"},
            TypeError,
        ),
        (
            ChannelRequestMessage,
            {"recipient_channel": 2**32, "want_reply": True, "request": ExecRequest(command="")},
            ValueError,
        ),
    ],
)
def test_misuse_is_refused_when_built(
    cls: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        cls(**kwargs)
