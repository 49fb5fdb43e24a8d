"""Session channel requests (RFC 4254 section 6, RFC 4335, OpenSSH extensions), typed.

Each request type is a frozen, keyword-only dataclass whose ``encode()`` gives the
type-specific payload, the bytes after ``want_reply`` in ``SSH_MSG_CHANNEL_REQUEST``.
:func:`parse_request` turns a request type name and such a payload back into an
object, through one table from type name to parser (never ``getattr`` on a name the
peer chose), and raises :class:`~ptycore.ProtocolError` for anything malformed:
a field cut short, bytes after the last field, a string over its cap
(:class:`RequestLimits`), or a NUL byte where OpenSSH reads a C string.

Text fields are ``str``. Bytes that are not UTF-8 become lone surrogates
(``surrogateescape``), so ``parse_request(t, p).encode() == p`` byte for byte, and
``parse_request(t, r.encode()) == r`` for every request ``r`` that can be built.

Objects are validated when built by the caller (``TypeError`` for a wrong type,
``ValueError`` for a wrong value). The parser builds them without validating a
second time: what it read from the wire is already in range.

NUL bytes: OpenSSH's sshd reads every name, the TERM value, the command, the
subsystem name and the environment variables with ``sshpkt_get_cstring``
(``session.c``), which refuses a string with a NUL inside and drops the
connection (``sshpkt_fatal``). ptycore does the same for those fields, and for the
signal names of ``signal`` and ``exit-signal``, which name C signals; the free text
of ``exit-signal`` (message, language tag) may hold any character.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import ClassVar, Final, TypeAlias, TypeVar

from ._errors import ProtocolError
from ._wire import UINT32_MAX, Reader, encode_boolean, encode_text, encode_uint32
from .modes import ModePolicy, TerminalModes

__all__ = [
    "DEFAULT_LIMITS",
    "STANDARD_SIGNALS",
    "AgentForwardRequest",
    "BreakRequest",
    "ChannelRequest",
    "EndOfWriteRequest",
    "EnvRequest",
    "ExecRequest",
    "ExitSignalRequest",
    "ExitStatusRequest",
    "KeepaliveRequest",
    "PtyRequest",
    "RequestLimits",
    "ShellRequest",
    "SignalRequest",
    "SubsystemRequest",
    "UnknownRequest",
    "WindowChangeRequest",
    "WindowSize",
    "X11Request",
    "XonXoffRequest",
    "parse_request",
]

_UINT32 = struct.Struct(">I")
_FOUR_UINT32 = struct.Struct(">IIII")
_FIVE_UINT32 = struct.Struct(">IIIII")

#: The signal names of RFC 4254 section 6.10, without the ``SIG`` prefix.
STANDARD_SIGNALS: Final = frozenset(
    {
        *("ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL"),
        *("PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2"),
    }
)

#: The two names of the agent forwarding request: OpenSSH's, and the one of the
#: IETF agent draft (draft-ietf-sshm-ssh-agent) that newer OpenSSH also accepts.
_AGENT_NAMES: Final = ("auth-agent-req@openssh.com", "agent-req")


# -- validation of values built by the caller ---------------------------------------


def _check_uint32(name: str, value: object) -> None:
    # bool is an int subclass, but WindowSize(cols=True) is a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= UINT32_MAX:
        raise ValueError(f"{name} must be a uint32 (0 to {UINT32_MAX}), not {value}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")


def _check_text(name: str, value: object, *, nul_allowed: bool = False) -> None:
    """A ``str`` that encodes, and that parsing its encoding gives back unchanged.

    Lone surrogates are allowed only as ``surrogateescape`` makes them from bytes
    that are not UTF-8; escaped bytes that together form valid UTF-8 would come
    back from the wire as other characters, so they are refused.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.isascii():
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ValueError(f"{name} holds a character that cannot be sent: {value!r}") from None
        if raw.decode("utf-8", "surrogateescape") != value:
            raise ValueError(f"{name} holds escaped bytes that form UTF-8: {value!r}")
    if not nul_allowed and "\0" in value:
        raise ValueError(f"{name} must not contain NUL (OpenSSH reads it as a C string)")


