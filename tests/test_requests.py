"""Channel requests: round trips over the whole value space, strictness, caps, misuse."""

from __future__ import annotations

import re
import struct
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ptycore
from ptycore import (
    DEFAULT_LIMITS,
    STANDARD_SIGNALS,
    AgentForwardRequest,
    BreakRequest,
    ChannelRequest,
    EndOfWriteRequest,
    EnvRequest,
    ExecRequest,
    ExitSignalRequest,
    ExitStatusRequest,
    KeepaliveRequest,
    ModePolicy,
    Opcode,
    ProtocolError,
    PtyRequest,
    RequestLimits,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    TerminalModes,
    UnknownRequest,
    WindowChangeRequest,
    WindowSize,
    X11Request,
    XonXoffRequest,
    parse_request,
)
from ptycore.requests import _PARSERS

UINT32_MAX = 2**32 - 1
KNOWN_TYPES = sorted(_PARSERS)

# A pty-req the real OpenSSH client (OpenSSH_9.2p1 Debian-2+deb12u6) sends from a
# fresh Linux PTY after `stty sane` with TERM=xterm-256color, 80x24: the modes are
# tests/test_modes.py's OPENSSH_DEFAULT, 52 of them, and the payload is 299 bytes.
OPENSSH_MODES = bytes.fromhex(
    "810000960080000096000100000003020000001c030000007f0400000015050000000406000000ff"
    "07000000ff080000001109000000130a0000001a0c000000120d000000170e00000016120000000f"
    "1e000000001f00000000200000000021000000002200000000230000000024000000012500000000"
    "26000000012700000000280000000029000000002a00000000320000000133000000013400000000"
    "350000000136000000013700000001380000000039000000003a000000003b000000013c00000001"
    "3d000000013e0000000046000000014700000000480000000149000000004a000000004b00000000"
    "5a000000015b000000015c000000005d0000000000"
)


