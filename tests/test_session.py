"""Unit tests of the session machine: every row of the rules table, every check."""

from __future__ import annotations

import itertools
import os
import re
import termios
from typing import Any

import pytest

from ptycore import ProtocolError
from ptycore._session_rules import (
    CHECKS,
    OPEN,
    PROGRAMS,
    RULES,
    Action,
    Check,
    Direction,
    Kind,
    Outcome,
    Role,
    SessionState,
)
from ptycore.messages import ChannelRequestMessage
from ptycore.modes import ModePolicy, TerminalModes
from ptycore.requests import (
    AgentForwardRequest,
    BreakRequest,
    EnvRequest,
    ExecRequest,
    ExitSignalRequest,
    ExitStatusRequest,
    KeepaliveRequest,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    UnknownRequest,
    WindowChangeRequest,
    WindowSize,
    XonXoffRequest,
)
from ptycore.session import (
    ClientSession,
    CloseReceived,
    DataReceived,
    Discarded,
    EOFReceived,
    ExitSignalReceived,
    ExitStatusReceived,
    LocalProtocolError,
    OutgoingClose,
    OutgoingData,
    OutgoingEOF,
    OutgoingReply,
    OutgoingRequest,
    RequestAccepted,
    RequestAnswered,
    RequestReceived,
    RequestRefused,
    ServerSession,
    Session,
    SessionPolicy,
    WindowChanged,
    WindowSizePolicy,
    encode_outgoing,
)
from session_helpers import (
    PERMISSIVE,
    PTY,
    SAMPLES,
    SIZE,
    current_state,
    reach_client,
    reach_server,
    reply_items,
)

# --- The table, row by row ---------------------------------------------------------

# Inputs the generic test can drive directly (program outcomes and a client's extended
# data have dedicated tests below).
_DRIVABLE = [k for k in Kind if k not in (Kind.PROGRAM_ACCEPTED, Kind.PROGRAM_REFUSED)]


def _reach(role: Role, state: SessionState, kind: Kind) -> Session:
    # A PTY is granted unless the input is itself a pty-req (the checks must pass);
    # a reply is awaited when the input is a reply.
    reach = reach_server if role is Role.SERVER else reach_client
    return reach(state, pty=kind is not Kind.PTY, awaiting=kind is Kind.REPLY)


def _drive(session: Session, direction: Direction, kind: Kind) -> object:  # noqa: PLR0911
    if direction is Direction.RECEIVE:
        if kind.is_request:
            return session.receive_request(SAMPLES[kind], want_reply=True)
        if kind is Kind.DATA:
            return session.receive_data(b"x")
        if kind is Kind.EXTENDED_DATA:
            return session.receive_extended_data(1, b"x")
        if kind is Kind.EOF:
            return session.receive_eof()
        if kind is Kind.CLOSE:
            return session.receive_close()
        return session.receive_reply(True)
    if kind.is_request:
        return session.send_request(SAMPLES[kind], want_reply=True)
    if kind is Kind.DATA:
        session.send_data(b"x")
    elif kind is Kind.EXTENDED_DATA:
        assert isinstance(session, ServerSession)
        session.send_extended_data(b"x")
    elif kind is Kind.EOF:
        session.send_eof()
    else:
        assert kind is Kind.CLOSE
        session.close()
    return None


_EXPECTED_EVENT: dict[tuple[Action, Kind | None], type] = {
    (Action.ASK, None): RequestReceived,
    (Action.REFUSE, None): RequestRefused,
    (Action.DISCARD, None): Discarded,
    (Action.MATCH, None): RequestAnswered,
    (Action.ACCEPT, Kind.WINDOW_CHANGE): WindowChanged,
    (Action.ACCEPT, Kind.EXIT_STATUS): ExitStatusReceived,
    (Action.ACCEPT, Kind.EXIT_SIGNAL): ExitSignalReceived,
    (Action.ACCEPT, Kind.XON_XOFF): RequestAccepted,
    (Action.ACCEPT, Kind.EOW): RequestAccepted,
    (Action.DELIVER, Kind.DATA): DataReceived,
    (Action.DELIVER, Kind.EXTENDED_DATA): DataReceived,
    (Action.DELIVER, Kind.EOF): EOFReceived,
    (Action.DELIVER, Kind.CLOSE): CloseReceived,
}


def _cases() -> list[tuple[Role, SessionState, Direction, Kind]]:
    cases: list[tuple[Role, SessionState, Direction, Kind]] = []
    for role, state, direction, kind in itertools.product(
        Role, SessionState, Direction, _DRIVABLE
    ):
        if direction is Direction.SEND and kind is Kind.REPLY:
            continue  # replies are sent through accept/reject, tested below
        if role is Role.CLIENT and direction is Direction.SEND and kind is Kind.EXTENDED_DATA:
            continue  # a client has no send_extended_data
        cases.append((role, state, direction, kind))
    return cases


