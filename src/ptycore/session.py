"""The SSH session channel state machine, sans-IO, for servers and clients.

One object per session channel. It never sees a channel number, a socket or a
clock: the connection layer (or an adapter such as Twisted Conch) feeds it what
arrived on the channel and sends what it produced.

Server, in short::

    session = ServerSession(policy=SessionPolicy(accept_env=("LANG", "LC_*")))
    event = session.receive_request(request, want_reply)
    # (or session.receive_channel_request(request_type, payload, want_reply))
    if isinstance(event, RequestReceived):                  # the application decides,
        session.accept(event.handle)                        # now or later, in any order
    elif isinstance(event, WindowChanged): ...              # already answered by the machine
    elif isinstance(event, RequestRefused): ...             # refused by OpenSSH's rules; log it
    session.receive_data(b"...")      -> DataReceived       (only once the program runs)
    session.receive_eof()             -> EOFReceived
    session.receive_close()           -> CloseReceived      (the CLOSE reply is queued for you)
    session.send_data(b"..."); session.send_extended_data(b"...")   # stderr
    session.send_exit_status(0) or session.send_exit_signal("TERM")
    session.send_eof(); session.close()
    session.pty, session.environment, session.program, session.exit_status   # for adapters
    for item in session.items_to_send(): ...   # OutgoingReply / OutgoingRequest / OutgoingData /
                                               # OutgoingEOF / OutgoingClose, in wire order
    wire = session.data_to_send(recipient_channel)   # or: encoded messages, ready to send

Every :class:`RequestReceived` needs exactly one ``accept`` or ``reject``, even
without ``want_reply`` (an accepted ``env`` is recorded, an accepted ``shell``
starts the program). Every event about a received request carries a ``handle``;
its reply, if one was wanted, is the :class:`OutgoingReply` with that handle, so an
adapter can map replies back to requests.

Client, in short::

    session = ClientSession()
    session.request_pty(term="xterm", size=WindowSize(cols=80, rows=24), termios_attrs=attrs)
    session.request_env("LANG", "C.UTF-8"); session.request_shell()
    session.receive_reply(True) -> RequestAnswered   (matched to requests in order)
    session.receive_request(req, want_reply) -> ExitStatusReceived / ExitSignalReceived / ...
    session.change_window(size); session.send_signal("INT"); session.send_break()

Rules (all in :mod:`ptycore._session_rules`, one row each with its RFC 4254 or
OpenSSH source): CHANNEL_SUCCESS/FAILURE go out strictly in request order, exactly one
for each request that wanted a reply, none otherwise (RFC 4254 5.4). What OpenSSH's
``sshd`` refuses, the server machine refuses by itself; what OpenSSH treats as a
protocol violation raises :class:`~ptycore.ProtocolError` and leaves the session in
the sticky ``ERROR`` state (send DISCONNECT with ``error.reason`` and drop the
connection). An application call the rules do not allow raises
:class:`LocalProtocolError` and changes nothing.

Output items carry no channel number and data is not split to the peer's window or
maximum packet size: both belong to the connection layer. The adapter must open the
session channel with a receive window of 0 and grant window only once
:attr:`Session.program_started` is true, as OpenSSH does; data received before that
is a :class:`~ptycore.ProtocolError`.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias

from ._errors import ProtocolError
from ._session_rules import (
    OPEN,
    PROGRAMS,
    RULES,
    Action,
    Check,
    Direction,
    Kind,
    Outcome,
    Role,
    Rule,
    SessionState,
)
from ._wire import encode_string, encode_uint32
from .messages import (
    ChannelFailureMessage,
    ChannelRequestMessage,
    ChannelSuccessMessage,
    MessageNumber,
)
from .modes import ModePolicy, TerminalModes
from .requests import (
    DEFAULT_LIMITS,
    AgentForwardRequest,
    BreakRequest,
    ChannelRequest,
    EndOfWriteRequest,
    EnvRequest,
    ExecRequest,
    ExitSignalRequest,
    ExitStatusRequest,
    KeepaliveRequest,
    PtyRequest,
    RequestLimits,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    UnknownRequest,
    WindowChangeRequest,
    WindowSize,
    X11Request,
    XonXoffRequest,
    parse_request,
)

__all__ = [
    "OPENSSH_SIGNALS",
    "ClientEvent",
    "ClientSession",
    "CloseReceived",
    "DataReceived",
    "Discarded",
    "EOFReceived",
    "ExitSignalReceived",
    "ExitStatusReceived",
    "LocalProtocolError",
    "Outgoing",
    "OutgoingClose",
    "OutgoingData",
    "OutgoingEOF",
    "OutgoingReply",
    "OutgoingRequest",
    "ProgramRequest",
    "RequestAccepted",
    "RequestAnswered",
    "RequestReceived",
    "RequestRefused",
    "Role",
    "ServerEvent",
    "ServerSession",
    "Session",
    "SessionPolicy",
    "SessionState",
    "WindowChanged",
    "WindowSizePolicy",
    "encode_outgoing",
]

ProgramRequest: TypeAlias = ShellRequest | ExecRequest | SubsystemRequest
"""What a session runs: a shell, a command or a subsystem."""

MAX_WINDOW_DIMENSION: Final = 0xFFFF
"""struct winsize holds 16-bit fields; OpenSSH's pty_change_window_size truncates."""

SSH_EXTENDED_DATA_STDERR: Final = 1
"""RFC 4254 5.2: the one extended data type defined."""

OPENSSH_SIGNALS: Final = frozenset({"HUP", "INT", "KILL", "QUIT", "TERM", "USR1", "USR2"})
"""session.c name2sig: what sshd delivers (and ``INFO@openssh.com`` where SIGINFO exists)."""

