"""The rules of an SSH session channel, as data.

Every transition of :mod:`ptycore.session` is one row of :data:`RULES`, keyed by
``(role, state, direction, kind)``: who we are, where the session stands, whether
the input came from the peer (``RECEIVE``) or from our own application (``SEND``),
and what it is (a request type, data, EOF, CLOSE, a reply, or the outcome of the
program request). A row says what the machine does (:class:`Action`), the state it
moves to, the :class:`Check` s that must pass first, and where the rule comes
from: RFC 4254 or OpenSSH's ``session.c`` / ``serverloop.c`` / ``clientloop.c`` /
``channels.c``.

A received input with no row is a peer violation (:class:`~ptycore.ProtocolError`);
an application input with no row is misuse (``LocalProtocolError``). The docs
render this table and a state diagram from it, so the code and the documentation
cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CHECKS",
    "RULES",
    "Action",
    "Check",
    "CheckSpec",
    "Direction",
    "Kind",
    "Outcome",
    "Role",
    "Rule",
    "SessionState",
]


class Role(enum.Enum):
    """Which end of the session channel a machine plays."""

    # Members are singletons: hashed by identity in C, not by Enum's Python-level hash
    # of the name, since RULES is looked up for every packet a channel receives.
    __hash__ = object.__hash__

    SERVER = "server"
    CLIENT = "client"


class SessionState(enum.Enum):
    """Where a session channel stands.

    ``READY`` is OpenSSH's ``SSH_CHANNEL_LARVAL`` (``serverloop.c``
    ``server_request_session``): open, no program yet, receive window 0.
    """

    __hash__ = object.__hash__  # as Role's

    READY = "READY"
    """Open; no program requested yet (or the last program request was refused)."""
    STARTING = "STARTING"
    """A ``shell``/``exec``/``subsystem`` request awaits its answer."""
    RUNNING = "RUNNING"
    """The program started."""
    EXITED = "EXITED"
    """Its exit status or signal was reported; data, EOF and CLOSE may follow."""
    CLOSING = "CLOSING"
    """We sent CHANNEL_CLOSE; the peer's CLOSE has not arrived yet."""
    CLOSED = "CLOSED"
    """Both sides sent CHANNEL_CLOSE (RFC 4254 5.3): the channel number is free."""
    ERROR = "ERROR"
    """The peer broke the protocol; sticky, every further call is refused."""


class Direction(enum.Enum):
    """Where an input comes from."""

    __hash__ = object.__hash__  # as Role's

    RECEIVE = "receive"
    """From the peer."""
    SEND = "send"
    """From our own application."""


class Kind(enum.Enum):
    """What an input is: a channel request type, or a channel event."""

    __hash__ = object.__hash__  # as Role's

    PTY = "pty-req"
    X11 = "x11-req"
    ENV = "env"
    SHELL = "shell"
    EXEC = "exec"
    SUBSYSTEM = "subsystem"
    WINDOW_CHANGE = "window-change"
    XON_XOFF = "xon-xoff"
    SIGNAL = "signal"
    EXIT_STATUS = "exit-status"
    EXIT_SIGNAL = "exit-signal"
    BREAK = "break"
    AGENT = "auth-agent-req@openssh.com / agent-req"
    EOW = "eow@openssh.com"
    KEEPALIVE = "keepalive@openssh.com"
    UNKNOWN = "unknown request"
    DATA = "data"
    EXTENDED_DATA = "extended data"
    EOF = "EOF"
    CLOSE = "CLOSE"
    REPLY = "reply"
    """CHANNEL_SUCCESS or CHANNEL_FAILURE."""
    PROGRAM_ACCEPTED = "program accepted"
    """The program request succeeded (server: the application accepted it)."""
    PROGRAM_REFUSED = "program refused"

    @property
    def is_request(self) -> bool:
        """Whether this kind is a CHANNEL_REQUEST type."""
        return self not in _NON_REQUESTS


_NON_REQUESTS = frozenset(
    {
        Kind.DATA,
        Kind.EXTENDED_DATA,
        Kind.EOF,
        Kind.CLOSE,
        Kind.REPLY,
        Kind.PROGRAM_ACCEPTED,
        Kind.PROGRAM_REFUSED,
    }
)