# -- the parser's way of building without validating twice -------------------------

_T = TypeVar("_T")
_new = object.__new__
_set = object.__setattr__


def _trusted(cls: type[_T], **values: object) -> _T:
    """Build ``cls`` from values the parser read, without ``__post_init__``."""
    obj = _new(cls)
    for name, value in values.items():
        _set(obj, name, value)
    return obj


# -- limits ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestLimits:
    """Caps on what :func:`parse_request` accepts, in bytes of each string field.

    A string over its cap is a :class:`~ptycore.ProtocolError` raised before the
    string is copied, never a silent truncation. OpenSSH's own bound on every one
    of these is the packet's, ``PACKET_MAX_SIZE`` (256 KiB, ``packet.c``): it caps
    no field by itself, so each default here is chosen well above anything a real
    client sends, and says why.
    """

    #: The request type name. RFC 4251 section 6 limits names to 64 characters;
    #: OpenSSH does not check. 256 leaves room for odd peers.
    max_type_length: int = 256
    #: ``pty-req`` TERM. OpenSSH copies it into the child's environment unchecked;
    #: ncurses' ``setupterm`` (``lib_setup.c``) refuses a TERM over 512 bytes
    #: (``MAX_NAME_SIZE``), so no program could use a longer one.
    max_term_length: int = 1024
    #: ``pty-req`` modes string. OpenSSH reads it in place (``ttymodes.c``,
    #: ``sshpkt_get_string_direct``). Every opcode 1-159 once is 796 bytes.
    max_modes_length: int = 4096
    #: ``exec`` command. It becomes one argument of ``sh -c``; Linux refuses a
    #: single argument over ``MAX_ARG_STRLEN`` (128 KiB) in ``execve``.
    max_command_length: int = 131072
    #: ``subsystem`` name. sshd compares it with its ``Subsystem`` names.
    max_subsystem_length: int = 1024
    #: ``env`` name. sshd matches it against ``AcceptEnv`` patterns.
    max_env_name_length: int = 1024
    #: ``env`` value, which ends up in ``execve``'s environment (Linux caps one
    #: string at ``MAX_ARG_STRLEN``, 128 KiB).
    max_env_value_length: int = 131072
    #: ``x11-req`` protocol name (``MIT-MAGIC-COOKIE-1``) and hex cookie (32
    #: characters); sshd only checks their characters (``xauth_valid_string``).
    max_x11_field_length: int = 1024
    #: ``signal`` and ``exit-signal`` names (``INT``, ``INFO@openssh.com``).
    max_signal_name_length: int = 256
    #: ``exit-signal`` error message (free text; OpenSSH's sshd sends it empty).
    max_message_length: int = 65536
    #: ``exit-signal`` language tag (RFC 3066; OpenSSH's sshd sends it empty).
    max_language_length: int = 256
    #: The payload of a request type ptycore does not know, kept as bytes.
    max_unknown_payload_length: int = 262144
    #: How the ``pty-req`` modes are decoded (:meth:`TerminalModes.decode`).
    mode_policy: ModePolicy = ModePolicy.OPENSSH

    def __post_init__(self) -> None:
        for spec in fields(self):
            if spec.name != "mode_policy":
                _check_uint32(spec.name, getattr(self, spec.name))
        if not isinstance(self.mode_policy, ModePolicy):
            raise TypeError(f"mode_policy must be a ModePolicy, not {self.mode_policy!r}")


#: The limits :func:`parse_request` uses unless told otherwise.
DEFAULT_LIMITS: Final = RequestLimits()