_REQUEST_KINDS: Final[Mapping[type, Kind]] = MappingProxyType(
    {
        PtyRequest: Kind.PTY,
        X11Request: Kind.X11,
        EnvRequest: Kind.ENV,
        ShellRequest: Kind.SHELL,
        ExecRequest: Kind.EXEC,
        SubsystemRequest: Kind.SUBSYSTEM,
        WindowChangeRequest: Kind.WINDOW_CHANGE,
        XonXoffRequest: Kind.XON_XOFF,
        SignalRequest: Kind.SIGNAL,
        ExitStatusRequest: Kind.EXIT_STATUS,
        ExitSignalRequest: Kind.EXIT_SIGNAL,
        BreakRequest: Kind.BREAK,
        AgentForwardRequest: Kind.AGENT,
        EndOfWriteRequest: Kind.EOW,
        KeepaliveRequest: Kind.KEEPALIVE,
        UnknownRequest: Kind.UNKNOWN,
    }
)


def _kind_of(request: ChannelRequest) -> Kind:
    kind = _REQUEST_KINDS.get(type(request))
    if kind is None:
        raise TypeError(f"not a channel request: {request!r}")
    return kind


class LocalProtocolError(Exception):
    """The application asked for something the session rules do not allow.

    Nothing changed: the call was refused before it had any effect. ``state`` is
    where the session stands, ``kind`` what was attempted (None where no input kind
    applies, e.g. an unknown handle).
    """

    def __init__(self, message: str, *, state: SessionState, kind: Kind | None = None) -> None:
        self.message = message
        self.state = state
        self.kind = kind
        super().__init__(message)


class WindowSizePolicy(enum.Enum):
    """What the server does with a window dimension over 65535.

    The wire carries uint32 values (RFC 4254 6.2, 6.7) but ``struct winsize`` holds
    16 bits, and OpenSSH's ``pty_change_window_size`` silently truncates (70000 columns
    become 4464). ptycore never truncates.
    """

    CLAMP = "clamp"
    """Use 65535 for that dimension and set ``clamped`` on the event."""
    REFUSE = "refuse"
    """Refuse the pty-req or window-change (CHANNEL_FAILURE if a reply is wanted)."""


def _compile_env_pattern(pattern: str) -> re.Pattern[str]:
    """OpenSSH's match_pattern (match.c): ``*`` any run, ``?`` one character, else literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionPolicy:
    """What a server session accepts; validated when built.

    Defaults follow OpenSSH's ``sshd`` out of the box.
    """

    accept_env: tuple[str, ...] = ()
    """Environment names a client may set: ``*``/``?`` patterns as sshd_config's
    AcceptEnv (session.c session_env_req uses match_pattern); none by default."""
    max_env: int = 128
    """At most this many env requests accepted per session. OpenSSH checks
    ``num_env > 128`` (session.c session_env_req), which lets 129 through."""
    max_term_length: int = 256
    """Longest TERM name (bytes) a pty-req may carry. OpenSSH has no cap of its own
    beyond its 256 KiB packet limit; terminfo names are far shorter."""
    signals: frozenset[str] = OPENSSH_SIGNALS
    """Signal names delivered (without ``SIG``). OpenSSH's seven by default; add
    ``INFO@openssh.com`` where the platform has SIGINFO, as name2sig does."""
    allow_pty: bool = True
    """Whether a PTY may be granted at all (sshd_config PermitTTY; ``no-pty`` in
    authorized_keys, see :class:`~ptycore.auth.LoginRestrictions`)."""
    allow_agent_forwarding: bool = True
    """Whether agent forwarding (``auth-agent-req@openssh.com``) may be granted at
    all; if not, the request is refused before the application sees it (sshd_config
    AllowAgentForwarding; ``no-agent-forwarding`` or ``restrict`` in
    authorized_keys; ``session.c`` ``session_auth_agent_req``). True lets the
    application decide: ptycore itself never forwards an agent."""
    allow_x11_forwarding: bool = True
    """Whether X11 forwarding (``x11-req``) may be granted at all; if not, the
    request is refused before the application sees it (sshd_config
    X11Forwarding, which is off by default in sshd; ``no-X11-forwarding`` or
    ``restrict`` in authorized_keys; ``session.c`` ``session_x11_req``). True lets
    the application decide: ptycore itself never forwards X11."""
    forced_command: str | None = None
    """Run this command for every shell, exec and subsystem request instead (sshd
    ``ForceCommand``; ``command=`` in authorized_keys): the application is asked
    about an ``exec`` of it, and :attr:`ServerSession.original_command` keeps what
    the client asked for (``session.c`` ``do_exec``)."""
    mode_policy: ModePolicy = ModePolicy.OPENSSH
    """OPENSSH: irregular terminal modes still get the PTY, ``modes.applicable`` tells
    whether to apply them (ttymodes.c). STRICT: they are a ProtocolError."""
    window_size: WindowSizePolicy = WindowSizePolicy.CLAMP
    """What to do with window dimensions over 65535 (see WindowSizePolicy)."""
    limits: RequestLimits = DEFAULT_LIMITS
    """Field size caps used by :meth:`Session.receive_channel_request`."""
    _env_patterns: tuple[re.Pattern[str], ...] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name, what in (("accept_env", "pattern"), ("signals", "signal name")):
            values: object = getattr(self, name)
            if (
                isinstance(values, str | bytes)
                or not isinstance(values, Iterable)
                or not all(isinstance(v, str) and v for v in values)
            ):
                raise TypeError(f"{name} must be a collection of non-empty {what} strings")
        for name in ("max_env", "max_term_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        if not isinstance(self.mode_policy, ModePolicy):
            raise TypeError("mode_policy must be a ModePolicy")
        if not isinstance(self.window_size, WindowSizePolicy):
            raise TypeError("window_size must be a WindowSizePolicy")
        for name in ("allow_pty", "allow_agent_forwarding", "allow_x11_forwarding"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")
        if self.forced_command is not None:
            ExecRequest(command=self.forced_command)  # validates the text
        object.__setattr__(self, "accept_env", tuple(self.accept_env))
        object.__setattr__(self, "signals", frozenset(self.signals))
        object.__setattr__(
            self, "_env_patterns", tuple(_compile_env_pattern(p) for p in self.accept_env)
        )

    def env_allowed(self, name: str) -> bool:
        """Whether ``name`` matches one of the AcceptEnv-style patterns."""
        return any(p.fullmatch(name) for p in self._env_patterns)


# --- Events: what the machine tells the application -------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestReceived:
    """Server: the application must :meth:`~ServerSession.accept` or
    :meth:`~ServerSession.reject` ``handle``, now or later, in any order.

    ``request`` is the request as the machine took it: for a pty-req whose size was
    clamped (``clamped`` true), the clamped size; under a forced command
    (:attr:`SessionPolicy.forced_command`), an ``exec`` of it, with the client's
    shell, exec or subsystem request in ``original``.
    """

    handle: int
    request: ChannelRequest
    want_reply: bool
    clamped: bool = False
    original: ProgramRequest | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestRefused:
    """The machine refused a peer's request by itself (FAILURE if a reply was wanted).

    ``handle`` is the one its :class:`OutgoingReply` carries, if a reply was wanted.
    ``reason`` says why, for logs: the rule's source, or for a check that failed,
    ``required: <the check> (<its source>)``.
    """

    handle: int
    request: ChannelRequest
    want_reply: bool
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestAccepted:
    """Client: the machine accepted a server's request (``xon-xoff``, ``eow@openssh.com``)."""

    handle: int
    request: ChannelRequest
    want_reply: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowChanged:
    """Server: the client's terminal was resized (already answered: OpenSSH always
    succeeds). ``size`` is clamped to 65535 per dimension if ``clamped``."""

    handle: int
    request: WindowChangeRequest
    want_reply: bool
    size: WindowSize
    clamped: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestAnswered:
    """The peer answered one of our requests (matched in order, RFC 4254 5.4)."""

    handle: int
    request: ChannelRequest
    accepted: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class ExitStatusReceived:
    """Client: the program exited with ``status`` (all 32 bits, RFC 4254 6.10)."""

    status: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ExitSignalReceived:
    """Client: a signal killed the program (name without ``SIG``)."""

    name: str
    core_dumped: bool
    message: str
    language: str