def string(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def pty_payload(
    term: bytes = b"vt100",
    numbers: tuple[int, ...] = (80, 24, 0, 0),
    modes: bytes = b"\x00",
) -> bytes:
    return string(term) + struct.pack(f">{len(numbers)}I", *numbers) + string(modes)


OPENSSH_PTY_REQ = pty_payload(b"xterm-256color", (80, 24, 0, 0), OPENSSH_MODES)


# -- strategies ---------------------------------------------------------------------

uint32s = st.one_of(st.integers(0, UINT32_MAX), st.sampled_from([0, 1, UINT32_MAX]))
# Text as the parser makes it: any str without surrogates, or any bytes decoded
# with surrogateescape (lone surrogates where the bytes are not UTF-8).
texts = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
)
# Without NUL: dropped from the bytes before decoding, since dropping it from the text
# could join two escaped bytes into valid UTF-8 that no parser ever returns.
cstrings = st.one_of(
    st.text(max_size=40).map(lambda text: text.replace("\0", "")),
    st.binary(max_size=40).map(
        lambda raw: raw.replace(b"\0", b"").decode("utf-8", "surrogateescape")
    ),
)
sizes = st.builds(WindowSize, cols=uint32s, rows=uint32s, width_px=uint32s, height_px=uint32s)
modes = st.one_of(
    st.lists(st.tuples(st.integers(1, 159), uint32s), max_size=20).map(TerminalModes),
    st.just(TerminalModes.decode(OPENSSH_MODES)),
)
unknown_names = st.one_of(
    st.text(max_size=30),
    st.binary(max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape")),
).filter(lambda name: name not in _PARSERS and "\0" not in name)

requests: st.SearchStrategy[ChannelRequest] = st.one_of(
    st.builds(PtyRequest, term=cstrings, size=sizes, modes=modes),
    st.builds(
        X11Request,
        single_connection=st.booleans(),
        auth_protocol=cstrings,
        auth_cookie=cstrings,
        screen=uint32s,
    ),
    st.builds(EnvRequest, name=cstrings, value=cstrings),
    st.just(ShellRequest()),
    st.builds(ExecRequest, command=cstrings),
    st.builds(SubsystemRequest, name=cstrings),
    st.builds(WindowChangeRequest, size=sizes),
    st.builds(XonXoffRequest, client_can_do=st.booleans()),
    st.builds(SignalRequest, name=cstrings),
    st.builds(ExitStatusRequest, status=uint32s),
    st.builds(
        ExitSignalRequest,
        name=cstrings,
        core_dumped=st.booleans(),
        message=texts,
        language=texts,
    ),
    st.builds(BreakRequest, length_ms=uint32s),
    st.builds(
        AgentForwardRequest,
        request_type=st.sampled_from(["auth-agent-req@openssh.com", "agent-req"]),
    ),
    st.just(EndOfWriteRequest()),
    st.just(KeepaliveRequest()),
    st.builds(UnknownRequest, request_type=unknown_names, payload=st.binary(max_size=60)),
)


# -- round trips --------------------------------------------------------------------


@given(requests)
def test_every_request_round_trips(request: ChannelRequest) -> None:
    payload = request.encode()
    parsed = parse_request(request.request_type, payload)
    assert parsed == request
    assert type(parsed) is type(request)
    assert parsed.encode() == payload
    wire_name = request.request_type.encode("utf-8", "surrogateescape")
    assert parse_request(wire_name, payload) == request


@given(st.sampled_from([*KNOWN_TYPES, "x-unknown@example.com"]), st.binary(max_size=120))
def test_any_bytes_give_a_request_or_a_protocol_error(name: str, payload: bytes) -> None:
    result = parse_or_error(name, payload)
    if isinstance(result, ProtocolError):
        assert result.request_type == name
        assert result.field is not None
        assert result.offset is not None
        assert 0 <= result.offset <= len(payload)
    else:
        assert result.request_type == name
        # Parse, encode, parse again: the same request.
        assert parse_request(name, result.encode()) == result


@given(st.binary(max_size=20), st.binary(max_size=20))
def test_any_type_name_gives_a_request_or_a_protocol_error(name: bytes, payload: bytes) -> None:
    result = parse_or_error(name, payload)
    if isinstance(result, ProtocolError):
        assert result.field is not None
        assert result.offset is not None
    else:
        assert result.request_type.encode("utf-8", "surrogateescape") == name


@given(requests, st.data())
def test_damaged_encodings_give_a_request_or_a_protocol_error(
    request: ChannelRequest, data: st.DataObject
) -> None:
    # Random payloads rarely get past the first field; damaged real ones do.
    payload = bytearray(request.encode())
    cut = data.draw(st.integers(0, len(payload)))
    if payload and data.draw(st.booleans()):
        payload[data.draw(st.integers(0, len(payload) - 1))] ^= data.draw(st.integers(1, 255))
    damaged = bytes(payload[:cut]) + data.draw(st.binary(max_size=8))
    result = parse_or_error(request.request_type, damaged)
    if isinstance(result, ProtocolError):
        assert result.request_type == request.request_type
        assert result.offset is not None
        assert 0 <= result.offset <= len(damaged)
    else:
        assert parse_request(request.request_type, result.encode()) == result


def parse_or_error(name: str | bytes, payload: bytes) -> ChannelRequest | ProtocolError:
    try:
        return parse_request(name, payload)
    except ProtocolError as error:
        return error


def test_real_openssh_pty_req() -> None:
    assert len(OPENSSH_PTY_REQ) == 299
    request = parse_request("pty-req", OPENSSH_PTY_REQ)
    assert isinstance(request, PtyRequest)
    assert request.term == "xterm-256color"
    assert request.size == WindowSize(cols=80, rows=24)
    assert len(request.modes) == 52
    assert request.modes[Opcode.VINTR] == 3
    assert request.modes[Opcode.TTY_OP_OSPEED] == 38400
    assert request.encode() == OPENSSH_PTY_REQ
    assert parse_request(b"pty-req", bytearray(OPENSSH_PTY_REQ)) == request
    assert parse_request("pty-req", memoryview(OPENSSH_PTY_REQ)) == request


def test_text_that_is_not_utf8_survives_byte_for_byte() -> None:
    payload = string(b"caf\xe9 \xff\xfe ls")
    request = parse_request("exec", payload)
    assert isinstance(request, ExecRequest)
    assert request.command == "caf\udce9 \udcff\udcfe ls"
    assert request.encode() == payload


def test_exit_status_keeps_all_32_bits() -> None:
    request = parse_request("exit-status", b"\xff\xff\xff\xfe")
    assert request == ExitStatusRequest(status=0xFFFFFFFE)
    assert request.encode() == b"\xff\xff\xff\xfe"


def test_any_nonzero_boolean_is_true() -> None:
    assert parse_request("xon-xoff", b"\x7f") == XonXoffRequest(client_can_do=True)
    assert parse_request("xon-xoff", b"\x00") == XonXoffRequest(client_can_do=False)


def test_signal_names_are_kept_verbatim() -> None:
    rfc_4254_6_10 = "ABRT ALRM FPE HUP ILL INT KILL PIPE QUIT SEGV TERM USR1 USR2"
    assert set(rfc_4254_6_10.split(" ")) == STANDARD_SIGNALS
    for name in STANDARD_SIGNALS:
        assert SignalRequest(name=name).is_standard
        assert ExitSignalRequest(name=name, core_dumped=False).is_standard
    for name in ["INFO@openssh.com", "SIGINT", "int", "WINCH", ""]:
        request = parse_request("signal", string(name.encode()))
        assert request == SignalRequest(name=name)
        assert not SignalRequest(name=name).is_standard
        assert not ExitSignalRequest(name=name, core_dumped=True).is_standard


def test_agent_forwarding_keeps_its_name() -> None:
    assert parse_request("agent-req", b"") == AgentForwardRequest(request_type="agent-req")
    assert parse_request(b"auth-agent-req@openssh.com", b"") == AgentForwardRequest()


def test_unknown_request_is_kept_whole() -> None:
    request = parse_request(b"x-\xffthing@example.com", b"\x00\x01")
    assert request == UnknownRequest(request_type="x-\udcffthing@example.com", payload=b"\x00\x01")
    assert request.encode() == b"\x00\x01"


def test_modes_policy_comes_from_the_limits() -> None:
    irregular = pty_payload(modes=b"\x01\x00\x00\x00\x03")  # no TTY_OP_END
    assert isinstance(parse_request("pty-req", irregular), PtyRequest)
    strict = RequestLimits(mode_policy=ModePolicy.STRICT)
    with pytest.raises(ProtocolError) as info:
        parse_request("pty-req", irregular, limits=strict)
    assert (info.value.request_type, info.value.field) == ("pty-req", "modes")
    assert info.value.offset == 4 + 5 + 16 + 4 + 5  # where TTY_OP_END should be


# -- every error path, with its field and offset ---------------------------------------

TERM = b"vt100"  # the size fields start at 4 + 5 = 9
ERRORS: list[tuple[str, bytes, str, int]] = [
    ("pty-req", b"", "term", 0),
    ("pty-req", b"\x00\x00\x00", "term", 0),
    ("pty-req", b"\x00\x00\x00\x05ab", "term", 0),
    ("pty-req", string(TERM) + b"\x00\x00\x00", "cols", 9),
    ("pty-req", string(TERM) + b"\x00" * 7, "rows", 13),
    ("pty-req", string(TERM) + b"\x00" * 8, "width_px", 17),
    ("pty-req", string(TERM) + b"\x00" * 12, "height_px", 21),
    ("pty-req", string(TERM) + b"\x00" * 19, "modes", 25),
    ("pty-req", pty_payload(term=b"vt\x00100"), "term", 6),
    ("pty-req", pty_payload(modes=b"\x00")[:-1], "modes", 25),
    ("pty-req", pty_payload() + b"\x00", "payload", 30),
    ("pty-req", pty_payload(modes=b"\x01\x00\x00"), "modes", 30),
    ("x11-req", b"", "single_connection", 0),
    ("x11-req", b"\x01", "auth_protocol", 1),
    ("x11-req", b"\x00" + string(b"MIT") + string(b"a\x00"), "auth_cookie", 13),
    ("x11-req", b"\x00" + string(b"MIT") + string(b"ab") + b"\x00\x00", "screen", 14),
    ("x11-req", b"\x00" + string(b"") + string(b"") + b"\x00" * 5, "payload", 13),
    ("env", string(b"LANG"), "value", 8),
    ("env", string(b"LA\x00NG") + string(b"C"), "name", 6),
    ("env", string(b"LANG") + string(b"C\x00"), "value", 13),
    ("env", string(b"LANG") + string(b"C") + b"!", "payload", 13),
    ("exec", b"\x00\x00\x00\x09ls", "command", 0),
    ("exec", string(b"ls\x00-l"), "command", 6),
    ("exec", string(b"ls") + b"\x00", "payload", 6),
    ("subsystem", b"\x00\x00", "name", 0),
    ("subsystem", string(b"sftp\x00"), "name", 8),
    ("subsystem", string(b"sftp") + b"x", "payload", 8),
    ("window-change", b"\x00\x00\x00", "cols", 0),
    ("window-change", b"\x00" * 15, "height_px", 12),
    ("window-change", b"\x00" * 17, "payload", 16),
    ("xon-xoff", b"", "client_can_do", 0),
    ("xon-xoff", b"\x01\x01", "payload", 1),
    ("signal", b"", "name", 0),
    ("signal", string(b"INT\x00"), "name", 7),
    ("signal", string(b"INT") + b"\x00", "payload", 7),
    ("exit-status", b"\x00", "status", 0),
    ("exit-status", b"\x00" * 5, "payload", 4),
    ("exit-signal", string(b"TERM"), "core_dumped", 8),
    ("exit-signal", string(b"TE\x00RM") + b"\x00", "name", 6),
    ("exit-signal", string(b"TERM") + b"\x01", "message", 9),
    ("exit-signal", string(b"TERM") + b"\x01" + string(b"x"), "language", 14),
    ("exit-signal", string(b"TERM") + b"\x01" + string(b"") * 2 + b"\x00", "payload", 17),
    ("break", b"\x00\x00", "length_ms", 0),
    ("break", b"\x00" * 8, "payload", 4),
    ("shell", b"\x00", "payload", 0),
    ("eow@openssh.com", b"\x00", "payload", 0),
    ("keepalive@openssh.com", b"x", "payload", 0),
    ("auth-agent-req@openssh.com", b"x", "payload", 0),
    ("agent-req", b"x", "payload", 0),
]


@pytest.mark.parametrize(("name", "payload", "field", "offset"), ERRORS)
def test_malformed_payloads(name: str, payload: bytes, field: str, offset: int) -> None:
    for request_type in (name, name.encode()):
        with pytest.raises(ProtocolError) as info:
            parse_request(request_type, payload)
        error = info.value
        assert (error.request_type, error.field, error.offset) == (name, field, offset)
        assert error.reason == ptycore.DisconnectReason.PROTOCOL_ERROR
        assert name in str(error)


def test_every_known_type_has_error_cases() -> None:
    assert {name for name, *_ in ERRORS} == set(KNOWN_TYPES)


def test_truncated_term_reports_what_is_left() -> None:
    with pytest.raises(ProtocolError, match="claims 5 bytes, 2 left"):
        parse_request("pty-req", b"\x00\x00\x00\x05ab")
    with pytest.raises(ProtocolError, match="modes claims 1 bytes, 0 left"):
        parse_request("pty-req", pty_payload()[:-1])


# -- caps -----------------------------------------------------------------------------

TINY_CAPS: dict[str, Any] = {
    spec.name: 3 for spec in fields(RequestLimits) if spec.name != "mode_policy"
}
TINY = RequestLimits(**TINY_CAPS)
CAPPED: list[tuple[str, bytes, str, int]] = [
    ("pty-req", pty_payload(term=b"vt100"), "term", 0),
    ("pty-req", pty_payload(term=b"vt", modes=b"\x01\x00\x00\x00\x03\x00"), "modes", 22),
    (
        "x11-req",
        b"\x00" + string(b"MIT-MAGIC-COOKIE-1") + string(b"") + b"\x00" * 4,
        "auth_protocol",
        1,
    ),
    ("x11-req", b"\x00" + string(b"MIT") + string(b"abcd") + b"\x00" * 4, "auth_cookie", 8),
    ("env", string(b"LANG") + string(b"C"), "name", 0),
    ("env", string(b"LC") + string(b"C.UTF-8"), "value", 6),
    ("exec", string(b"uname -a"), "command", 0),
    ("subsystem", string(b"sftp"), "name", 0),
    ("signal", string(b"USR1"), "name", 0),
    ("exit-signal", string(b"TERM") + b"\x00" + string(b"") * 2, "name", 0),
    ("exit-signal", string(b"INT") + b"\x00" + string(b"oops") + string(b""), "message", 8),
    ("exit-signal", string(b"INT") + b"\x00" + string(b"") + string(b"en-US"), "language", 12),
    ("x@y", b"1234", "payload", 0),
    ("x-long", b"", "request_type", 3),
]


@pytest.mark.parametrize(("name", "payload", "field", "offset"), CAPPED)
def test_caps_refuse_before_copying(name: str, payload: bytes, field: str, offset: int) -> None:
    parse_request(name, payload)  # fine with the defaults
    with pytest.raises(ProtocolError, match="more than the limit of 3") as info:
        parse_request(name, payload, limits=TINY)
    error = info.value
    assert (error.request_type, error.field, error.offset) == (name, field, offset)


def test_every_cap_is_tested() -> None:
    caps = {spec.name for spec in fields(RequestLimits)} - {"mode_policy"}
    exercised = set()
    for spec in caps:
        one_cap: dict[str, Any] = {spec: 3}
        one = RequestLimits(**one_cap)
        for name, payload, *_ in CAPPED:
            try:
                parse_request(name, payload, limits=one)
            except ProtocolError:
                exercised.add(spec)
    assert exercised == caps


def test_caps_are_inclusive() -> None:
    limits = RequestLimits(max_command_length=8)
    assert parse_request("exec", string(b"uname -a"), limits=limits) == ExecRequest(
        command="uname -a"
    )
    assert parse_request("x-abc", b"", limits=RequestLimits(max_type_length=5))


def test_docs_list_every_cap_with_its_default() -> None:
    text = (Path(__file__).parents[1] / "docs" / "requests.rst").read_text()
    rows = dict(re.findall(r"^``(max_\w+)``\s+(\d+)", text, re.MULTILINE))
    expected = {
        spec.name: str(getattr(DEFAULT_LIMITS, spec.name))
        for spec in fields(RequestLimits)
        if spec.name.startswith("max_")
    }
    assert rows == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_term_length": -1}, ValueError),
        ({"max_term_length": 2**32}, ValueError),
        ({"max_command_length": "10"}, TypeError),
        ({"max_command_length": True}, TypeError),
        ({"mode_policy": "strict"}, TypeError),
    ],
)
def test_limits_are_validated(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        RequestLimits(**kwargs)


# -- the type name ------------------------------------------------------------------


def test_type_name_with_nul_is_refused() -> None:
    for name in ("x-\0@example.com", b"x-\0@example.com"):
        with pytest.raises(ProtocolError) as info:
            parse_request(name, b"")
        assert (info.value.field, info.value.offset) == ("request_type", 2)
        assert info.value.request_type == "x-\0@example.com"


def test_refused_long_type_name_is_shortened_in_the_error() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request(b"x" * 300, b"")
    assert info.value.request_type == "x" * 64 + "..."
    assert info.value.offset == DEFAULT_LIMITS.max_type_length


def test_type_name_that_cannot_be_sent_is_api_misuse() -> None:
    with pytest.raises(ValueError, match="request_type"):
        parse_request("x-\ud800", b"")


# -- validation when built --------------------------------------------------------------

SIZE = WindowSize(cols=80, rows=24)
MISUSE: list[tuple[Any, dict[str, Any], type[Exception]]] = [
    (WindowSize, {"cols": -1, "rows": 24}, ValueError),
    (WindowSize, {"cols": 80, "rows": 2**32}, ValueError),
    (WindowSize, {"cols": 80.0, "rows": 24}, TypeError),
    (WindowSize, {"cols": True, "rows": 24}, TypeError),
    (WindowSize, {"cols": 80, "rows": 24, "width_px": None}, TypeError),
    (WindowSize, {"cols": 80, "rows": 24, "height_px": -5}, ValueError),
    (PtyRequest, {"term": b"vt100", "size": SIZE}, TypeError),
    (PtyRequest, {"term": "vt\x00100", "size": SIZE}, ValueError),
    (PtyRequest, {"term": "vt100", "size": (80, 24)}, TypeError),
    (PtyRequest, {"term": "vt100", "size": SIZE, "modes": {53: 1}}, TypeError),
    (PtyRequest, {"term": "\ud800", "size": SIZE}, ValueError),
    # Escaped bytes that form UTF-8 would come back as "é": refused.
    (PtyRequest, {"term": "\udcc3\udca9", "size": SIZE}, ValueError),
    (
        X11Request,
        {"single_connection": 1, "auth_protocol": "", "auth_cookie": "", "screen": 0},
        TypeError,
    ),
    (
        X11Request,
        {"single_connection": True, "auth_protocol": "M\0", "auth_cookie": "", "screen": 0},
        ValueError,
    ),
    (
        X11Request,
        {"single_connection": True, "auth_protocol": "", "auth_cookie": "", "screen": -1},
        ValueError,
    ),
    (EnvRequest, {"name": "A\0", "value": ""}, ValueError),
    (EnvRequest, {"name": "A", "value": 1}, TypeError),
    (ExecRequest, {"command": None}, TypeError),
    (SubsystemRequest, {"name": "sftp\0"}, ValueError),
    (WindowChangeRequest, {"size": (80, 24, 0, 0)}, TypeError),
    (XonXoffRequest, {"client_can_do": "yes"}, TypeError),
    (SignalRequest, {"name": "INT\0"}, ValueError),
    (ExitStatusRequest, {"status": 2**32}, ValueError),
    (ExitStatusRequest, {"status": -1}, ValueError),
    (ExitSignalRequest, {"name": "TERM", "core_dumped": 0}, TypeError),
    (ExitSignalRequest, {"name": "TE\0RM", "core_dumped": False}, ValueError),
    (ExitSignalRequest, {"name": "TERM", "core_dumped": False, "message": "\ud800"}, ValueError),
    (ExitSignalRequest, {"name": "TERM", "core_dumped": False, "language": 1}, TypeError),
    (BreakRequest, {"length_ms": 1.5}, TypeError),
    (AgentForwardRequest, {"request_type": "x11-req"}, ValueError),
    (UnknownRequest, {"request_type": "pty-req", "payload": b""}, ValueError),
    (UnknownRequest, {"request_type": "x", "payload": "text"}, TypeError),
    (UnknownRequest, {"request_type": b"x", "payload": b""}, TypeError),
]


@pytest.mark.parametrize(("cls", "kwargs", "error"), MISUSE)
def test_misuse_is_refused_when_built(
    cls: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        cls(**kwargs)


def test_exit_signal_text_may_hold_nul() -> None:
    request = ExitSignalRequest(name="SEGV", core_dumped=True, message="a\0b", language="")
    assert parse_request("exit-signal", request.encode()) == request


def test_requests_are_frozen_and_keyword_only() -> None:
    request = ExecRequest(command="ls")
    with pytest.raises(AttributeError):
        request.command = "rm"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ExecRequest("ls")  # type: ignore[call-arg]
    assert hash(request) == hash(ExecRequest(command="ls"))
    assert PtyRequest(term="vt100", size=SIZE).modes == TerminalModes()


def test_int_subclasses_are_ints() -> None:
    class Columns(int):
        pass

    request = WindowChangeRequest(size=WindowSize(cols=Columns(80), rows=24))
    assert parse_request("window-change", request.encode()) == request