# -- the requests ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowSize:
    """A terminal's size: columns first, as on the wire (RFC 4254 sections 6.2, 6.7).

    Pixel sizes are 0 when the client does not know them. Every value is a full
    ``uint32``; what a PTY can take (16 bits) is for the session to decide.
    """

    cols: int
    rows: int
    width_px: int = 0
    height_px: int = 0

    def __post_init__(self) -> None:
        cols, rows, width_px, height_px = self.cols, self.rows, self.width_px, self.height_px
        # The common case, plain ints in range, in one expression; the checks
        # one by one otherwise, to say which field is wrong.
        if (
            type(cols) is type(rows) is type(width_px) is type(height_px) is int
            and 0 <= cols <= UINT32_MAX
            and 0 <= rows <= UINT32_MAX
            and 0 <= width_px <= UINT32_MAX
            and 0 <= height_px <= UINT32_MAX
        ):
            return
        _check_uint32("cols", cols)
        _check_uint32("rows", rows)
        _check_uint32("width_px", width_px)
        _check_uint32("height_px", height_px)


@dataclass(frozen=True, kw_only=True, slots=True)
class PtyRequest:
    """``pty-req``: allocate a pseudo-terminal (RFC 4254 section 6.2).

    An empty ``term`` is allowed; OpenSSH's sshd then sets no TERM. ``modes``
    decoded from the wire keeps its bytes, so ``encode()`` gives them back exactly.
    """

    request_type: ClassVar[str] = "pty-req"
    term: str
    size: WindowSize
    modes: TerminalModes = field(default_factory=TerminalModes)

    def __post_init__(self) -> None:
        _check_text("term", self.term)
        if not isinstance(self.size, WindowSize):
            raise TypeError(f"size must be a WindowSize, not {type(self.size).__name__}")
        if not isinstance(self.modes, TerminalModes):
            raise TypeError(f"modes must be TerminalModes, not {type(self.modes).__name__}")

    def encode(self) -> bytes:
        term = self.term.encode("utf-8", "surrogateescape")
        modes = self.modes.encode()
        size = self.size
        return (
            _UINT32.pack(len(term))
            + term
            + _FIVE_UINT32.pack(size.cols, size.rows, size.width_px, size.height_px, len(modes))
            + modes
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class X11Request:
    """``x11-req``: forward X11 connections (RFC 4254 section 6.3.1).

    ``auth_cookie`` is the hexadecimal text the client sends, kept as sent.
    """

    request_type: ClassVar[str] = "x11-req"
    single_connection: bool
    auth_protocol: str
    auth_cookie: str
    screen: int

    def __post_init__(self) -> None:
        _check_bool("single_connection", self.single_connection)
        _check_text("auth_protocol", self.auth_protocol)
        _check_text("auth_cookie", self.auth_cookie)
        _check_uint32("screen", self.screen)

    def encode(self) -> bytes:
        return (
            encode_boolean(self.single_connection)
            + encode_text(self.auth_protocol)
            + encode_text(self.auth_cookie)
            + encode_uint32(self.screen)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvRequest:
    """``env``: set an environment variable (RFC 4254 section 6.4).

    The name is kept as sent (``=`` included); whether it is allowed is the
    session policy's decision, as ``AcceptEnv`` is sshd's.
    """

    request_type: ClassVar[str] = "env"
    name: str
    value: str

    def __post_init__(self) -> None:
        _check_text("name", self.name)
        _check_text("value", self.value)

    def encode(self) -> bytes:
        return encode_text(self.name) + encode_text(self.value)


@dataclass(frozen=True, kw_only=True, slots=True)
class ShellRequest:
    """``shell``: start the user's shell (RFC 4254 section 6.5). No payload."""

    request_type: ClassVar[str] = "shell"

    def encode(self) -> bytes:
        return b""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExecRequest:
    """``exec``: run a command (RFC 4254 section 6.5)."""

    request_type: ClassVar[str] = "exec"
    command: str

    def __post_init__(self) -> None:
        _check_text("command", self.command)

    def encode(self) -> bytes:
        return encode_text(self.command)


@dataclass(frozen=True, kw_only=True, slots=True)
class SubsystemRequest:
    """``subsystem``: start a named subsystem such as ``sftp`` (RFC 4254 section 6.5)."""

    request_type: ClassVar[str] = "subsystem"
    name: str

    def __post_init__(self) -> None:
        _check_text("name", self.name)

    def encode(self) -> bytes:
        return encode_text(self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowChangeRequest:
    """``window-change``: the terminal was resized (RFC 4254 section 6.7)."""

    request_type: ClassVar[str] = "window-change"
    size: WindowSize

    def __post_init__(self) -> None:
        if not isinstance(self.size, WindowSize):
            raise TypeError(f"size must be a WindowSize, not {type(self.size).__name__}")

    def encode(self) -> bytes:
        size = self.size
        return _FOUR_UINT32.pack(size.cols, size.rows, size.width_px, size.height_px)


@dataclass(frozen=True, kw_only=True, slots=True)
class XonXoffRequest:
    """``xon-xoff``: the server says whether the client may do flow control (6.8)."""

    request_type: ClassVar[str] = "xon-xoff"
    client_can_do: bool

    def __post_init__(self) -> None:
        _check_bool("client_can_do", self.client_can_do)

    def encode(self) -> bytes:
        return encode_boolean(self.client_can_do)


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalRequest:
    """``signal``: deliver a signal to the remote process (RFC 4254 section 6.9).

    The name is kept verbatim, without ``SIG``: an RFC name (:attr:`is_standard`),
    an extension such as OpenSSH's ``INFO@openssh.com``, or anything else a peer
    sends; which ones to deliver is the session policy's decision.
    """

    request_type: ClassVar[str] = "signal"
    name: str

    def __post_init__(self) -> None:
        _check_text("name", self.name)

    @property
    def is_standard(self) -> bool:
        """Whether the name is one of RFC 4254 section 6.10's (:data:`STANDARD_SIGNALS`)."""
        return self.name in STANDARD_SIGNALS

    def encode(self) -> bytes:
        return encode_text(self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExitStatusRequest:
    """``exit-status``: the remote command exited (RFC 4254 section 6.10).

    All 32 bits are kept (AsyncSSH masks them to 8).
    """

    request_type: ClassVar[str] = "exit-status"
    status: int

    def __post_init__(self) -> None:
        _check_uint32("status", self.status)

    def encode(self) -> bytes:
        return encode_uint32(self.status)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExitSignalRequest:
    """``exit-signal``: a signal ended the remote command (RFC 4254 section 6.10).

    ``name`` is without ``SIG``, as in :class:`SignalRequest`. OpenSSH's sshd sends
    ``message`` and ``language`` empty.
    """

    request_type: ClassVar[str] = "exit-signal"
    name: str
    core_dumped: bool
    message: str = ""
    language: str = ""

    def __post_init__(self) -> None:
        _check_text("name", self.name)
        _check_bool("core_dumped", self.core_dumped)
        _check_text("message", self.message, nul_allowed=True)
        _check_text("language", self.language, nul_allowed=True)

    @property
    def is_standard(self) -> bool:
        """Whether the name is one of RFC 4254 section 6.10's (:data:`STANDARD_SIGNALS`)."""
        return self.name in STANDARD_SIGNALS

    def encode(self) -> bytes:
        return (
            encode_text(self.name)
            + encode_boolean(self.core_dumped)
            + encode_text(self.message)
            + encode_text(self.language)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakRequest:
    """``break``: send a BREAK on the terminal line (RFC 4335 section 3).

    OpenSSH's ``~B`` asks for 1000 ms; its sshd ignores the length.
    """

    request_type: ClassVar[str] = "break"
    length_ms: int

    def __post_init__(self) -> None:
        _check_uint32("length_ms", self.length_ms)

    def encode(self) -> bytes:
        return encode_uint32(self.length_ms)


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentForwardRequest:
    """Agent forwarding: ``auth-agent-req@openssh.com`` (OpenSSH) or ``agent-req``.

    No payload. The type name is a field, so a request round-trips under the name
    it came with.
    """

    request_type: str = "auth-agent-req@openssh.com"

    def __post_init__(self) -> None:
        if self.request_type not in _AGENT_NAMES:
            raise ValueError(f"request_type must be one of {_AGENT_NAMES}")

    def encode(self) -> bytes:
        return b""


@dataclass(frozen=True, kw_only=True, slots=True)
class EndOfWriteRequest:
    """``eow@openssh.com``: no more data will be written (OpenSSH PROTOCOL 2.1)."""

    request_type: ClassVar[str] = "eow@openssh.com"

    def encode(self) -> bytes:
        return b""


@dataclass(frozen=True, kw_only=True, slots=True)
class KeepaliveRequest:
    """``keepalive@openssh.com``: sshd's ``ClientAliveInterval`` probe (``serverloop.c``).

    Sent with ``want_reply`` set; any reply, even a failure, means alive.
    """

    request_type: ClassVar[str] = "keepalive@openssh.com"

    def encode(self) -> bytes:
        return b""


@dataclass(frozen=True, kw_only=True, slots=True)
class UnknownRequest:
    """A request type ptycore does not know, kept whole: RFC 4254 section 5.4 says
    to answer it with ``SSH_MSG_CHANNEL_FAILURE``.

    ``request_type`` must not be a known name (that would not round-trip).
    """

    request_type: str
    payload: bytes = b""

    def __post_init__(self) -> None:
        _check_text("request_type", self.request_type)
        if self.request_type in _PARSERS:
            raise ValueError(f"{self.request_type!r} is a known request type")
        if not isinstance(self.payload, bytes):
            raise TypeError(f"payload must be bytes, not {type(self.payload).__name__}")

    def encode(self) -> bytes:
        return self.payload


ChannelRequest: TypeAlias = (
    PtyRequest
    | X11Request
    | EnvRequest
    | ShellRequest
    | ExecRequest
    | SubsystemRequest
    | WindowChangeRequest
    | XonXoffRequest
    | SignalRequest
    | ExitStatusRequest
    | ExitSignalRequest
    | BreakRequest
    | AgentForwardRequest
    | EndOfWriteRequest
    | KeepaliveRequest
    | UnknownRequest
)

# The slots' own setters: the fastest way to fill a frozen, slotted dataclass.
_set_cols, _set_rows, _set_width_px, _set_height_px = (
    vars(WindowSize)[name].__set__ for name in ("cols", "rows", "width_px", "height_px")
)
_set_term, _set_size, _set_modes = (
    vars(PtyRequest)[name].__set__ for name in ("term", "size", "modes")
)

_SHELL: Final = ShellRequest()
_EOW: Final = EndOfWriteRequest()
_KEEPALIVE: Final = KeepaliveRequest()


# -- parsers --------------------------------------------------------------------------


def _end(reader: Reader) -> None:
    """RFC 4254 defines every payload to its end: anything left is malformed."""
    if reader.remaining:
        raise ProtocolError(
            f"{reader.remaining} unexpected bytes after the last field",
            field="payload",
            offset=reader.offset,
        )


def _cstring(reader: Reader, name: str, max_length: int) -> str:
    """A text field that OpenSSH reads with ``sshpkt_get_cstring``: no NUL inside."""
    start = reader.offset
    raw = reader.string(name, max_length)
    if b"\0" in raw:
        raise ProtocolError(
            f"{name} contains a NUL byte", field=name, offset=start + 4 + raw.index(b"\0")
        )
    return raw.decode("utf-8", "surrogateescape")


def _truncated(name: str, needed: int, offset: int, left: int) -> ProtocolError:
    return ProtocolError(
        f"truncated: {name} needs {needed} bytes, {left} left", field=name, offset=offset
    )


_SIZE_FIELDS: Final = ("cols", "rows", "width_px", "height_px", "modes")


def _parse_pty_req(data: bytes, limits: RequestLimits) -> PtyRequest:
    """RFC 4254 section 6.2::

        string    TERM environment variable value (e.g., vt100)
        uint32    terminal width, characters (e.g., 80)
        uint32    terminal height, rows (e.g., 24)
        uint32    terminal width, pixels (e.g., 640)
        uint32    terminal height, pixels (e.g., 480)
        string    encoded terminal modes

    Written out by hand rather than through :class:`Reader`: this is the request
    a server parses for every interactive login, and the one the benchmark times.
    """
    end = len(data)
    if end < 4:
        raise _truncated("term", 4, 0, end)
    length = _UINT32.unpack_from(data, 0)[0]
    if length > limits.max_term_length:
        raise ProtocolError(
            f"term is {length} bytes long, more than the limit of {limits.max_term_length}",
            field="term",
            offset=0,
        )
    start = length + 4
    if start + 20 > end:
        if start > end:
            raise ProtocolError(
                f"truncated: term claims {length} bytes, {end - 4} left", field="term", offset=0
            )
        # Name the first of the five uint32s that is cut short.
        index = (end - start) // 4
        offset = start + 4 * index
        raise _truncated(_SIZE_FIELDS[index], 4, offset, end - offset)
    raw_term = data[4:start]
    if b"\0" in raw_term:
        raise ProtocolError(
            "term contains a NUL byte", field="term", offset=4 + raw_term.index(b"\0")
        )
    cols, rows, width_px, height_px, modes_length = _FIVE_UINT32.unpack_from(data, start)
    if modes_length > limits.max_modes_length:
        raise ProtocolError(
            f"modes is {modes_length} bytes long, "
            f"more than the limit of {limits.max_modes_length}",
            field="modes",
            offset=start + 16,
        )
    modes_start = start + 20
    modes_end = modes_start + modes_length
    if modes_end != end:
        if modes_end > end:
            raise ProtocolError(
                f"truncated: modes claims {modes_length} bytes, {end - modes_start} left",
                field="modes",
                offset=start + 16,
            )
        raise ProtocolError(
            f"{end - modes_end} unexpected bytes after the last field",
            field="payload",
            offset=modes_end,
        )
    try:
        modes = TerminalModes.decode(data[modes_start:], limits.mode_policy)
    except ProtocolError as error:
        # TerminalModes counts offsets from the start of the modes string.
        raise ProtocolError(
            error.message,
            reason=error.reason,
            field="modes",
            offset=modes_start + (error.offset or 0),
        ) from None
    size = _new(WindowSize)
    _set_cols(size, cols)
    _set_rows(size, rows)
    _set_width_px(size, width_px)
    _set_height_px(size, height_px)
    request = _new(PtyRequest)
    _set_term(request, raw_term.decode("utf-8", "surrogateescape"))
    _set_size(request, size)
    _set_modes(request, modes)
    return request


def _parse_x11_req(data: bytes, limits: RequestLimits) -> X11Request:
    """RFC 4254 section 6.3.1::

    boolean   single connection
    string    x11 authentication protocol
    string    x11 authentication cookie
    uint32    x11 screen number
    """
    reader = Reader(data)
    single_connection = reader.boolean("single_connection")
    auth_protocol = _cstring(reader, "auth_protocol", limits.max_x11_field_length)
    auth_cookie = _cstring(reader, "auth_cookie", limits.max_x11_field_length)
    screen = reader.uint32("screen")
    _end(reader)
    return _trusted(
        X11Request,
        single_connection=single_connection,
        auth_protocol=auth_protocol,
        auth_cookie=auth_cookie,
        screen=screen,
    )


def _parse_env(data: bytes, limits: RequestLimits) -> EnvRequest:
    """RFC 4254 section 6.4::

    string    variable name
    string    variable value
    """
    reader = Reader(data)
    name = _cstring(reader, "name", limits.max_env_name_length)
    value = _cstring(reader, "value", limits.max_env_value_length)
    _end(reader)
    return _trusted(EnvRequest, name=name, value=value)


def _parse_exec(data: bytes, limits: RequestLimits) -> ExecRequest:
    """RFC 4254 section 6.5::

    string    command
    """
    reader = Reader(data)
    command = _cstring(reader, "command", limits.max_command_length)
    _end(reader)
    return _trusted(ExecRequest, command=command)


def _parse_subsystem(data: bytes, limits: RequestLimits) -> SubsystemRequest:
    """RFC 4254 section 6.5::

    string    subsystem name
    """
    reader = Reader(data)
    name = _cstring(reader, "name", limits.max_subsystem_length)
    _end(reader)
    return _trusted(SubsystemRequest, name=name)


def _parse_window_change(data: bytes, limits: RequestLimits) -> WindowChangeRequest:
    """RFC 4254 section 6.7::

    uint32    terminal width, columns
    uint32    terminal height, rows
    uint32    terminal width, pixels
    uint32    terminal height, pixels
    """
    if len(data) != 16:
        reader = Reader(data)
        for name in _SIZE_FIELDS[:4]:
            reader.uint32(name)
        _end(reader)
    cols, rows, width_px, height_px = _FOUR_UINT32.unpack(data)
    size = _trusted(WindowSize, cols=cols, rows=rows, width_px=width_px, height_px=height_px)
    return _trusted(WindowChangeRequest, size=size)


def _parse_xon_xoff(data: bytes, limits: RequestLimits) -> XonXoffRequest:
    """RFC 4254 section 6.8::

    boolean   client can do
    """
    reader = Reader(data)
    client_can_do = reader.boolean("client_can_do")
    _end(reader)
    return _trusted(XonXoffRequest, client_can_do=client_can_do)


def _parse_signal(data: bytes, limits: RequestLimits) -> SignalRequest:
    """RFC 4254 section 6.9::

    string    signal name (without the "SIG" prefix)
    """
    reader = Reader(data)
    name = _cstring(reader, "name", limits.max_signal_name_length)
    _end(reader)
    return _trusted(SignalRequest, name=name)


def _parse_exit_status(data: bytes, limits: RequestLimits) -> ExitStatusRequest:
    """RFC 4254 section 6.10::

    uint32    exit_status
    """
    reader = Reader(data)
    status = reader.uint32("status")
    _end(reader)
    return _trusted(ExitStatusRequest, status=status)


def _parse_exit_signal(data: bytes, limits: RequestLimits) -> ExitSignalRequest:
    """RFC 4254 section 6.10::

    string    signal name (without the "SIG" prefix)
    boolean   core dumped
    string    error message in ISO-10646 UTF-8 encoding
    string    language tag [RFC3066]
    """
    reader = Reader(data)
    name = _cstring(reader, "name", limits.max_signal_name_length)
    core_dumped = reader.boolean("core_dumped")
    message = reader.text("message", limits.max_message_length)
    language = reader.text("language", limits.max_language_length)
    _end(reader)
    return _trusted(
        ExitSignalRequest,
        name=name,
        core_dumped=core_dumped,
        message=message,
        language=language,
    )


def _parse_break(data: bytes, limits: RequestLimits) -> BreakRequest:
    """RFC 4335 section 3::

    uint32    break-length in milliseconds
    """
    reader = Reader(data)
    length_ms = reader.uint32("length_ms")
    _end(reader)
    return _trusted(BreakRequest, length_ms=length_ms)


def _no_payload(data: bytes) -> None:
    """Requests without fields: ``shell`` (RFC 4254 6.5), ``eow@openssh.com``
    (OpenSSH PROTOCOL 2.1), ``keepalive@openssh.com``, agent forwarding."""
    if data:
        raise ProtocolError(
            f"{len(data)} unexpected bytes: this request has no fields",
            field="payload",
            offset=0,
        )


def _parse_shell(data: bytes, limits: RequestLimits) -> ShellRequest:
    _no_payload(data)
    return _SHELL


def _parse_eow(data: bytes, limits: RequestLimits) -> EndOfWriteRequest:
    _no_payload(data)
    return _EOW


def _parse_keepalive(data: bytes, limits: RequestLimits) -> KeepaliveRequest:
    _no_payload(data)
    return _KEEPALIVE


def _agent_parser(name: str) -> Callable[[bytes, RequestLimits], AgentForwardRequest]:
    request = AgentForwardRequest(request_type=name)

    def parse(data: bytes, limits: RequestLimits) -> AgentForwardRequest:
        _no_payload(data)
        return request

    return parse


_Parser: TypeAlias = Callable[[bytes, RequestLimits], ChannelRequest]

#: The one dispatch table: request type name -> parser.
_PARSERS: Final[dict[str, _Parser]] = {
    PtyRequest.request_type: _parse_pty_req,
    X11Request.request_type: _parse_x11_req,
    EnvRequest.request_type: _parse_env,
    ShellRequest.request_type: _parse_shell,
    ExecRequest.request_type: _parse_exec,
    SubsystemRequest.request_type: _parse_subsystem,
    WindowChangeRequest.request_type: _parse_window_change,
    XonXoffRequest.request_type: _parse_xon_xoff,
    SignalRequest.request_type: _parse_signal,
    ExitStatusRequest.request_type: _parse_exit_status,
    ExitSignalRequest.request_type: _parse_exit_signal,
    BreakRequest.request_type: _parse_break,
    EndOfWriteRequest.request_type: _parse_eow,
    KeepaliveRequest.request_type: _parse_keepalive,
    **{name: _agent_parser(name) for name in _AGENT_NAMES},
}
_PARSERS_BY_BYTES: Final = {name.encode("ascii"): parse for name, parse in _PARSERS.items()}


def _type_name(request_type: str | bytes, limits: RequestLimits) -> str:
    """Check a type name that is not in the table; it becomes an UnknownRequest's."""
    if isinstance(request_type, str):
        _check_text("request_type", request_type, nul_allowed=True)
        raw = request_type.encode("utf-8", "surrogateescape")
    else:
        raw = request_type
    if len(raw) > limits.max_type_length:
        raise ProtocolError(
            f"the request type is {len(raw)} bytes long, "
            f"more than the limit of {limits.max_type_length}",
            field="request_type",
            offset=limits.max_type_length,
        )
    if b"\0" in raw:
        # OpenSSH reads it with sshpkt_get_cstring (channels.c) and disconnects.
        raise ProtocolError(
            "the request type contains a NUL byte",
            field="request_type",
            offset=raw.index(b"\0"),
        )
    return raw.decode("utf-8", "surrogateescape")


def parse_request(
    request_type: str | bytes,
    payload: bytes | bytearray | memoryview,
    *,
    limits: RequestLimits = DEFAULT_LIMITS,
) -> ChannelRequest:
    """Parse the type-specific part of an ``SSH_MSG_CHANNEL_REQUEST``.

    ``request_type`` is the type name (``str``, or the ``bytes`` of the wire);
    ``payload`` is everything after ``want_reply``. A type ptycore does not know
    gives an :class:`UnknownRequest`. Malformed input raises
    :class:`~ptycore.ProtocolError` with ``request_type``, ``field`` and
    ``offset`` (into ``payload``; into the name for ``field="request_type"``) set;
    nothing else is raised for any ``payload``.
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    if isinstance(request_type, bytes):
        parse = _PARSERS_BY_BYTES.get(request_type)
    else:
        parse = _PARSERS.get(request_type)
    if parse is None:
        return _parse_unknown(request_type, payload, limits)
    try:
        return parse(payload, limits)
    except ProtocolError as error:
        name = request_type if isinstance(request_type, str) else request_type.decode("ascii")
        raise error.with_request_type(name) from None


def _parse_unknown(
    request_type: str | bytes, payload: bytes, limits: RequestLimits
) -> UnknownRequest:
    """Any other type: the payload is kept whole, within its cap."""
    try:
        name = _type_name(request_type, limits)
    except ProtocolError as error:
        raise error.with_request_type(_printable(request_type)) from None
    if len(payload) > limits.max_unknown_payload_length:
        raise ProtocolError(
            f"payload is {len(payload)} bytes long, "
            f"more than the limit of {limits.max_unknown_payload_length}",
            request_type=name,
            field="payload",
            offset=0,
        )
    return _trusted(UnknownRequest, request_type=name, payload=payload)


def _printable(request_type: str | bytes) -> str:
    """A refused type name, shortened for an error message."""
    if isinstance(request_type, bytes):
        request_type = request_type.decode("utf-8", "backslashreplace")
    return request_type if len(request_type) <= 64 else request_type[:64] + "..."