@dataclass(frozen=True, kw_only=True, slots=True)
class DataReceived:
    """Channel data; ``data_type`` is set for extended data (1 is stderr)."""

    data: bytes
    data_type: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class EOFReceived:
    """The peer will send no more data (RFC 4254 5.3)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CloseReceived:
    """The peer closed the channel; the machine queued our CLOSE if not sent yet."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Discarded:
    """Input dropped without effect or reply, because we already sent CLOSE."""

    what: str


ServerEvent: TypeAlias = (
    RequestReceived
    | RequestRefused
    | WindowChanged
    | RequestAnswered
    | DataReceived
    | EOFReceived
    | CloseReceived
    | Discarded
)
ClientEvent: TypeAlias = (
    RequestRefused
    | RequestAccepted
    | RequestAnswered
    | ExitStatusReceived
    | ExitSignalReceived
    | DataReceived
    | EOFReceived
    | CloseReceived
    | Discarded
)


# --- Outgoing items: what must be sent to the peer, in order ----------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class OutgoingReply:
    """CHANNEL_SUCCESS (``success``) or CHANNEL_FAILURE for the request ``handle``."""

    handle: int
    success: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class OutgoingRequest:
    """A CHANNEL_REQUEST; replies to it come back through ``receive_reply``."""

    handle: int
    request: ChannelRequest
    want_reply: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class OutgoingData:
    """CHANNEL_DATA, or CHANNEL_EXTENDED_DATA when ``data_type`` is set; not yet
    split to the peer's window and maximum packet size."""

    data: bytes
    data_type: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OutgoingEOF:
    """CHANNEL_EOF."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OutgoingClose:
    """CHANNEL_CLOSE."""


Outgoing: TypeAlias = OutgoingReply | OutgoingRequest | OutgoingData | OutgoingEOF | OutgoingClose


def encode_outgoing(item: Outgoing, recipient_channel: int) -> bytes:
    """Encode one outgoing item as an SSH message (message number byte included).

    Data is encoded as one message whatever its size: split it to the peer's
    window and maximum packet size before, in the connection layer.
    """
    if isinstance(item, OutgoingReply):
        reply = ChannelSuccessMessage if item.success else ChannelFailureMessage
        return reply(recipient_channel=recipient_channel).encode()
    if isinstance(item, OutgoingRequest):
        return ChannelRequestMessage(
            recipient_channel=recipient_channel, want_reply=item.want_reply, request=item.request
        ).encode()
    if isinstance(item, OutgoingData):
        # RFC 4254 5.2: byte 94, uint32 recipient, string data; or byte 95, uint32
        # recipient, uint32 data_type_code, string data.
        if item.data_type is None:
            return (
                bytes([MessageNumber.CHANNEL_DATA])
                + encode_uint32(recipient_channel)
                + encode_string(item.data)
            )
        return (
            bytes([MessageNumber.CHANNEL_EXTENDED_DATA])
            + encode_uint32(recipient_channel)
            + encode_uint32(item.data_type)
            + encode_string(item.data)
        )
    # RFC 4254 5.3: byte 96 / 97, uint32 recipient channel.
    number = (
        MessageNumber.CHANNEL_EOF if isinstance(item, OutgoingEOF) else MessageNumber.CHANNEL_CLOSE
    )
    return bytes([number]) + encode_uint32(recipient_channel)


@dataclass(kw_only=True, slots=True)
class _Pending:
    """A received request waiting for the application, or a reply waiting its turn."""

    handle: int
    kind: Kind
    request: ChannelRequest
    want_reply: bool
    decision: bool | None = None
    original: ProgramRequest | None = None


def _clamp(size: WindowSize) -> WindowSize:
    return WindowSize(
        cols=min(size.cols, MAX_WINDOW_DIMENSION),
        rows=min(size.rows, MAX_WINDOW_DIMENSION),
        width_px=min(size.width_px, MAX_WINDOW_DIMENSION),
        height_px=min(size.height_px, MAX_WINDOW_DIMENSION),
    )


class Session(abc.ABC):
    """What server and client sessions share: the rules table, replies, data, EOF, CLOSE."""

    __slots__ = (
        "_awaiting",
        "_environment",
        "_eof_received",
        "_eof_sent",
        "_exit_signal",
        "_exit_status",
        "_next_handle",
        "_outgoing",
        "_program",
        "_pty",
        "_state",
    )

    role: Role

    def __init__(self) -> None:
        self._state = SessionState.READY
        self._next_handle = 1
        self._outgoing: list[Outgoing] = []
        # Our requests that want a reply, oldest first (RFC 4254 5.4). Lists, not
        # deques, here and in ServerSession: a few entries at most, and an empty
        # deque costs every idle session 760 bytes.
        self._awaiting: list[tuple[int, ChannelRequest]] = []
        self._eof_sent = False
        self._eof_received = False
        self._pty: PtyRequest | None = None
        self._environment: dict[str, str] = {}
        self._program: ProgramRequest | None = None
        self._exit_status: int | None = None
        self._exit_signal: ExitSignalRequest | None = None

    # -- introspection -------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Where the session stands (always a state the rules table lists)."""
        return self._state

    @property
    def eof_sent(self) -> bool:
        """Whether we sent EOF."""
        return self._eof_sent

    @property
    def eof_received(self) -> bool:
        """Whether the peer sent EOF."""
        return self._eof_received

    @property
    def program_started(self) -> bool:
        """Whether the program runs or ran: from now on the receive window may open."""
        return self._program is not None

    @property
    def pty(self) -> PtyRequest | None:
        """The granted PTY as it stands now: term, size after window changes, modes."""
        return self._pty

    @property
    def environment(self) -> Mapping[str, str]:
        """Accepted environment variables, in order (a repeated name keeps the last)."""
        return MappingProxyType(self._environment)

    @property
    def program(self) -> ProgramRequest | None:
        """The shell, exec or subsystem request that started the program."""
        return self._program

    @property
    def exit_status(self) -> int | None:
        """The program's exit status, once reported."""
        return self._exit_status

    @property
    def exit_signal(self) -> ExitSignalRequest | None:
        """The signal that killed the program, once reported."""
        return self._exit_signal

    @property
    def awaiting_replies(self) -> int:
        """How many of our requests still await their reply."""
        return len(self._awaiting)

    # -- output --------------------------------------------------------------------

    def items_to_send(self) -> list[Outgoing]:
        """Drain what must be sent to the peer, in wire order."""
        items, self._outgoing = self._outgoing, []
        return items

    def data_to_send(self, recipient_channel: int) -> bytes:
        """Drain and encode everything queued, as concatenated SSH message payloads."""
        return b"".join(encode_outgoing(i, recipient_channel) for i in self.items_to_send())

    # -- input common to both roles ------------------------------------------------

    def _parse(self, request_type: str | bytes, payload: bytes) -> ChannelRequest:
        """The one place request bytes enter: malformed means ProtocolError and ERROR."""
        self._ensure_usable(None)
        try:
            return parse_request(request_type, payload, limits=self._limits)
        except ProtocolError:
            self._state = SessionState.ERROR
            raise

    def receive_reply(self, success: bool) -> RequestAnswered:
        """Take a CHANNEL_SUCCESS (True) or CHANNEL_FAILURE (False) from the peer."""
        self._ensure_usable(Kind.REPLY)
        self._run_checks(self._rule(Direction.RECEIVE, Kind.REPLY, None), None)
        handle, request = self._awaiting.pop(0)
        kind = _kind_of(request)
        if kind in PROGRAMS:
            outcome = Kind.PROGRAM_ACCEPTED if success else Kind.PROGRAM_REFUSED
            self._state = self._rule(Direction.RECEIVE, outcome, None).next_state
        self._answered(request, success)
        return RequestAnswered(handle=handle, request=request, accepted=success)

    def receive_data(self, data: bytes) -> DataReceived | Discarded:
        """Take CHANNEL_DATA from the peer."""
        return self._receive_data(bytes(data), None, Kind.DATA)

    def receive_extended_data(self, data_type: int, data: bytes) -> DataReceived | Discarded:
        """Take CHANNEL_EXTENDED_DATA from the peer (data_type 1 is stderr)."""
        return self._receive_data(bytes(data), data_type, Kind.EXTENDED_DATA)

    def receive_eof(self) -> EOFReceived | Discarded:
        """Take CHANNEL_EOF from the peer."""
        self._ensure_usable(Kind.EOF)
        rule = self._rule(Direction.RECEIVE, Kind.EOF, None)
        if rule.action is Action.DISCARD:
            return Discarded(what=Kind.EOF.value)
        self._run_checks(rule, None)
        self._eof_received = True
        return EOFReceived()

    def receive_close(self) -> CloseReceived:
        """Take CHANNEL_CLOSE; our CLOSE is queued unless we sent it already."""
        self._ensure_usable(Kind.CLOSE)
        rule = self._rule(Direction.RECEIVE, Kind.CLOSE, None)
        if self._state in OPEN:
            self._shut()
        self._state = rule.next_state
        return CloseReceived()

    @abc.abstractmethod
    def receive_request(
        self, request: ChannelRequest, want_reply: bool
    ) -> ServerEvent | ClientEvent:
        """Take a typed CHANNEL_REQUEST received from the peer."""

    # -- output common to both roles -----------------------------------------------

    def send_request(self, request: ChannelRequest, *, want_reply: bool = False) -> int:
        """Queue a request of ours; returns the handle its RequestAnswered will carry."""
        self._ensure_usable(None)
        kind = _kind_of(request)
        rule = self._rule(Direction.SEND, kind, None)
        self._run_checks(rule, request)
        handle = self._new_handle()
        self._outgoing.append(
            OutgoingRequest(handle=handle, request=request, want_reply=want_reply)
        )
        if want_reply:
            self._awaiting.append((handle, request))
        self._state = rule.next_state
        self._sent(kind, request, want_reply)
        return handle

    def send_data(self, data: bytes) -> None:
        """Queue channel data."""
        self._send_data(bytes(data), None, Kind.DATA)

    def send_eof(self) -> None:
        """Queue EOF: no more data from us (requests may still follow)."""
        self._ensure_usable(Kind.EOF)
        rule = self._rule(Direction.SEND, Kind.EOF, None)
        self._run_checks(rule, None)
        self._eof_sent = True
        self._outgoing.append(OutgoingEOF())

    def close(self) -> None:
        """Queue CLOSE; undecided requests are answered FAILURE first."""
        self._ensure_usable(Kind.CLOSE)
        rule = self._rule(Direction.SEND, Kind.CLOSE, None)
        self._shut()
        self._state = rule.next_state

    # -- machinery -----------------------------------------------------------------

    @property
    def _limits(self) -> RequestLimits:
        return DEFAULT_LIMITS

    def _new_handle(self) -> int:
        handle = self._next_handle
        self._next_handle += 1
        return handle

    def _ensure_usable(self, kind: Kind | None) -> None:
        if self._state is SessionState.ERROR:
            raise LocalProtocolError(
                "the session is in ERROR after a protocol error; drop the connection",
                state=self._state,
                kind=kind,
            )

    def _peer_error(self, message: str, request: ChannelRequest | None) -> ProtocolError:
        self._state = SessionState.ERROR
        return ProtocolError(
            message, request_type=None if request is None else request.request_type
        )

    def _rule(self, direction: Direction, kind: Kind, request: ChannelRequest | None) -> Rule:
        """Look the input up; no row means a peer violation or application misuse."""
        state = self._state
        rule = RULES.get((self.role, state, direction, kind))
        if rule is None:
            what = f"{kind.value} in state {state.name} ({self.role.value})"
            if direction is Direction.RECEIVE:
                raise self._peer_error(f"unexpected {what}", request)
            raise LocalProtocolError(f"cannot send {what}", state=state, kind=kind)
        if rule.action is Action.PROTOCOL_ERROR:
            raise self._peer_error(
                f"{kind.value} not allowed in state {state.name}: {rule.source}", request
            )
        return rule

    def _run_checks(self, rule: Rule, request: ChannelRequest | None) -> Check | None:
        """Evaluate the row's checks in order; return the first that refuses.

        Checks whose failure is an error raise here.
        """
        for check in rule.checks:
            if self._check(check, request):
                continue
            spec = check.spec
            if spec.outcome is Outcome.REFUSE:
                return check
            message = f"{spec.text} is required ({spec.source})"
            if spec.outcome is Outcome.PROTOCOL_ERROR:
                raise self._peer_error(message, request)
            raise LocalProtocolError(message, state=self._state, kind=None)
        return None

    def _check(self, check: Check, request: ChannelRequest | None) -> bool:
        if check is Check.EOF_NOT_RECEIVED:
            return not self._eof_received
        if check is Check.EOF_NOT_SENT:
            return not self._eof_sent
        if check is Check.REPLY_EXPECTED:
            return bool(self._awaiting)
        return self._role_check(check, request)

    @abc.abstractmethod
    def _role_check(self, check: Check, request: ChannelRequest | None) -> bool:
        """Checks that depend on the role's own bookkeeping."""

    def _receive_data(
        self, data: bytes, data_type: int | None, kind: Kind
    ) -> DataReceived | Discarded:
        self._ensure_usable(kind)
        rule = self._rule(Direction.RECEIVE, kind, None)
        if rule.action is Action.DISCARD:
            return Discarded(what=kind.value)
        if rule.checks:  # most packets of a transfer: none to run
            self._run_checks(rule, None)
        return DataReceived(data=data, data_type=data_type)

    def _send_data(self, data: bytes, data_type: int | None, kind: Kind) -> None:
        self._ensure_usable(kind)
        rule = self._rule(Direction.SEND, kind, None)
        self._run_checks(rule, None)
        self._outgoing.append(OutgoingData(data=data, data_type=data_type))

    def _shut(self) -> None:
        """Answer what is undecided with FAILURE, then queue CLOSE."""
        self._outgoing.append(OutgoingClose())

    @abc.abstractmethod
    def _answered(self, request: ChannelRequest, success: bool) -> None:
        """Bookkeeping once the peer answered one of our requests."""

    @abc.abstractmethod
    def _sent(self, kind: Kind, request: ChannelRequest, want_reply: bool) -> None:
        """Bookkeeping after one of our requests was queued."""