PROGRAMS = frozenset({Kind.SHELL, Kind.EXEC, Kind.SUBSYSTEM})
"""The three program requests; at most one of them succeeds per session."""


class Action(enum.Enum):
    """What the machine does with an input that its row allows."""

    ASK = "ask"
    """Server: the application must :meth:`accept` or :meth:`reject` it."""
    ACCEPT = "accept"
    """The machine accepts by itself (CHANNEL_SUCCESS if wanted) and reports it."""
    REFUSE = "refuse"
    """The machine refuses by itself (CHANNEL_FAILURE if wanted) and reports it."""
    DELIVER = "deliver"
    """Data, EOF or CLOSE from the peer, reported to the application."""
    MATCH = "match"
    """A reply, matched to our oldest request that wanted one (RFC 4254 5.4)."""
    SEND = "send"
    """Our application's input is queued for the peer."""
    APPLY = "apply"
    """Only the state changes (the outcome of a program request)."""
    DISCARD = "discard"
    """Dropped without a reply: we already sent CLOSE (``serverloop.c``)."""
    PROTOCOL_ERROR = "protocol error"
    """The peer broke the protocol: ``ProtocolError``, state ERROR."""


class Outcome(enum.Enum):
    """What happens when a :class:`Check` fails."""

    REFUSE = "refuse"
    """CHANNEL_FAILURE (if a reply was wanted); the session goes on."""
    PROTOCOL_ERROR = "protocol error"
    """``ProtocolError``: the connection must be dropped."""
    LOCAL_ERROR = "local error"
    """``LocalProtocolError``: the application's call is refused, nothing changes."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckSpec:
    """What a check verifies, what its failure does, and where the rule comes from."""

    text: str
    outcome: Outcome
    source: str


class Check(enum.Enum):
    """Conditions a row requires beyond its state; evaluated in row order."""

    PTY_NOT_GRANTED = "pty-not-granted"
    MODES_STRICT = "modes-strict"
    PTY_PERMITTED = "pty-permitted"
    PTY_NOT_PENDING = "pty-not-pending"
    TERM_LENGTH = "term-length"
    WINDOW_SIZE = "window-size"
    X11_PERMITTED = "x11-permitted"
    X11_ONCE = "x11-once"
    AGENT_PERMITTED = "agent-permitted"
    AGENT_ONCE = "agent-once"
    ENV_COUNT = "env-count"
    ENV_ALLOWED = "env-allowed"
    SIGNAL_ALLOWED = "signal-allowed"
    SIGNAL_NOT_SUBSYSTEM = "signal-not-subsystem"
    BREAK_NEEDS_PTY = "break-needs-pty"
    EOF_NOT_RECEIVED = "eof-not-received"
    EOF_NOT_SENT = "eof-not-sent"
    REPLY_EXPECTED = "reply-expected"
    PTY_NOT_REQUESTED = "pty-not-requested"

    @property
    def spec(self) -> CheckSpec:
        """The check's description, outcome and source."""
        return CHECKS[self]