@pytest.mark.parametrize(
    ("role", "state", "direction", "kind"),
    _cases(),
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_every_input_in_every_state(
    role: Role, state: SessionState, direction: Direction, kind: Kind
) -> None:
    """Each input does what its row says, and an input without a row raises."""
    session = _reach(role, state, kind)
    rule = RULES.get((role, state, direction, kind))
    if state is SessionState.ERROR:
        with pytest.raises(LocalProtocolError, match="ERROR"):
            _drive(session, direction, kind)
        assert current_state(session) is SessionState.ERROR
        return
    if rule is None or rule.action is Action.PROTOCOL_ERROR:
        if direction is Direction.RECEIVE:
            with pytest.raises(ProtocolError, match=re.escape(kind.value)):
                _drive(session, direction, kind)
            assert current_state(session) is SessionState.ERROR
        else:
            with pytest.raises(LocalProtocolError, match="cannot send") as info:
                _drive(session, direction, kind)
            assert (info.value.state, info.value.kind) == (state, kind)
            assert current_state(session) is state
            assert session.items_to_send() == []
        return
    result = _drive(session, direction, kind)
    if rule.action is Action.SEND:
        assert result is None or isinstance(result, int)
        assert session.items_to_send()
    else:
        expected = _EXPECTED_EVENT.get((rule.action, None)) or _EXPECTED_EVENT[(rule.action, kind)]
        assert isinstance(result, expected)
    assert current_state(session) is rule.next_state


def test_table_lists_sources_and_only_known_checks() -> None:
    for key, rule in RULES.items():
        assert rule.source, key
        assert all(check in CHECKS for check in rule.checks)
        if rule.action is Action.PROTOCOL_ERROR:
            assert key[2] is Direction.RECEIVE
    assert set(CHECKS) == set(Check)
    assert all(check.spec.source and check.spec.text for check in Check)
    # Every state but ERROR and CLOSED has rows; those two have none on purpose.
    states = {key[1] for key in RULES}
    assert states == set(SessionState) - {SessionState.ERROR, SessionState.CLOSED}
    assert not Kind.REPLY.is_request
    assert Kind.PTY.is_request


# --- Replies: in request order, exactly one per want_reply request ---------------------


def test_replies_follow_request_order_whatever_the_decision_order() -> None:
    s = ServerSession(policy=PERMISSIVE)
    pty = s.receive_request(PTY, want_reply=True)
    env = s.receive_request(EnvRequest(name="LANG", value="C"), want_reply=False)
    shell = s.receive_request(ShellRequest(), want_reply=True)
    assert isinstance(pty, RequestReceived)
    assert isinstance(env, RequestReceived)
    assert isinstance(shell, RequestReceived)
    assert s.undecided == (pty.handle, env.handle, shell.handle)
    s.accept(shell.handle)
    assert current_state(s) is SessionState.RUNNING
    assert reply_items(s) == []  # the shell's reply waits for the pty-req's
    s.reject(env.handle)  # no reply wanted: nothing goes out
    assert reply_items(s) == []
    s.accept(pty.handle)
    assert reply_items(s) == [(pty.handle, True), (shell.handle, True)]
    assert s.environment == {}
    assert s.pty == PTY
    assert s.program == ShellRequest()


def test_machine_refusals_wait_behind_undecided_requests() -> None:
    s = ServerSession()
    pty = s.receive_request(PTY, want_reply=True)
    refused = s.receive_request(EnvRequest(name="LANG", value="C"), want_reply=True)
    change = s.receive_request(SAMPLES[Kind.WINDOW_CHANGE], want_reply=True)
    assert isinstance(pty, RequestReceived)
    assert isinstance(refused, RequestRefused)
    assert isinstance(change, WindowChanged)
    assert reply_items(s) == []
    s.reject(pty.handle)
    assert reply_items(s) == [
        (pty.handle, False),
        (refused.handle, False),
        (change.handle, True),
    ]
    assert s.pty is None


def test_close_answers_undecided_requests_first_and_late_answers_raise() -> None:
    s = ServerSession()
    pty = s.receive_request(PTY, want_reply=True)
    shell = s.receive_request(ShellRequest(), want_reply=True)
    assert isinstance(pty, RequestReceived)
    assert isinstance(shell, RequestReceived)
    s.close()
    assert s.items_to_send() == [
        OutgoingReply(handle=pty.handle, success=False),
        OutgoingReply(handle=shell.handle, success=False),
        OutgoingClose(),
    ]
    assert current_state(s) is SessionState.CLOSING
    assert s.undecided == ()
    with pytest.raises(LocalProtocolError, match="no undecided request"):
        s.accept(shell.handle)


def test_peer_close_is_answered_with_close_after_pending_failures() -> None:
    s = reach_server(SessionState.RUNNING)
    signal = s.receive_request(SignalRequest(name="INT"), want_reply=True)
    assert isinstance(signal, RequestReceived)
    assert isinstance(s.receive_close(), CloseReceived)
    assert s.items_to_send() == [
        OutgoingReply(handle=signal.handle, success=False),
        OutgoingClose(),
    ]
    assert current_state(s) is SessionState.CLOSED


def test_after_our_close_peer_requests_get_no_reply() -> None:
    s = reach_server(SessionState.CLOSING)
    assert isinstance(s.receive_request(ShellRequest(), want_reply=True), Discarded)
    assert isinstance(s.receive_data(b"late"), Discarded)
    assert isinstance(s.receive_eof(), Discarded)
    assert s.items_to_send() == []
    assert isinstance(s.receive_close(), CloseReceived)
    assert s.items_to_send() == []  # our CLOSE went out already
    assert current_state(s) is SessionState.CLOSED


def test_decisions_on_unknown_or_decided_handles_raise_without_effect() -> None:
    s = ServerSession()
    event = s.receive_request(ShellRequest(), want_reply=True)
    assert isinstance(event, RequestReceived)
    with pytest.raises(LocalProtocolError) as info:
        s.accept(event.handle + 100)
    assert info.value.kind is None
    s.reject(event.handle)
    assert current_state(s) is SessionState.READY
    with pytest.raises(LocalProtocolError):
        s.reject(event.handle)
    assert reply_items(s) == [(event.handle, False)]


def test_refused_program_lets_the_client_ask_again() -> None:
    s = ServerSession()
    first = s.receive_request(ExecRequest(command="false"), want_reply=True)
    assert isinstance(first, RequestReceived)
    assert current_state(s) is SessionState.STARTING
    s.reject(first.handle)
    assert current_state(s) is SessionState.READY
    second = s.receive_request(SubsystemRequest(name="sftp"), want_reply=True)
    assert isinstance(second, RequestReceived)
    s.accept(second.handle)
    assert s.program == SubsystemRequest(name="sftp")
    assert s.program_started
    assert reply_items(s) == [(first.handle, False), (second.handle, True)]


# --- Server checks ---------------------------------------------------------------------


def test_second_pty_after_grant_is_a_protocol_error() -> None:
    s = reach_server(SessionState.READY, pty=True)
    with pytest.raises(ProtocolError, match="you already have a pty") as info:
        s.receive_request(PTY, want_reply=True)
    assert info.value.request_type == "pty-req"
    assert current_state(s) is SessionState.ERROR
    with pytest.raises(LocalProtocolError, match="ERROR"):
        s.send_eof()


def test_second_pty_while_first_undecided_is_refused() -> None:
    s = ServerSession()
    first = s.receive_request(PTY, want_reply=True)
    second = s.receive_request(PTY, want_reply=True)
    assert isinstance(first, RequestReceived)
    assert isinstance(second, RequestRefused)
    assert second.reason == _required(Check.PTY_NOT_PENDING)


def test_pty_refused_when_policy_forbids_it() -> None:
    s = ServerSession(policy=SessionPolicy(allow_pty=False))
    event = s.receive_request(PTY, want_reply=True)
    assert isinstance(event, RequestRefused)
    assert reply_items(s) == [(event.handle, False)]


def test_long_term_name_is_refused() -> None:
    s = ServerSession(policy=SessionPolicy(max_term_length=5))
    long_pty = PtyRequest(term="xterm-256color", size=SIZE, modes=TerminalModes())
    assert isinstance(s.receive_request(long_pty, want_reply=True), RequestRefused)
    short = PtyRequest(term="vt100", size=SIZE, modes=TerminalModes())
    assert isinstance(s.receive_request(short, want_reply=True), RequestReceived)


BIG = WindowSize(cols=70000, rows=24, width_px=0, height_px=100000)
CLAMPED = WindowSize(cols=65535, rows=24, width_px=0, height_px=65535)


def test_big_window_sizes_are_clamped_and_flagged() -> None:
    s = ServerSession()
    big_pty = PtyRequest(term="xterm", size=BIG, modes=TerminalModes())
    event = s.receive_request(big_pty, want_reply=True)
    assert isinstance(event, RequestReceived)
    assert event.clamped
    assert isinstance(event.request, PtyRequest)
    assert event.request.size == CLAMPED
    s.accept(event.handle)
    assert s.pty is not None
    assert s.pty.size == CLAMPED
    change = s.receive_request(WindowChangeRequest(size=SIZE), want_reply=False)
    assert isinstance(change, WindowChanged)
    assert not change.clamped
    assert s.pty.size == SIZE
    change = s.receive_request(WindowChangeRequest(size=BIG), want_reply=False)
    assert isinstance(change, WindowChanged)
    assert change.clamped
    assert change.size == CLAMPED
    assert s.pty.size == CLAMPED
    assert reply_items(s) == [(event.handle, True)]


def test_big_window_sizes_are_refused_by_policy() -> None:
    s = ServerSession(policy=SessionPolicy(window_size=WindowSizePolicy.REFUSE))
    big_pty = PtyRequest(term="xterm", size=BIG, modes=TerminalModes())
    assert isinstance(s.receive_request(big_pty, want_reply=True), RequestRefused)
    assert isinstance(
        s.receive_request(WindowChangeRequest(size=BIG), want_reply=True), RequestRefused
    )
    assert isinstance(
        s.receive_request(WindowChangeRequest(size=SIZE), want_reply=True), WindowChanged
    )
    assert [ok for _, ok in reply_items(s)] == [False, False, True]


def test_window_change_updates_an_undecided_pty_request() -> None:
    s = ServerSession()
    event = s.receive_request(PTY, want_reply=True)
    assert isinstance(event, RequestReceived)
    s.receive_request(WindowChangeRequest(size=WindowSize(cols=100, rows=30)), want_reply=False)
    s.accept(event.handle)
    assert s.pty is not None
    assert s.pty.size == WindowSize(cols=100, rows=30)
    assert s.pty.term == PTY.term
    assert s.pty.modes == PTY.modes


def test_window_change_without_pty_is_still_answered() -> None:
    s = ServerSession()
    event = s.receive_request(WindowChangeRequest(size=SIZE), want_reply=True)
    assert isinstance(event, WindowChanged)
    assert s.pty is None
    assert reply_items(s) == [(event.handle, True)]


# Modes a STRICT decoder rejects: opcode 200 (>= 160) stops an OpenSSH parse.
_IRREGULAR_MODES = bytes([53, 0, 0, 0, 1, 200, 0, 0, 0, 1, 0])


def test_strict_mode_policy_makes_irregular_modes_a_protocol_error() -> None:
    modes = TerminalModes.decode(_IRREGULAR_MODES)
    assert not modes.applicable
    pty = PtyRequest(term="xterm", size=SIZE, modes=modes)
    lenient = ServerSession()
    event = lenient.receive_request(pty, want_reply=True)
    assert isinstance(event, RequestReceived)
    assert isinstance(event.request, PtyRequest)
    assert not event.request.modes.applicable
    strict = ServerSession(policy=SessionPolicy(mode_policy=ModePolicy.STRICT))
    with pytest.raises(ProtocolError, match="decode strictly"):
        strict.receive_request(pty, want_reply=True)
    assert current_state(strict) is SessionState.ERROR


def test_strict_mode_policy_accepts_regular_and_built_modes() -> None:
    policy = SessionPolicy(mode_policy=ModePolicy.STRICT)
    regular = TerminalModes.decode(bytes([53, 0, 0, 0, 1, 0]))
    for modes in (regular, TerminalModes([(53, 1)])):
        s = ServerSession(policy=policy)
        pty = PtyRequest(term="xterm", size=SIZE, modes=modes)
        assert isinstance(s.receive_request(pty, want_reply=True), RequestReceived)


def test_x11_once() -> None:
    s = ServerSession()
    x11 = SAMPLES[Kind.X11]
    first = s.receive_request(x11, want_reply=True)
    assert isinstance(first, RequestReceived)
    assert isinstance(s.receive_request(x11, want_reply=True), RequestRefused)  # pending
    s.accept(first.handle)
    assert s.x11 == x11
    assert isinstance(s.receive_request(x11, want_reply=True), RequestRefused)  # granted
    rejected = ServerSession()
    event = rejected.receive_request(x11, want_reply=True)
    assert isinstance(event, RequestReceived)
    rejected.reject(event.handle)
    assert isinstance(rejected.receive_request(x11, want_reply=True), RequestReceived)


def test_agent_forwarding_once_even_after_a_refusal() -> None:
    s = ServerSession()
    first = s.receive_request(AgentForwardRequest(), want_reply=True)
    assert isinstance(first, RequestReceived)
    s.reject(first.handle)
    assert not s.agent_forwarding
    again = s.receive_request(AgentForwardRequest(request_type="agent-req"), want_reply=True)
    assert isinstance(again, RequestRefused)
    granted = ServerSession()
    event = granted.receive_request(AgentForwardRequest(), want_reply=False)
    assert isinstance(event, RequestReceived)
    granted.accept(event.handle)
    assert granted.agent_forwarding


@pytest.mark.parametrize(
    ("kind", "closed", "check"),
    [
        (Kind.AGENT, SessionPolicy(allow_agent_forwarding=False), Check.AGENT_PERMITTED),
        (Kind.X11, SessionPolicy(allow_x11_forwarding=False), Check.X11_PERMITTED),
    ],
)
def test_forwarding_refused_when_the_policy_forbids_it(
    kind: Kind, closed: SessionPolicy, check: Check
) -> None:
    """session.c session_auth_agent_req / session_x11_req: no-agent-forwarding,
    no-X11-forwarding, restrict, AllowAgentForwarding, X11Forwarding."""
    request = SAMPLES[kind]
    s = ServerSession(policy=closed)
    event = s.receive_request(request, want_reply=True)
    assert isinstance(event, RequestRefused)
    assert event.reason == _required(check)
    assert reply_items(s) == [(event.handle, False)]
    quiet = s.receive_request(request, want_reply=False)
    assert isinstance(quiet, RequestRefused)
    # Refused by the flag again, not as a second request: session_auth_agent_req
    # checks the flags before it sets `called`.
    assert quiet.reason == _required(check)
    assert reply_items(s) == []  # no reply when none is wanted
    assert (s.x11, s.agent_forwarding) == (None, False)
    assert s.state is SessionState.READY  # the session goes on
    other = ServerSession(policy=SessionPolicy())
    accepted = other.receive_request(request, want_reply=True)
    assert isinstance(accepted, RequestReceived)
    other.accept(accepted.handle)
    assert reply_items(other) == [(accepted.handle, True)]
    assert (other.x11 is not None) or other.agent_forwarding


def test_env_refused_by_default_and_filtered_by_patterns() -> None:
    s = ServerSession()
    assert isinstance(s.receive_request(EnvRequest(name="LANG", value="C"), False), RequestRefused)
    policy = SessionPolicy(accept_env=["LANG", "LC_*", "X?", "A.B"])  # type: ignore[arg-type]
    assert policy.accept_env == ("LANG", "LC_*", "X?", "A.B")
    for name, ok in [
        ("LANG", True),
        ("LANGUAGE", False),
        ("LC_ALL", True),
        ("LC_", True),
        ("XY", True),
        ("XYZ", False),
        ("A.B", True),
        ("AxB", False),  # '.' is literal, as in OpenSSH's match_pattern
        ("lang", False),
    ]:
        assert policy.env_allowed(name) is ok, name


def test_env_count_cap_counts_accepted_and_pending() -> None:
    s = ServerSession(policy=SessionPolicy(accept_env=("*",), max_env=2))
    a = s.receive_request(EnvRequest(name="A", value="1"), want_reply=False)
    b = s.receive_request(EnvRequest(name="A", value="2"), want_reply=False)
    assert isinstance(a, RequestReceived)
    assert isinstance(b, RequestReceived)
    assert isinstance(s.receive_request(EnvRequest(name="C", value="3"), False), RequestRefused)
    s.accept(a.handle)
    s.accept(b.handle)
    assert dict(s.environment) == {"A": "2"}  # the last value wins
    assert isinstance(s.receive_request(EnvRequest(name="C", value="3"), False), RequestRefused)
    assert SessionPolicy().max_env == 128


def test_pre_start_requests_refused_while_program_undecided_and_after_start() -> None:
    s = ServerSession(policy=PERMISSIVE)
    shell = s.receive_request(ShellRequest(), want_reply=True)
    assert isinstance(shell, RequestReceived)
    late = s.receive_request(EnvRequest(name="LANG", value="C"), want_reply=True)
    assert isinstance(late, RequestRefused)
    s.accept(shell.handle)
    after = s.receive_request(EnvRequest(name="LANG", value="C"), want_reply=True)
    exec_after = s.receive_request(ExecRequest(command="ls"), want_reply=True)
    assert isinstance(after, RequestRefused)
    assert isinstance(exec_after, RequestRefused)
    assert reply_items(s) == [
        (shell.handle, True),
        (late.handle, False),
        (after.handle, False),
        (exec_after.handle, False),
    ]


def test_signals_follow_policy_program_and_state() -> None:
    before = ServerSession()
    assert isinstance(before.receive_request(SignalRequest(name="INT"), True), RequestRefused)
    s = reach_server(SessionState.RUNNING)
    signal = s.receive_request(SignalRequest(name="INT"), True)
    assert isinstance(signal, RequestReceived)
    s.accept(signal.handle)  # delivered by the application; nothing to track
    assert reply_items(s) == [(signal.handle, True)]
    assert isinstance(s.receive_request(SignalRequest(name="ABRT"), False), RequestRefused)
    info = ServerSession(policy=SessionPolicy(signals=frozenset({"INFO@openssh.com"})))
    event = info.receive_request(ShellRequest(), want_reply=False)
    assert isinstance(event, RequestReceived)
    info.accept(event.handle)
    assert isinstance(
        info.receive_request(SignalRequest(name="INFO@openssh.com"), False), RequestReceived
    )
    sftp = ServerSession()
    event = sftp.receive_request(SubsystemRequest(name="sftp"), want_reply=False)
    assert isinstance(event, RequestReceived)
    sftp.accept(event.handle)
    refused = sftp.receive_request(SignalRequest(name="INT"), False)
    assert isinstance(refused, RequestRefused)
    assert refused.reason == _required(Check.SIGNAL_NOT_SUBSYSTEM)
    s.send_exit_status(0)
    assert isinstance(s.receive_request(SignalRequest(name="INT"), False), RequestRefused)


def test_break_needs_a_pty() -> None:
    without = reach_server(SessionState.RUNNING, pty=False)
    refused = without.receive_request(BreakRequest(length_ms=1000), want_reply=True)
    assert isinstance(refused, RequestRefused)
    assert refused.reason == _required(Check.BREAK_NEEDS_PTY)
    with_pty = reach_server(SessionState.RUNNING, pty=True)
    assert isinstance(with_pty.receive_request(BreakRequest(length_ms=0), True), RequestReceived)


# --- Data, EOF, exit ---------------------------------------------------------------------


def test_data_before_start_is_a_protocol_error() -> None:
    s = ServerSession()
    with pytest.raises(ProtocolError, match="window"):
        s.receive_data(b"early")
    assert current_state(s) is SessionState.ERROR


def test_data_and_eof_after_eof_are_protocol_errors() -> None:
    s = reach_server(SessionState.RUNNING)
    assert s.receive_data(b"abc") == DataReceived(data=b"abc")
    assert s.receive_extended_data(1, b"e") == DataReceived(data=b"e", data_type=1)
    assert s.receive_eof() == EOFReceived()
    assert s.eof_received
    with pytest.raises(ProtocolError, match="EOF"):
        s.receive_data(b"more")
    again = reach_server(SessionState.RUNNING)
    again.receive_eof()
    with pytest.raises(ProtocolError, match="EOF"):
        again.receive_eof()


def test_sending_after_eof_and_exit_rules() -> None:
    s = reach_server(SessionState.RUNNING)
    s.send_data(b"out")
    s.send_extended_data(b"err")
    s.send_exit_status(0xFFFFFFFF)
    assert s.exit_status == 0xFFFFFFFF
    assert current_state(s) is SessionState.EXITED
    s.send_data(b"after exit")  # data may follow exit-status, as in OpenSSH
    with pytest.raises(LocalProtocolError):
        s.send_exit_status(1)
    with pytest.raises(LocalProtocolError):
        s.send_exit_signal("KILL")
    s.send_eof()
    assert s.eof_sent
    with pytest.raises(LocalProtocolError, match="EOF"):
        s.send_data(b"x")
    with pytest.raises(LocalProtocolError, match="EOF"):
        s.send_eof()
    s.close()
    with pytest.raises(LocalProtocolError):
        s.send_data(b"x")
    with pytest.raises(LocalProtocolError):
        s.close()
    items = s.items_to_send()
    assert isinstance(items[2], OutgoingRequest)
    assert items[2].request == ExitStatusRequest(status=0xFFFFFFFF)
    assert not items[2].want_reply
    assert items[:2] + items[3:] == [
        OutgoingData(data=b"out"),
        OutgoingData(data=b"err", data_type=1),
        OutgoingData(data=b"after exit"),
        OutgoingEOF(),
        OutgoingClose(),
    ]


def test_exit_signal_is_tracked() -> None:
    s = reach_server(SessionState.RUNNING)
    s.send_exit_signal("SEGV", core_dumped=True, message="boom", language="en")
    assert s.exit_signal == ExitSignalRequest(
        name="SEGV", core_dumped=True, message="boom", language="en"
    )
    assert s.exit_status is None


def test_exit_before_start_is_refused() -> None:
    s = ServerSession()
    with pytest.raises(LocalProtocolError, match="exit-status"):
        s.send_exit_status(0)
    with pytest.raises(LocalProtocolError, match="cannot send data"):
        s.send_data(b"x")


def test_server_keepalive_reply_is_matched() -> None:
    s = reach_server(SessionState.RUNNING)
    handle = s.send_request(KeepaliveRequest(), want_reply=True)
    assert s.awaiting_replies == 1
    answer = s.receive_reply(False)
    assert answer == RequestAnswered(handle=handle, request=KeepaliveRequest(), accepted=False)
    with pytest.raises(ProtocolError, match="reply"):
        s.receive_reply(True)


def test_server_cannot_send_client_requests() -> None:
    s = reach_server(SessionState.RUNNING)
    with pytest.raises(LocalProtocolError, match="pty-req"):
        s.send_request(PTY, want_reply=True)


def test_receive_channel_request_parses_and_malformed_payload_is_fatal() -> None:
    s = ServerSession(policy=PERMISSIVE)
    event = s.receive_channel_request("env", EnvRequest(name="A", value="b").encode(), False)
    assert isinstance(event, RequestReceived)
    assert event.request == EnvRequest(name="A", value="b")
    with pytest.raises(ProtocolError):
        s.receive_channel_request(b"exec", b"\x00\x00", True)
    assert current_state(s) is SessionState.ERROR
    with pytest.raises(LocalProtocolError):
        s.receive_channel_request("shell", b"", True)
    with pytest.raises(LocalProtocolError):
        s.accept(event.handle)


def test_non_requests_are_a_type_error() -> None:
    s = ServerSession()
    with pytest.raises(TypeError, match="not a channel request"):
        s.receive_request("shell", want_reply=True)  # type: ignore[arg-type]


# --- Policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"accept_env": "LANG"}, TypeError),
        ({"accept_env": ("",)}, TypeError),
        ({"signals": "INT"}, TypeError),
        ({"signals": frozenset({""})}, TypeError),
        ({"signals": 7}, TypeError),
        ({"max_env": -1}, ValueError),
        ({"max_env": True}, ValueError),
        ({"max_term_length": 1.5}, ValueError),
        ({"mode_policy": "strict"}, TypeError),
        ({"window_size": "clamp"}, TypeError),
        ({"allow_agent_forwarding": 0}, TypeError),
        ({"allow_x11_forwarding": None}, TypeError),
    ],
)
def test_policy_is_validated(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        SessionPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_defaults_follow_openssh() -> None:
    policy = SessionPolicy(signals={"HUP"})  # type: ignore[arg-type]
    assert policy.signals == frozenset({"HUP"})
    default = SessionPolicy()
    assert default.signals == {"HUP", "INT", "KILL", "QUIT", "TERM", "USR1", "USR2"}
    assert default.accept_env == ()
    assert default.allow_pty
    # Unlike sshd (X11Forwarding no), the application decides: ptycore never forwards.
    assert default.allow_agent_forwarding
    assert default.allow_x11_forwarding
    assert default == SessionPolicy()
    with pytest.raises(TypeError):
        ServerSession(policy="strict")  # type: ignore[arg-type]


# --- Client -------------------------------------------------------------------------------


def test_client_builds_requests_and_matches_replies_in_order() -> None:
    c = ClientSession()
    pty = c.request_pty(term="xterm", size=SIZE, modes=TerminalModes([(53, 0)]))
    env = c.request_env("LANG", "C.UTF-8")
    shell = c.request_shell()
    items = c.items_to_send()
    assert [i.want_reply for i in items if isinstance(i, OutgoingRequest)] == [True, False, True]
    assert c.awaiting_replies == 2
    assert current_state(c) is SessionState.STARTING
    assert c.environment == {"LANG": "C.UTF-8"}  # sent without reply: assumed set
    answer = c.receive_reply(True)
    assert isinstance(answer, RequestAnswered)
    assert (answer.handle, answer.accepted) == (pty, True)
    assert c.pty is not None
    assert c.pty.term == "xterm"
    answer = c.receive_reply(True)
    assert isinstance(answer, RequestAnswered)
    assert answer.handle == shell
    assert current_state(c) is SessionState.RUNNING
    assert c.program == ShellRequest()
    assert env not in (pty, shell)
    with pytest.raises(ProtocolError, match="reply"):
        c.receive_reply(True)


def test_client_refused_pty_and_program() -> None:
    c = ClientSession()
    c.request_pty(term="xterm", size=SIZE)
    c.request_env("A", "b", want_reply=True)
    c.request_exec("true")
    c.receive_reply(False)
    assert c.pty is None
    assert c.pty_requested is None
    c.receive_reply(False)
    assert c.environment == {}
    c.receive_reply(False)
    assert current_state(c) is SessionState.READY
    assert c.program is None
    c.request_pty(term="vt100", size=SIZE)  # allowed again after a refusal
    c.request_subsystem("sftp", want_reply=False)
    assert current_state(c) is SessionState.RUNNING
    assert c.program == SubsystemRequest(name="sftp")


def test_client_second_pty_is_refused_locally() -> None:
    c = ClientSession()
    c.request_pty(term="xterm", size=SIZE)
    with pytest.raises(LocalProtocolError, match="PTY"):
        c.request_pty(term="xterm", size=SIZE)
    assert c.awaiting_replies == 1


def new_pty_attributes() -> list[Any]:
    """The termios attributes of a newly opened PTY."""
    master, slave = os.openpty()
    try:
        return termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_client_pty_from_termios_and_window_changes() -> None:
    attrs = new_pty_attributes()
    c = ClientSession()
    c.request_pty(term="xterm", size=SIZE, termios_attrs=attrs, want_reply=False)
    assert c.pty is not None
    assert c.pty.modes == TerminalModes.from_termios(attrs)
    assert c.pty.modes
    c.change_window(WindowSize(cols=1, rows=2))
    assert c.pty.size == WindowSize(cols=1, rows=2)
    assert c.pty_requested == c.pty
    with pytest.raises(ValueError, match="not both"):
        ClientSession().request_pty(
            term="x", size=SIZE, modes=TerminalModes(), termios_attrs=attrs
        )


def test_client_window_change_before_reply_updates_request() -> None:
    c = ClientSession()
    c.change_window(SIZE)  # no PTY asked: nothing to update
    assert c.pty_requested is None
    c.request_pty(term="xterm", size=SIZE)
    c.change_window(WindowSize(cols=9, rows=9))
    assert [c.pty] == [None]  # (a list, so that type checkers do not narrow c.pty)
    c.receive_reply(True)
    granted = c.pty
    assert granted is not None
    assert granted.size == WindowSize(cols=9, rows=9)


def test_client_signals_break_agent_and_unknown() -> None:
    c = reach_client(SessionState.RUNNING)
    c.send_signal("INT")
    c.send_break()
    items = c.items_to_send()
    assert [i.request for i in items if isinstance(i, OutgoingRequest)] == [
        SignalRequest(name="INT"),
        BreakRequest(length_ms=1000),
    ]
    ready = ClientSession()
    ready.request_agent_forwarding()
    out = ready.items_to_send()
    assert out == [OutgoingRequest(handle=1, request=AgentForwardRequest(), want_reply=False)]
    with pytest.raises(LocalProtocolError, match="exit-status"):
        c.send_request(ExitStatusRequest(status=0))


def test_client_reports_exit_and_answers_server_requests() -> None:
    c = reach_client(SessionState.RUNNING)
    event = c.receive_request(ExitStatusRequest(status=0x1_0000_0001 - 2), want_reply=True)
    assert event == ExitStatusReceived(status=0xFFFF_FFFF)
    assert c.exit_status == 0xFFFF_FFFF
    assert current_state(c) is SessionState.EXITED
    keepalive = c.receive_request(KeepaliveRequest(), want_reply=True)
    assert isinstance(keepalive, RequestRefused)
    xon = c.receive_request(XonXoffRequest(client_can_do=False), want_reply=False)
    assert isinstance(xon, RequestAccepted)
    replies = reply_items(c)
    assert [ok for _, ok in replies] == [True, False]
    assert replies[1][0] == keepalive.handle
    with pytest.raises(ProtocolError, match="exits once"):
        c.receive_request(ExitStatusRequest(status=1), want_reply=False)


def test_client_reply_handles_and_exit_signal() -> None:
    c = reach_client(SessionState.RUNNING)
    c.items_to_send()
    event = c.receive_request(SAMPLES[Kind.EXIT_SIGNAL], want_reply=True)
    assert event == ExitSignalReceived(name="TERM", core_dumped=False, message="", language="")
    assert c.exit_signal == SAMPLES[Kind.EXIT_SIGNAL]
    refused = c.receive_request(UnknownRequest(request_type="x@y", payload=b""), True)
    assert isinstance(refused, RequestRefused)
    replies = reply_items(c)
    assert [ok for _, ok in replies] == [True, False]
    assert replies[1][0] == refused.handle


def test_client_exit_before_reply_and_late_program_replies() -> None:
    c = ClientSession()
    c.request_shell()
    assert isinstance(c.receive_request(ExitStatusRequest(status=3), False), ExitStatusReceived)
    assert current_state(c) is SessionState.EXITED
    assert isinstance(c.receive_reply(True), RequestAnswered)
    assert current_state(c) is SessionState.EXITED
    assert c.program == ShellRequest()
    closing = ClientSession()
    closing.request_exec("true")
    closing.close()
    answer = closing.receive_reply(False)
    assert isinstance(answer, RequestAnswered)
    assert not answer.accepted
    assert current_state(closing) is SessionState.CLOSING


def test_client_parses_server_requests() -> None:
    c = reach_client(SessionState.RUNNING)
    event = c.receive_channel_request(b"exit-status", bytes([0, 0, 1, 0]), want_reply=False)
    assert event == ExitStatusReceived(status=256)
    with pytest.raises(ProtocolError):
        c.receive_channel_request("exit-signal", b"\x00", want_reply=False)
    assert current_state(c) is SessionState.ERROR


def test_client_data_rules() -> None:
    c = ClientSession()
    assert c.receive_data(b"banner") == DataReceived(data=b"banner")
    with pytest.raises(LocalProtocolError, match="data"):
        c.send_data(b"too early")
    c.request_shell(want_reply=False)
    c.send_data(b"ls\n")
    assert c.items_to_send()[-1] == OutgoingData(data=b"ls\n")


# --- Encoding -------------------------------------------------------------------------------


def test_encode_outgoing_builds_ssh_messages() -> None:
    assert encode_outgoing(OutgoingReply(handle=1, success=True), 7) == bytes([99, 0, 0, 0, 7])
    assert encode_outgoing(OutgoingReply(handle=1, success=False), 7) == bytes([100, 0, 0, 0, 7])
    assert encode_outgoing(OutgoingEOF(), 0x01020304) == bytes([96, 1, 2, 3, 4])
    assert encode_outgoing(OutgoingClose(), 2) == bytes([97, 0, 0, 0, 2])
    assert (
        encode_outgoing(OutgoingData(data=b"hi"), 3) == bytes([94, 0, 0, 0, 3, 0, 0, 0, 2]) + b"hi"
    )
    assert (
        encode_outgoing(OutgoingData(data=b"e", data_type=1), 3)
        == bytes([95, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1]) + b"e"
    )
    request = OutgoingRequest(handle=1, request=ExitStatusRequest(status=5), want_reply=False)
    wire = encode_outgoing(request, 9)
    assert (
        wire
        == ChannelRequestMessage(
            recipient_channel=9, want_reply=False, request=ExitStatusRequest(status=5)
        ).encode()
    )
    parsed = ChannelRequestMessage.parse(wire)
    assert parsed.request == ExitStatusRequest(status=5)


def test_data_to_send_drains_and_encodes_everything() -> None:
    s = reach_server(SessionState.RUNNING)
    s.send_data(b"x")
    s.send_eof()
    assert s.data_to_send(1) == bytes([94, 0, 0, 0, 1, 0, 0, 0, 1]) + b"x" + bytes(
        [96, 0, 0, 0, 1]
    )
    assert s.data_to_send(1) == b""


def test_states_listed_are_only_open_or_terminal() -> None:
    assert set(OPEN) | {SessionState.CLOSING, SessionState.CLOSED, SessionState.ERROR} == set(
        SessionState
    )
    assert {Kind.SHELL, Kind.EXEC, Kind.SUBSYSTEM} == PROGRAMS
    assert {spec.outcome for spec in CHECKS.values()} == set(Outcome)


def test_docs_example_server() -> None:
    """The server example of docs/session.rst (included from here, so it is tested)."""
    session = ServerSession(policy=SessionPolicy(accept_env=("LANG", "LC_*")))
    payload = PtyRequest(term="xterm", size=WindowSize(cols=80, rows=24), modes=TerminalModes())
    pty = session.receive_channel_request("pty-req", payload.encode(), want_reply=True)
    shell = session.receive_channel_request("shell", b"", want_reply=True)
    assert isinstance(pty, RequestReceived)
    assert isinstance(shell, RequestReceived)

    session.accept(shell.handle)  # decisions come in any order...
    assert session.items_to_send() == []  # ...but the shell's reply waits for the pty-req's
    session.accept(pty.handle)
    assert session.items_to_send() == [
        OutgoingReply(handle=pty.handle, success=True),
        OutgoingReply(handle=shell.handle, success=True),
    ]
    assert session.pty == payload
    assert session.program == ShellRequest()

    session.send_data(b"hello\r\n")
    session.send_exit_status(0)
    session.send_eof()
    session.close()
    wire = session.data_to_send(recipient_channel=0)
    assert wire.endswith(bytes([96, 0, 0, 0, 0, 97, 0, 0, 0, 0]))  # EOF, CLOSE


def test_docs_example_client() -> None:
    """The client example of docs/session.rst."""
    attrs = new_pty_attributes()
    session = ClientSession()
    session.request_pty(
        term="xterm-256color", size=WindowSize(cols=80, rows=24), termios_attrs=attrs
    )
    session.request_env("LANG", "C.UTF-8")
    session.request_shell()
    wire = session.data_to_send(recipient_channel=0)
    assert wire[0] == 98  # SSH_MSG_CHANNEL_REQUEST

    answer = session.receive_reply(True)  # the pty-req's
    assert isinstance(answer, RequestAnswered)
    assert answer.accepted
    session.receive_reply(True)  # the shell's
    event = session.receive_channel_request("exit-status", bytes(4), want_reply=False)
    assert event == ExitStatusReceived(status=0)


def _required(check: Check) -> str:
    """A refusal's reason for a failed check."""
    return f"required: {check.spec.text} ({check.spec.source})"