class ServerSession(Session):
    """The server end of a session channel: OpenSSH ``sshd``'s rules by default."""

    __slots__ = (
        "_agent_granted",
        "_agent_requested",
        "_env_accepted",
        "_original",
        "_replies",
        "_undecided",
        "_x11",
        "policy",
    )

    role = Role.SERVER

    def __init__(self, policy: SessionPolicy | None = None) -> None:
        super().__init__()
        self.policy = SessionPolicy() if policy is None else policy
        if not isinstance(self.policy, SessionPolicy):
            raise TypeError("policy must be a SessionPolicy")
        # Requests that want a reply, in arrival order (RFC 4254 5.4).
        self._replies: list[_Pending] = []
        # Requests the application has not decided yet, by handle.
        self._undecided: dict[int, _Pending] = {}
        self._x11: X11Request | None = None
        self._agent_requested = False
        self._agent_granted = False
        self._env_accepted = 0
        self._original: ProgramRequest | None = None

    @property
    def _limits(self) -> RequestLimits:
        return self.policy.limits

    @property
    def x11(self) -> X11Request | None:
        """The granted X11 forwarding request."""
        return self._x11

    @property
    def agent_forwarding(self) -> bool:
        """Whether agent forwarding was granted."""
        return self._agent_granted

    @property
    def original_command(self) -> str | None:
        """The client's own command, once a forced command runs in its place: the
        exec's command, or the subsystem's name; ``None`` for a shell, as sshd sets
        ``SSH_ORIGINAL_COMMAND`` only when there was one (``session.c``
        ``do_setup_env``)."""
        original = self._original
        if isinstance(original, ExecRequest):
            return original.command
        if isinstance(original, SubsystemRequest):
            return original.name
        return None

    @property
    def undecided(self) -> tuple[int, ...]:
        """Handles of received requests the application has not decided yet."""
        return tuple(self._undecided)

    def receive_channel_request(
        self, request_type: str | bytes, payload: bytes, want_reply: bool
    ) -> ServerEvent:
        """Parse a CHANNEL_REQUEST payload with the policy's limits, then receive it."""
        return self.receive_request(self._parse(request_type, payload), want_reply)

    def receive_request(self, request: ChannelRequest, want_reply: bool) -> ServerEvent:
        """Take a typed request from the client and say what happens to it."""
        self._ensure_usable(None)
        kind = _kind_of(request)
        rule = self._rule(Direction.RECEIVE, kind, request)
        if rule.action is Action.DISCARD:
            return Discarded(what=request.request_type)
        refused_by = self._run_checks(rule, request)
        if refused_by is not None:
            spec = refused_by.spec
            return self._refuse(request, want_reply, f"required: {spec.text} ({spec.source})")
        if rule.action is Action.REFUSE:
            return self._refuse(request, want_reply, rule.source)
        if isinstance(request, WindowChangeRequest):
            return self._window_change(request, want_reply)
        clamped = False
        if isinstance(request, PtyRequest):
            size = _clamp(request.size)
            clamped = size != request.size
            request = dataclasses.replace(request, size=size)
        if kind is Kind.AGENT:
            # session.c session_auth_agent_req sets `called` before it tries, so a
            # second request is refused even when the first failed.
            self._agent_requested = True
        original: ProgramRequest | None = None
        forced = self.policy.forced_command
        if forced is not None and isinstance(
            request, ShellRequest | ExecRequest | SubsystemRequest
        ):
            # session.c do_exec: the forced command replaces whatever was asked for.
            original, request = request, ExecRequest(command=forced)
        pending = _Pending(
            handle=self._new_handle(),
            kind=kind,
            request=request,
            want_reply=want_reply,
            original=original,
        )
        self._undecided[pending.handle] = pending
        if want_reply:
            self._replies.append(pending)
        self._state = rule.next_state
        return RequestReceived(
            handle=pending.handle,
            request=request,
            want_reply=want_reply,
            clamped=clamped,
            original=original,
        )

    def accept(self, handle: int) -> None:
        """Grant the request ``handle``; its SUCCESS goes out in request order."""
        self._decide(handle, True)

    def reject(self, handle: int) -> None:
        """Refuse the request ``handle``; its FAILURE goes out in request order."""
        self._decide(handle, False)

    def send_exit_status(self, status: int) -> None:
        """Report the program's exit status (all 32 bits; once, after it started)."""
        self.send_request(ExitStatusRequest(status=status))

    def send_exit_signal(
        self, name: str, *, core_dumped: bool = False, message: str = "", language: str = ""
    ) -> None:
        """Report the signal that killed the program (name without ``SIG``; once)."""
        self.send_request(
            ExitSignalRequest(
                name=name, core_dumped=core_dumped, message=message, language=language
            )
        )

    def send_extended_data(self, data: bytes, data_type: int = SSH_EXTENDED_DATA_STDERR) -> None:
        """Queue extended data (stderr by default)."""
        self._send_data(bytes(data), data_type, Kind.EXTENDED_DATA)

    # -- internals -----------------------------------------------------------------

    def _decide(self, handle: int, ok: bool) -> None:
        self._ensure_usable(None)
        pending = self._undecided.get(handle)
        if pending is None:
            raise LocalProtocolError(
                f"no undecided request with handle {handle!r}", state=self._state
            )
        if pending.kind in PROGRAMS:
            outcome = Kind.PROGRAM_ACCEPTED if ok else Kind.PROGRAM_REFUSED
            self._state = self._rule(Direction.SEND, outcome, None).next_state
        del self._undecided[handle]
        pending.decision = ok
        if ok:
            self._apply_grant(pending)
        self._flush_replies()

    def _apply_grant(self, pending: _Pending) -> None:
        request = pending.request
        if isinstance(request, PtyRequest):
            self._pty = request
        elif isinstance(request, EnvRequest):
            self._environment[request.name] = request.value
            self._env_accepted += 1
        elif isinstance(request, X11Request):
            self._x11 = request
        elif isinstance(request, AgentForwardRequest):
            self._agent_granted = True
        elif isinstance(request, ShellRequest | ExecRequest | SubsystemRequest):
            self._program = request
            self._original = pending.original

    def _flush_replies(self) -> None:
        while self._replies and self._replies[0].decision is not None:
            done = self._replies.pop(0)
            self._outgoing.append(OutgoingReply(handle=done.handle, success=bool(done.decision)))

    def _answer_now(self, request: ChannelRequest, want_reply: bool, ok: bool) -> int:
        """A reply the machine decided; it still waits for earlier undecided ones."""
        handle = self._new_handle()
        if want_reply:
            self._replies.append(
                _Pending(
                    handle=handle,
                    kind=_kind_of(request),
                    request=request,
                    want_reply=True,
                    decision=ok,
                )
            )
            self._flush_replies()
        return handle

    def _refuse(self, request: ChannelRequest, want_reply: bool, reason: str) -> RequestRefused:
        handle = self._answer_now(request, want_reply, False)
        return RequestRefused(handle=handle, request=request, want_reply=want_reply, reason=reason)

    def _window_change(self, request: WindowChangeRequest, want_reply: bool) -> WindowChanged:
        size = _clamp(request.size)
        if self._pty is not None:
            self._pty = dataclasses.replace(self._pty, size=size)
        for pending in self._undecided.values():
            if isinstance(pending.request, PtyRequest):
                pending.request = dataclasses.replace(pending.request, size=size)
        handle = self._answer_now(request, want_reply, True)
        return WindowChanged(
            handle=handle,
            request=request,
            want_reply=want_reply,
            size=size,
            clamped=size != request.size,
        )

    def _shut(self) -> None:
        for pending in self._undecided.values():
            pending.decision = False
        self._undecided.clear()
        self._flush_replies()
        super()._shut()

    def _answered(self, request: ChannelRequest, success: bool) -> None:
        """A server's own requests (keepalive, xon-xoff, ...) leave nothing to track."""

    def _sent(self, kind: Kind, request: ChannelRequest, want_reply: bool) -> None:
        if isinstance(request, ExitStatusRequest):
            self._exit_status = request.status
        elif isinstance(request, ExitSignalRequest):
            self._exit_signal = request

    def _pending_of(self, kind: Kind) -> int:
        return sum(1 for p in self._undecided.values() if p.kind is kind)

    def _role_check(self, check: Check, request: ChannelRequest | None) -> bool:  # noqa: PLR0911
        policy = self.policy
        if check is Check.PTY_NOT_GRANTED:
            return self._pty is None
        if check is Check.PTY_PERMITTED:
            return policy.allow_pty
        if check is Check.PTY_NOT_PENDING:
            return self._pending_of(Kind.PTY) == 0
        if check is Check.X11_PERMITTED:
            return policy.allow_x11_forwarding
        if check is Check.X11_ONCE:
            return self._x11 is None and self._pending_of(Kind.X11) == 0
        if check is Check.AGENT_PERMITTED:
            return policy.allow_agent_forwarding
        if check is Check.AGENT_ONCE:
            return not self._agent_requested
        if check is Check.ENV_COUNT:
            return self._env_accepted + self._pending_of(Kind.ENV) < policy.max_env
        if check is Check.SIGNAL_NOT_SUBSYSTEM:
            return not isinstance(self._program, SubsystemRequest)
        if check is Check.BREAK_NEEDS_PTY:
            return self._pty is not None
        return self._request_check(check, request)

    def _request_check(self, check: Check, request: ChannelRequest | None) -> bool:
        """Checks on the request's own content."""
        policy = self.policy
        if isinstance(request, PtyRequest):
            if check is Check.MODES_STRICT:
                return _modes_strict_ok(request.modes, policy.mode_policy)
            if check is Check.TERM_LENGTH:
                term = request.term.encode("utf-8", "surrogateescape")
                return len(term) <= policy.max_term_length
            return _size_ok(request.size, policy.window_size)
        if isinstance(request, WindowChangeRequest):
            return _size_ok(request.size, policy.window_size)
        if isinstance(request, EnvRequest):
            return policy.env_allowed(request.name)
        return isinstance(request, SignalRequest) and request.name in policy.signals