CHECKS: Mapping[Check, CheckSpec] = MappingProxyType(
    {
        Check.PTY_NOT_GRANTED: CheckSpec(
            text="no PTY was granted on this session yet",
            outcome=Outcome.PROTOCOL_ERROR,
            source='session.c session_pty_req: "Protocol error: you already have a pty."',
        ),
        Check.MODES_STRICT: CheckSpec(
            text="with ModePolicy.STRICT, the terminal modes decode strictly",
            outcome=Outcome.PROTOCOL_ERROR,
            source="RFC 4254 8; ptycore's strict mode policy (OpenSSH's ttymodes.c "
            "tty_parse_modes is lenient, the default)",
        ),
        Check.PTY_PERMITTED: CheckSpec(
            text="SessionPolicy.allow_pty is true",
            outcome=Outcome.REFUSE,
            source="session.c session_pty_req: PermitTTY / no-pty",
        ),
        Check.PTY_NOT_PENDING: CheckSpec(
            text="no other pty-req awaits the application's answer",
            outcome=Outcome.REFUSE,
            source="ptycore: one PTY per session (session.c session_pty_req); while the "
            "first is undecided the second is refused, not fatal",
        ),
        Check.TERM_LENGTH: CheckSpec(
            text="the TERM name is at most SessionPolicy.max_term_length bytes",
            outcome=Outcome.REFUSE,
            source="ptycore cap; OpenSSH has none beyond its 256 KiB packet limit",
        ),
        Check.WINDOW_SIZE: CheckSpec(
            text="every dimension is at most 65535, or SessionPolicy.window_size "
            "is CLAMP (the size is clamped and the event says so)",
            outcome=Outcome.REFUSE,
            source="RFC 4254 6.2, 6.7 (uint32); OpenSSH sshpty.c pty_change_window_size "
            "silently truncates to struct winsize's 16 bits",
        ),
        Check.X11_PERMITTED: CheckSpec(
            text="SessionPolicy.allow_x11_forwarding is true",
            outcome=Outcome.REFUSE,
            source="session.c session_x11_req: permit_x11_forwarding_flag "
            "(no-X11-forwarding, restrict, a certificate without permit-X11-forwarding; "
            "auth-options.c), then session_setup_x11fwd: X11Forwarding",
        ),
        Check.X11_ONCE: CheckSpec(
            text="no x11-req was granted or awaits an answer",
            outcome=Outcome.REFUSE,
            source='session.c session_x11_req: "x11 forwarding already active"',
        ),
        Check.AGENT_PERMITTED: CheckSpec(
            text="SessionPolicy.allow_agent_forwarding is true",
            outcome=Outcome.REFUSE,
            source="session.c session_auth_agent_req: permit_agent_forwarding_flag "
            "(no-agent-forwarding, restrict, a certificate without "
            "permit-agent-forwarding; auth-options.c) and AllowAgentForwarding, "
            "checked before `called` is set",
        ),
        Check.AGENT_ONCE: CheckSpec(
            text="agent forwarding was not requested before on this session",
            outcome=Outcome.REFUSE,
            source="session.c session_auth_agent_req: `called` (OpenSSH: once per "
            "connection; ptycore: once per session, the adapter may add more)",
        ),
        Check.ENV_COUNT: CheckSpec(
            text="fewer than SessionPolicy.max_env variables were accepted or await an answer",
            outcome=Outcome.REFUSE,
            source="session.c session_env_req: `if (s->num_env > 128)` (which lets 129 "
            "through; ptycore caps at exactly max_env, default 128)",
        ),
        Check.ENV_ALLOWED: CheckSpec(
            text="the name matches a SessionPolicy.accept_env pattern (* and ?)",
            outcome=Outcome.REFUSE,
            source="session.c session_env_req: match_pattern(name, options.accept_env[i]) "
            "(sshd_config AcceptEnv, none by default)",
        ),
        Check.SIGNAL_ALLOWED: CheckSpec(
            text="the signal name is in SessionPolicy.signals",
            outcome=Outcome.REFUSE,
            source="session.c name2sig: HUP INT KILL QUIT TERM USR1 USR2 "
            "(INFO@openssh.com where SIGINFO exists)",
        ),
        Check.SIGNAL_NOT_SUBSYSTEM: CheckSpec(
            text="the program is not a subsystem",
            outcome=Outcome.REFUSE,
            source='session.c session_signal_req: "refusing to send signal ... to '
            'subsystem session"',
        ),
        Check.BREAK_NEEDS_PTY: CheckSpec(
            text="a PTY was granted",
            outcome=Outcome.REFUSE,
            source="RFC 4335 3; session.c session_break_req: ptymaster == -1 -> failure",
        ),
        Check.EOF_NOT_RECEIVED: CheckSpec(
            text="the peer has not sent EOF",
            outcome=Outcome.PROTOCOL_ERROR,
            source="RFC 4254 5.3 (no data after EOF); channels.c "
            'channel_input_extended_data: "Received extended_data after EOF"',
        ),
        Check.EOF_NOT_SENT: CheckSpec(
            text="we have not sent EOF",
            outcome=Outcome.LOCAL_ERROR,
            source="RFC 4254 5.3: no more data in that direction after EOF",
        ),
        Check.REPLY_EXPECTED: CheckSpec(
            text="one of our requests with want_reply awaits its reply",
            outcome=Outcome.PROTOCOL_ERROR,
            source="RFC 4254 5.4: replies answer requests, in order",
        ),
        Check.PTY_NOT_REQUESTED: CheckSpec(
            text="we have not asked for a PTY on this session (or it was refused)",
            outcome=Outcome.LOCAL_ERROR,
            source="session.c session_pty_req: a second PTY drops the connection",
        ),
    }
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """One row: what the machine does, where it goes, after which checks, and why."""

    action: Action
    next_state: SessionState
    checks: tuple[Check, ...]
    source: str


RuleKey = tuple[Role, SessionState, Direction, Kind]

OPEN = (SessionState.READY, SessionState.STARTING, SessionState.RUNNING, SessionState.EXITED)
"""The states in which the channel is open in both directions."""
_STARTED = (SessionState.RUNNING, SessionState.EXITED)
_BEFORE = (SessionState.READY, SessionState.STARTING)

_R, _S = Direction.RECEIVE, Direction.SEND
_SERVER, _CLIENT, _BOTH = (Role.SERVER,), (Role.CLIENT,), (Role.SERVER, Role.CLIENT)

_rules: dict[RuleKey, Rule] = {}


def _row(
    roles: Iterable[Role],
    states: Iterable[SessionState],
    direction: Direction,
    kinds: Iterable[Kind],
    *,
    action: Action,
    source: str,
    to: SessionState | None = None,
    checks: tuple[Check, ...] = (),
) -> None:
    """Add one rule for every role x state x kind given (``to`` None: same state)."""
    for role in roles:
        for state in states:
            for kind in kinds:
                key = (role, state, direction, kind)
                if key in _rules:  # pragma: no cover - guards the table's own definition
                    raise RuntimeError(f"duplicate session rule {key}")
                _rules[key] = Rule(
                    action=action,
                    next_state=state if to is None else to,
                    checks=checks,
                    source=source,
                )


_PRE_START = (Kind.PTY, Kind.X11, Kind.ENV, Kind.AGENT)
_LARVAL = "session.c session_input_channel_req: only while the channel is LARVAL"

# --- Server: requests received from the client --------------------------------------
_row(
    _SERVER,
    [SessionState.READY],
    _R,
    [Kind.PTY],
    action=Action.ASK,
    source="RFC 4254 6.2; " + _LARVAL + ", session_pty_req",
    checks=(
        Check.PTY_NOT_GRANTED,
        Check.MODES_STRICT,
        Check.PTY_PERMITTED,
        Check.PTY_NOT_PENDING,
        Check.TERM_LENGTH,
        Check.WINDOW_SIZE,
    ),
)
_row(
    _SERVER,
    [SessionState.READY],
    _R,
    [Kind.X11],
    action=Action.ASK,
    source="RFC 4254 6.3.1; " + _LARVAL + ", session_x11_req",
    checks=(Check.X11_PERMITTED, Check.X11_ONCE),
)
_row(
    _SERVER,
    [SessionState.READY],
    _R,
    [Kind.ENV],
    action=Action.ASK,
    source="RFC 4254 6.4; " + _LARVAL + ", session_env_req",
    checks=(Check.ENV_COUNT, Check.ENV_ALLOWED),
)
_row(
    _SERVER,
    [SessionState.READY],
    _R,
    [Kind.AGENT],
    action=Action.ASK,
    source="OpenSSH PROTOCOL.agent; " + _LARVAL + ", session_auth_agent_req",
    checks=(Check.AGENT_PERMITTED, Check.AGENT_ONCE),
)
_row(
    _SERVER,
    [SessionState.READY],
    _R,
    sorted(PROGRAMS, key=lambda k: k.value),
    action=Action.ASK,
    source="RFC 4254 6.5: only one of shell, exec, subsystem succeeds; " + _LARVAL,
    to=SessionState.STARTING,
)
_row(
    _SERVER,
    [SessionState.STARTING],
    _R,
    [*_PRE_START, *sorted(PROGRAMS, key=lambda k: k.value)],
    action=Action.REFUSE,
    source="ptycore: a program request awaits its answer, so the client has moved on "
    "(OpenSSH decides synchronously and never sees this)",
)
_row(
    _SERVER,
    _STARTED,
    _R,
    [*_PRE_START, *sorted(PROGRAMS, key=lambda k: k.value)],
    action=Action.REFUSE,
    source="RFC 4254 6.5; " + _LARVAL + " (the program has started)",
)
_row(
    _SERVER,
    OPEN,
    _R,
    [Kind.WINDOW_CHANGE],
    action=Action.ACCEPT,
    source="RFC 4254 6.7; session.c session_window_change_req always succeeds",
    checks=(Check.WINDOW_SIZE,),
)
_row(
    _SERVER,
    _BEFORE,
    _R,
    [Kind.SIGNAL],
    action=Action.REFUSE,
    source='RFC 4254 6.9; session.c session_signal_req: "no pid for session"',
)
_row(
    _SERVER,
    [SessionState.RUNNING],
    _R,
    [Kind.SIGNAL],
    action=Action.ASK,
    source="RFC 4254 6.9; session.c session_signal_req (killpg on the program)",
    checks=(Check.SIGNAL_ALLOWED, Check.SIGNAL_NOT_SUBSYSTEM),
)
_row(
    _SERVER,
    [SessionState.EXITED],
    _R,
    [Kind.SIGNAL],
    action=Action.REFUSE,
    source="ptycore: the program has exited, there is nothing to signal "
    "(OpenSSH's killpg would fail with ESRCH)",
)
_row(
    _SERVER,
    _BEFORE,
    _R,
    [Kind.BREAK],
    action=Action.REFUSE,
    source="RFC 4335 3; session.c session_break_req: ptymaster is set only once the "
    "program starts",
)
_row(
    _SERVER,
    _STARTED,
    _R,
    [Kind.BREAK],
    action=Action.ASK,
    source="RFC 4335 3; session.c session_break_req (tcsendbreak on the PTY)",
    checks=(Check.BREAK_NEEDS_PTY,),
)
_row(
    _SERVER,
    OPEN,
    _R,
    [Kind.XON_XOFF, Kind.EXIT_STATUS, Kind.EXIT_SIGNAL, Kind.KEEPALIVE, Kind.UNKNOWN],
    action=Action.REFUSE,
    source="RFC 4254 5.4: unrecognized requests get FAILURE; session.c "
    "session_input_channel_req returns 0 for any other type",
)
_row(
    _SERVER,
    OPEN,
    _R,
    [Kind.EOW],
    action=Action.REFUSE,
    source="serverloop.c server_input_channel_req: eow@openssh.com is noted (chan_rcvd_eow) "
    "and answered FAILURE",
)

# --- Client: requests received from the server --------------------------------------
_row(
    _CLIENT,
    [SessionState.STARTING, SessionState.RUNNING],
    _R,
    [Kind.EXIT_STATUS, Kind.EXIT_SIGNAL],
    action=Action.ACCEPT,
    source="RFC 4254 6.10; clientloop.c client_input_channel_req (a server may report the "
    "exit before its reply to the program request)",
    to=SessionState.EXITED,
)
_row(
    _CLIENT,
    [SessionState.READY],
    _R,
    [Kind.EXIT_STATUS, Kind.EXIT_SIGNAL],
    action=Action.PROTOCOL_ERROR,
    source="RFC 4254 6.10: an exit report needs a program; none was requested",
)
_row(
    _CLIENT,
    [SessionState.EXITED],
    _R,
    [Kind.EXIT_STATUS, Kind.EXIT_SIGNAL],
    action=Action.PROTOCOL_ERROR,
    source="RFC 4254 6.10: a program exits once",
)
_row(
    _CLIENT,
    OPEN,
    _R,
    [Kind.XON_XOFF, Kind.EOW],
    action=Action.ACCEPT,
    source="RFC 4254 6.8 (xon-xoff); clientloop.c client_input_channel_req / channels.c "
    "chan_rcvd_eow (eow@openssh.com)",
)
_row(
    _CLIENT,
    OPEN,
    _R,
    [
        *_PRE_START,
        *sorted(PROGRAMS, key=lambda k: k.value),
        Kind.WINDOW_CHANGE,
        Kind.SIGNAL,
        Kind.BREAK,
        Kind.KEEPALIVE,
        Kind.UNKNOWN,
    ],
    action=Action.REFUSE,
    source="RFC 4254 5.4; clientloop.c client_input_channel_req answers FAILURE to anything "
    "else (keepalive@openssh.com: any reply proves the client alive)",
)

# --- Both: data, EOF, CLOSE and replies from the peer -------------------------------
_row(
    _SERVER,
    _BEFORE,
    _R,
    [Kind.DATA, Kind.EXTENDED_DATA],
    action=Action.PROTOCOL_ERROR,
    source="RFC 4254 5.2: never more data than the window; OpenSSH opens the session "
    "with window 0 (serverloop.c server_request_session) until the program starts",
)
_row(
    _SERVER,
    _STARTED,
    _R,
    [Kind.DATA, Kind.EXTENDED_DATA],
    action=Action.DELIVER,
    source="RFC 4254 5.2",
    checks=(Check.EOF_NOT_RECEIVED,),
)
_row(
    _CLIENT,
    OPEN,
    _R,
    [Kind.DATA, Kind.EXTENDED_DATA],
    action=Action.DELIVER,
    source="RFC 4254 5.2 (a server may write before its reply to the program request reaches us)",
    checks=(Check.EOF_NOT_RECEIVED,),
)
_row(
    _BOTH,
    OPEN,
    _R,
    [Kind.EOF],
    action=Action.DELIVER,
    source="RFC 4254 5.3",
    checks=(Check.EOF_NOT_RECEIVED,),
)
_row(
    _BOTH,
    OPEN,
    _R,
    [Kind.CLOSE],
    action=Action.DELIVER,
    source="RFC 4254 5.3: a party MUST send back CLOSE unless it already sent it; pending "
    "requests are answered FAILURE first",
    to=SessionState.CLOSED,
)
_row(
    _BOTH,
    [SessionState.CLOSING],
    _R,
    [Kind.CLOSE],
    action=Action.DELIVER,
    source="RFC 4254 5.3: closed once CLOSE was both sent and received",
    to=SessionState.CLOSED,
)
_row(
    _BOTH,
    [SessionState.CLOSING],
    _R,
    [k for k in Kind if k.is_request] + [Kind.DATA, Kind.EXTENDED_DATA, Kind.EOF],
    action=Action.DISCARD,
    source="channels.c channel_input_data ignores data for closing channels; serverloop.c "
    "server_input_channel_req sends no reply once CHAN_CLOSE_SENT",
)
_row(
    _BOTH,
    [*OPEN, SessionState.CLOSING],
    _R,
    [Kind.REPLY],
    action=Action.MATCH,
    source="RFC 4254 5.4: replies come in request order",
    checks=(Check.REPLY_EXPECTED,),
)
_row(
    _CLIENT,
    [SessionState.STARTING],
    _R,
    [Kind.PROGRAM_ACCEPTED],
    action=Action.APPLY,
    source="RFC 4254 6.5",
    to=SessionState.RUNNING,
)
_row(
    _CLIENT,
    [SessionState.STARTING],
    _R,
    [Kind.PROGRAM_REFUSED],
    action=Action.APPLY,
    source="RFC 4254 6.5: after a refusal the client may ask again",
    to=SessionState.READY,
)
_row(
    _CLIENT,
    [SessionState.EXITED, SessionState.CLOSING],
    _R,
    [Kind.PROGRAM_ACCEPTED, Kind.PROGRAM_REFUSED],
    action=Action.APPLY,
    source="RFC 4254 5.4: a late reply to the program request changes nothing any more",
)

# --- Server: what the application sends ----------------------------------------------
_row(
    _SERVER,
    [SessionState.STARTING],
    _S,
    [Kind.PROGRAM_ACCEPTED],
    action=Action.APPLY,
    source="RFC 4254 6.5; session.c do_exec succeeded",
    to=SessionState.RUNNING,
)
_row(
    _SERVER,
    [SessionState.STARTING],
    _S,
    [Kind.PROGRAM_REFUSED],
    action=Action.APPLY,
    source="session.c session_input_channel_req: the channel stays LARVAL after a failure",
    to=SessionState.READY,
)
_row(
    _SERVER,
    [SessionState.RUNNING],
    _S,
    [Kind.EXIT_STATUS, Kind.EXIT_SIGNAL],
    action=Action.SEND,
    source="RFC 4254 6.10; session.c session_exit_message (once, when the child is reaped)",
    to=SessionState.EXITED,
)
_row(
    _SERVER,
    OPEN,
    _S,
    [Kind.XON_XOFF, Kind.EOW, Kind.KEEPALIVE, Kind.UNKNOWN],
    action=Action.SEND,
    source="RFC 4254 6.8; serverloop.c client_alive_check (keepalive@openssh.com, want_reply)",
)
_row(
    _SERVER,
    _STARTED,
    _S,
    [Kind.DATA, Kind.EXTENDED_DATA],
    action=Action.SEND,
    source="RFC 4254 5.2; OpenSSH has no output before the program starts, and data may "
    "follow exit-status (session.c session_exit_message)",
    checks=(Check.EOF_NOT_SENT,),
)

# --- Client: what the application sends ----------------------------------------------
_row(
    _CLIENT,
    [SessionState.READY],
    _S,
    [Kind.PTY],
    action=Action.SEND,
    source="RFC 4254 6.2; session.c accepts it only before the program starts",
    checks=(Check.PTY_NOT_REQUESTED,),
)
_row(
    _CLIENT,
    [SessionState.READY],
    _S,
    [Kind.X11, Kind.ENV, Kind.AGENT],
    action=Action.SEND,
    source="RFC 4254 6.3-6.4; session.c accepts them only before the program starts",
)
_row(
    _CLIENT,
    [SessionState.READY],
    _S,
    sorted(PROGRAMS, key=lambda k: k.value),
    action=Action.SEND,
    source="RFC 4254 6.5",
    to=SessionState.STARTING,
)
_row(
    _CLIENT,
    [SessionState.STARTING],
    _S,
    [Kind.PROGRAM_ACCEPTED],
    action=Action.APPLY,
    source="RFC 4254 6.5: sent without want_reply, the program is assumed started",
    to=SessionState.RUNNING,
)
_row(
    _CLIENT,
    OPEN,
    _S,
    [Kind.WINDOW_CHANGE, Kind.SIGNAL, Kind.BREAK, Kind.EOW, Kind.KEEPALIVE, Kind.UNKNOWN],
    action=Action.SEND,
    source="RFC 4254 6.7, 6.9; RFC 4335; session.c decides what it accepts when",
)
_row(
    _CLIENT,
    _STARTED,
    _S,
    [Kind.DATA],
    action=Action.SEND,
    source="RFC 4254 5.2: the server's window stays 0 until the program starts",
    checks=(Check.EOF_NOT_SENT,),
)

# --- Both: EOF and CLOSE from the application ------------------------------------------
_row(
    _BOTH,
    OPEN,
    _S,
    [Kind.EOF],
    action=Action.SEND,
    source="RFC 4254 5.3",
    checks=(Check.EOF_NOT_SENT,),
)
_row(
    _BOTH,
    OPEN,
    _S,
    [Kind.CLOSE],
    action=Action.SEND,
    source="RFC 4254 5.3; undecided requests are answered FAILURE before the CLOSE",
    to=SessionState.CLOSING,
)

RULES: Mapping[RuleKey, Rule] = MappingProxyType(_rules)
"""Every transition of the session machine, keyed by (role, state, direction, kind)."""