def _size_ok(size: WindowSize, policy: WindowSizePolicy) -> bool:
    return policy is WindowSizePolicy.CLAMP or _clamp(size) == size


def _modes_strict_ok(modes: TerminalModes, policy: ModePolicy) -> bool:
    if policy is not ModePolicy.STRICT or modes.raw is None:
        return True
    try:
        TerminalModes.decode(modes.raw, policy=ModePolicy.STRICT)
    except ProtocolError:
        return False
    return True


class ClientSession(Session):
    """The client end of a session channel.

    Builds requests, matches the server's replies to them in order, and reports
    what the server says about the program (exit status or signal), EOF and CLOSE.
    """

    __slots__ = ("_pty_asked",)

    role = Role.CLIENT

    def __init__(self) -> None:
        super().__init__()
        self._pty_asked: PtyRequest | None = None

    @property
    def pty_requested(self) -> PtyRequest | None:
        """The pty-req we sent (updated by our window changes), until refused."""
        return self._pty_asked

    # -- requests ------------------------------------------------------------------

    def request_pty(
        self,
        *,
        term: str,
        size: WindowSize,
        modes: TerminalModes | None = None,
        termios_attrs: list[object] | None = None,
        want_reply: bool = True,
    ) -> int:
        """Ask for a PTY; modes from ``modes`` or from a ``termios.tcgetattr`` list."""
        if modes is not None and termios_attrs is not None:
            raise ValueError("give modes or termios_attrs, not both")
        if termios_attrs is not None:
            modes = TerminalModes.from_termios(termios_attrs)
        request = PtyRequest(term=term, size=size, modes=modes or TerminalModes())
        return self.send_request(request, want_reply=want_reply)

    def request_env(self, name: str, value: str, *, want_reply: bool = False) -> int:
        """Ask to set an environment variable (OpenSSH's client wants no reply)."""
        return self.send_request(EnvRequest(name=name, value=value), want_reply=want_reply)

    def request_shell(self, *, want_reply: bool = True) -> int:
        """Ask for the user's shell."""
        return self.send_request(ShellRequest(), want_reply=want_reply)

    def request_exec(self, command: str, *, want_reply: bool = True) -> int:
        """Ask to run ``command``."""
        return self.send_request(ExecRequest(command=command), want_reply=want_reply)

    def request_subsystem(self, name: str, *, want_reply: bool = True) -> int:
        """Ask for a subsystem such as ``sftp``."""
        return self.send_request(SubsystemRequest(name=name), want_reply=want_reply)

    def request_agent_forwarding(self, *, want_reply: bool = False) -> int:
        """Ask for agent forwarding (``auth-agent-req@openssh.com``)."""
        return self.send_request(AgentForwardRequest(), want_reply=want_reply)

    def change_window(self, size: WindowSize) -> int:
        """Tell the server the terminal's new size (RFC 4254 6.7: no reply)."""
        return self.send_request(WindowChangeRequest(size=size))

    def send_signal(self, name: str) -> int:
        """Send a signal, name without ``SIG`` (RFC 4254 6.9: no reply)."""
        return self.send_request(SignalRequest(name=name))

    def send_break(self, length_ms: int = 1000, *, want_reply: bool = False) -> int:
        """Send a break (RFC 4335); OpenSSH's ``~B`` sends 1000 ms without a reply."""
        return self.send_request(BreakRequest(length_ms=length_ms), want_reply=want_reply)

    # -- input ---------------------------------------------------------------------

    def receive_channel_request(
        self, request_type: str | bytes, payload: bytes, want_reply: bool
    ) -> ClientEvent:
        """Parse a CHANNEL_REQUEST payload, then receive it."""
        return self.receive_request(self._parse(request_type, payload), want_reply)

    def receive_request(self, request: ChannelRequest, want_reply: bool) -> ClientEvent:
        """Take a typed request from the server."""
        self._ensure_usable(None)
        kind = _kind_of(request)
        rule = self._rule(Direction.RECEIVE, kind, request)
        if rule.action is Action.DISCARD:
            return Discarded(what=request.request_type)
        ok = rule.action is Action.ACCEPT
        handle = self._new_handle()
        if want_reply:
            self._outgoing.append(OutgoingReply(handle=handle, success=ok))
        self._state = rule.next_state
        if not ok:
            return RequestRefused(
                handle=handle, request=request, want_reply=want_reply, reason=rule.source
            )
        if isinstance(request, ExitStatusRequest):
            self._exit_status = request.status
            return ExitStatusReceived(status=request.status)
        if isinstance(request, ExitSignalRequest):
            self._exit_signal = request
            return ExitSignalReceived(
                name=request.name,
                core_dumped=request.core_dumped,
                message=request.message,
                language=request.language,
            )
        return RequestAccepted(handle=handle, request=request, want_reply=want_reply)

    # -- internals -----------------------------------------------------------------

    def _role_check(self, check: Check, request: ChannelRequest | None) -> bool:
        # The only client-specific check is Check.PTY_NOT_REQUESTED.
        return self._pty_asked is None

    def _sent(self, kind: Kind, request: ChannelRequest, want_reply: bool) -> None:
        if isinstance(request, PtyRequest):
            self._pty_asked = request
        elif isinstance(request, WindowChangeRequest) and self._pty_asked is not None:
            self._pty_asked = dataclasses.replace(self._pty_asked, size=request.size)
            if self._pty is not None:
                self._pty = self._pty_asked
        if kind in PROGRAMS and not want_reply:
            self._state = self._rule(Direction.SEND, Kind.PROGRAM_ACCEPTED, None).next_state
        if not want_reply:
            self._answered(request, True)

    def _answered(self, request: ChannelRequest, success: bool) -> None:
        if isinstance(request, PtyRequest):
            self._pty_asked = self._pty_asked if success else None
            self._pty = self._pty_asked
        elif success and isinstance(request, EnvRequest):
            self._environment[request.name] = request.value
        elif success and isinstance(request, ShellRequest | ExecRequest | SubsystemRequest):
            self._program = request
