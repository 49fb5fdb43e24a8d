"""Terminal modes: the ``modes`` string of a ``pty-req`` (RFC 4254 section 8, RFC 8160).

The string is a stream of opcode/argument pairs: opcodes 1 to 159 take one
``uint32``, ``TTY_OP_END`` (0) ends the stream, and 160 to 255 are undefined and
stop the parse. :class:`TerminalModes` decodes it the way OpenSSH's
``tty_parse_modes`` (``ttymodes.c``) does, encodes it in the order of OpenSSH's
``tty_make_modes``, and converts to and from the attribute list of
:func:`termios.tcgetattr`, so a server can apply a client's modes to a real PTY
and a client can send its own. The conversion only computes: nothing here ever
calls ``tcsetattr``.

Cap: OpenSSH reads the modes string straight out of the packet
(``sshpkt_get_string_direct``), so its only limit is the packet's,
``PACKET_MAX_SIZE`` = 256 KiB in ``packet.c``. Here the caller caps the string
before it reaches :meth:`TerminalModes.decode` (``RequestLimits`` in
:mod:`ptycore.requests`). Whatever its length, a decoded value holds at most
159 items, one per opcode, and decoding takes time linear in the length.
"""

from __future__ import annotations

import enum
import functools
import struct
import sys
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from typing import Any, NamedTuple

from ._errors import ProtocolError

__all__ = ["ModePolicy", "Opcode", "TerminalModes"]

_UINT32 = struct.Struct(">I")
_BYTE_UINT32 = struct.Struct(">BI")
_UINT32_MAX = 0xFFFFFFFF

#: Opcodes at or above this are undefined and stop the parse (RFC 4254 section 8).
_FIRST_UNDEFINED = 160

#: The argument value RFC 4254 section 8 uses for "no character" ("255 if none").
_DISABLED = 255

#: OpenSSH's ``baud_to_speed`` and ``speed_to_baud`` turn unknown speeds into 9600.
_DEFAULT_BAUD = 9600


class Opcode(enum.IntEnum):
    """Every terminal mode opcode of RFC 4254 section 8 and RFC 8160 (``IUTF8``).

    The names are those of the RFC, which are also the POSIX ``termios`` names.
    """

    TTY_OP_END = 0
    VINTR = 1
    VQUIT = 2
    VERASE = 3
    VKILL = 4
    VEOF = 5
    VEOL = 6
    VEOL2 = 7
    VSTART = 8
    VSTOP = 9
    VSUSP = 10
    VDSUSP = 11
    VREPRINT = 12
    VWERASE = 13
    VLNEXT = 14
    VFLUSH = 15
    VSWTCH = 16
    VSTATUS = 17
    VDISCARD = 18
    IGNPAR = 30
    PARMRK = 31
    INPCK = 32
    ISTRIP = 33
    INLCR = 34
    IGNCR = 35
    ICRNL = 36
    IUCLC = 37
    IXON = 38
    IXANY = 39
    IXOFF = 40
    IMAXBEL = 41
    IUTF8 = 42
    ISIG = 50
    ICANON = 51
    XCASE = 52
    ECHO = 53
    ECHOE = 54
    ECHOK = 55
    ECHONL = 56
    NOFLSH = 57
    TOSTOP = 58
    IEXTEN = 59
    ECHOCTL = 60
    ECHOKE = 61
    PENDIN = 62
    OPOST = 70
    OLCUC = 71
    ONLCR = 72
    OCRNL = 73
    ONOCR = 74
    ONLRET = 75
    CS7 = 90
    CS8 = 91
    PARENB = 92
    PARODD = 93
    TTY_OP_ISPEED = 128
    TTY_OP_OSPEED = 129


class ModePolicy(enum.Enum):
    """How :meth:`TerminalModes.decode` treats a stream that is not regular."""

    #: As OpenSSH's ``tty_parse_modes``: keep unknown opcodes 1-159, stop at
    #: 160-255, accept a missing ``TTY_OP_END``, let a repeated opcode take the
    #: last value; only a truncated argument is an error.
    OPENSSH = "openssh"
    #: Raise :class:`~ptycore.ProtocolError` on anything irregular: an unknown
    #: opcode, an opcode of 160 or more, a missing ``TTY_OP_END`` (the empty
    #: string, which Paramiko sends, is regular), bytes after it, or a repeated
    #: opcode.
    STRICT = "strict"


class _Kind(enum.Enum):
    """What an opcode's argument sets."""

    END = "end of modes"
    SPEED = "speed"
    CHARACTER = "character"
    INPUT = "input flag"
    OUTPUT = "output flag"
    CONTROL = "control flag"
    LOCAL = "local flag"


# Index of each flag kind's field in termios.tcgetattr()'s list
# [iflag, oflag, cflag, lflag, ispeed, ospeed, cc].
_FLAG_FIELD = {_Kind.INPUT: 0, _Kind.OUTPUT: 1, _Kind.CONTROL: 2, _Kind.LOCAL: 3}


class _Spec(NamedTuple):
    kind: _Kind
    stty: str
    description: str


# One row per opcode: what it sets, its ``stty`` name, and RFC 4254 section 8's
# description (RFC 8160 for IUTF8). from_termios, to_termios, describe() and the
# docs' opcode table are all driven by this table.
_SPECS: dict[Opcode, _Spec] = {
    Opcode.TTY_OP_END: _Spec(_Kind.END, "", "Indicates end of options."),
    Opcode.VINTR: _Spec(_Kind.CHARACTER, "intr", "Interrupt character; 255 if none."),
    Opcode.VQUIT: _Spec(_Kind.CHARACTER, "quit", "The quit character (sends SIGQUIT)."),
    Opcode.VERASE: _Spec(_Kind.CHARACTER, "erase", "Erase the character left of the cursor."),
    Opcode.VKILL: _Spec(_Kind.CHARACTER, "kill", "Kill the current input line."),
    Opcode.VEOF: _Spec(_Kind.CHARACTER, "eof", "End-of-file character."),
    Opcode.VEOL: _Spec(_Kind.CHARACTER, "eol", "End-of-line character besides CR and LF."),
    Opcode.VEOL2: _Spec(_Kind.CHARACTER, "eol2", "Additional end-of-line character."),
    Opcode.VSTART: _Spec(_Kind.CHARACTER, "start", "Continues paused output (^Q)."),
    Opcode.VSTOP: _Spec(_Kind.CHARACTER, "stop", "Pauses output (^S)."),
    Opcode.VSUSP: _Spec(_Kind.CHARACTER, "susp", "Suspends the current program."),
    Opcode.VDSUSP: _Spec(_Kind.CHARACTER, "dsusp", "Another suspend character."),
    Opcode.VREPRINT: _Spec(_Kind.CHARACTER, "rprnt", "Reprints the current input line."),
    Opcode.VWERASE: _Spec(_Kind.CHARACTER, "werase", "Erases a word left of the cursor."),
    Opcode.VLNEXT: _Spec(_Kind.CHARACTER, "lnext", "Enter the next character literally."),
    Opcode.VFLUSH: _Spec(_Kind.CHARACTER, "flush", "Character to flush output."),
    Opcode.VSWTCH: _Spec(_Kind.CHARACTER, "swtch", "Switch to a different shell layer."),
    Opcode.VSTATUS: _Spec(_Kind.CHARACTER, "status", "Prints a system status line."),
    Opcode.VDISCARD: _Spec(_Kind.CHARACTER, "discard", "Toggles the flushing of output."),
    Opcode.IGNPAR: _Spec(_Kind.INPUT, "ignpar", "Ignore parity errors."),
    Opcode.PARMRK: _Spec(_Kind.INPUT, "parmrk", "Mark parity and framing errors."),
    Opcode.INPCK: _Spec(_Kind.INPUT, "inpck", "Enable checking of parity errors."),
    Opcode.ISTRIP: _Spec(_Kind.INPUT, "istrip", "Strip the 8th bit off characters."),
    Opcode.INLCR: _Spec(_Kind.INPUT, "inlcr", "Map NL into CR on input."),
    Opcode.IGNCR: _Spec(_Kind.INPUT, "igncr", "Ignore CR on input."),
    Opcode.ICRNL: _Spec(_Kind.INPUT, "icrnl", "Map CR to NL on input."),
    Opcode.IUCLC: _Spec(_Kind.INPUT, "iuclc", "Translate uppercase to lowercase."),
    Opcode.IXON: _Spec(_Kind.INPUT, "ixon", "Enable output flow control."),
    Opcode.IXANY: _Spec(_Kind.INPUT, "ixany", "Any character restarts after stop."),
    Opcode.IXOFF: _Spec(_Kind.INPUT, "ixoff", "Enable input flow control."),
    Opcode.IMAXBEL: _Spec(_Kind.INPUT, "imaxbel", "Ring the bell on input queue full."),
    Opcode.IUTF8: _Spec(_Kind.INPUT, "iutf8", "Input is UTF-8 (RFC 8160)."),
    Opcode.ISIG: _Spec(_Kind.LOCAL, "isig", "Enable signals INTR, QUIT, [D]SUSP."),
    Opcode.ICANON: _Spec(_Kind.LOCAL, "icanon", "Canonicalize input lines."),
    Opcode.XCASE: _Spec(_Kind.LOCAL, "xcase", "Uppercase I/O by escaping with a backslash."),
    Opcode.ECHO: _Spec(_Kind.LOCAL, "echo", "Enable echoing."),
    Opcode.ECHOE: _Spec(_Kind.LOCAL, "echoe", "Visually erase characters."),
    Opcode.ECHOK: _Spec(_Kind.LOCAL, "echok", "Kill character discards the current line."),
    Opcode.ECHONL: _Spec(_Kind.LOCAL, "echonl", "Echo NL even if ECHO is off."),
    Opcode.NOFLSH: _Spec(_Kind.LOCAL, "noflsh", "Don't flush after interrupt."),
    Opcode.TOSTOP: _Spec(_Kind.LOCAL, "tostop", "Stop background jobs from output."),
    Opcode.IEXTEN: _Spec(_Kind.LOCAL, "iexten", "Enable extensions."),
    Opcode.ECHOCTL: _Spec(_Kind.LOCAL, "echoctl", "Echo control characters as ^(Char)."),
    Opcode.ECHOKE: _Spec(_Kind.LOCAL, "echoke", "Visual erase for line kill."),
    Opcode.PENDIN: _Spec(_Kind.LOCAL, "pendin", "Retype pending input."),
    Opcode.OPOST: _Spec(_Kind.OUTPUT, "opost", "Enable output processing."),
    Opcode.OLCUC: _Spec(_Kind.OUTPUT, "olcuc", "Convert lowercase to uppercase."),
    Opcode.ONLCR: _Spec(_Kind.OUTPUT, "onlcr", "Map NL to CR-NL."),
    Opcode.OCRNL: _Spec(_Kind.OUTPUT, "ocrnl", "Translate CR to NL on output."),
    Opcode.ONOCR: _Spec(_Kind.OUTPUT, "onocr", "Translate NL to CR-NL on output."),
    Opcode.ONLRET: _Spec(_Kind.OUTPUT, "onlret", "NL performs a CR on output."),
    Opcode.CS7: _Spec(_Kind.CONTROL, "cs7", "7 bit mode."),
    Opcode.CS8: _Spec(_Kind.CONTROL, "cs8", "8 bit mode."),
    Opcode.PARENB: _Spec(_Kind.CONTROL, "parenb", "Parity enable."),
    Opcode.PARODD: _Spec(_Kind.CONTROL, "parodd", "Odd parity, else even."),
    Opcode.TTY_OP_ISPEED: _Spec(_Kind.SPEED, "ispeed", "Input baud rate in bits per second."),
    Opcode.TTY_OP_OSPEED: _Spec(_Kind.SPEED, "ospeed", "Output baud rate in bits per second."),
}

_SPECS_BY_VALUE = {int(opcode): spec for opcode, spec in _SPECS.items()}

# Plain values for the hot path: attribute access on an enum class is slow.
_END = int(Opcode.TTY_OP_END)
_OPENSSH = ModePolicy.OPENSSH

# Every byte that is a defined opcode with an argument, and every byte that may be
# an opcode with an argument at all: the fast path checks a whole stream's opcodes
# against these with one ``bytes.translate`` each.
_KNOWN_OPCODES = bytes(op for op in Opcode if op != Opcode.TTY_OP_END)
_ARGUMENT_OPCODES = bytes(range(1, _FIRST_UNDEFINED))

# Every opcode with an argument once, in the order of OpenSSH's tty_make_modes
# (ttymodes.c): TTY_OP_OSPEED, TTY_OP_ISPEED, then ttymodes.h's order, which is
# ascending; opcodes it does not know follow the same rule.
_SPEEDS = bytes((Opcode.TTY_OP_OSPEED, Opcode.TTY_OP_ISPEED))
_OPENSSH_ORDER = _SPEEDS + _ARGUMENT_OPCODES.translate(None, _SPEEDS)


# Bits that Python's termios module may not export although the platform has
# them: Python 3.11's termios has no IUTF8, for one. Values from the
# platforms' headers (Linux <asm-generic/termbits.h>, macOS <sys/termios.h>).
_MISSING_TERMIOS = {("IUTF8", "linux"): 0o40000, ("IUTF8", "darwin"): 0x4000}

# _POSIX_VDISABLE, the cc value that disables a character: '\0' on Linux, 0xff
# on the BSDs and macOS. Python's termios does not export it, and
# os.fpathconf(fd, "PC_VDISABLE") would need a file descriptor.
_POSIX_VDISABLE = 0 if sys.platform.startswith("linux") else 0xFF


class _Termios(NamedTuple):
    """What this platform's termios offers, as the conversions need it."""

    characters: tuple[tuple[int, int], ...]  # (opcode, index into cc)
    flags: tuple[tuple[int, int, int], ...]  # (opcode, index of the flag field, bit)
    sent: bytes  # every opcode that from_termios sets, in OpenSSH's order
    csize: int
    cs5: int
    cs7: int
    cs8: int
    bauds: dict[int, int]  # B* constant -> baud
    speeds: dict[int, int]  # baud -> B* constant
    b9600: int


@functools.cache
def _termios() -> _Termios:
    """Read the platform's termios constants once, as ttymodes.h's #ifdefs do."""
    # Imported here so that the codec works where termios does not exist.
    import termios  # noqa: PLC0415

    characters = []
    flags = []
    for opcode, spec in _SPECS.items():
        if spec.kind not in _FLAG_FIELD and spec.kind is not _Kind.CHARACTER:
            continue
        if opcode in (Opcode.CS7, Opcode.CS8):
            continue  # values of the CSIZE field, not bits: see to_termios
        value = getattr(termios, opcode.name, None)
        if value is None:
            value = _MISSING_TERMIOS.get((opcode.name, sys.platform))
            if value is None:
                continue  # this platform has no such mode, like VSTATUS on Linux
        if spec.kind is _Kind.CHARACTER:
            characters.append((int(opcode), value))
        else:
            flags.append((int(opcode), _FLAG_FIELD[spec.kind], value))
    bauds = {
        getattr(termios, name): int(name[1:])
        for name in dir(termios)
        if name.startswith("B") and name[1:].isdigit()
    }
    sent = bytes(
        (
            *_SPEEDS,
            *(op for op, _ in characters),
            *(op for op, _, _ in flags),
            Opcode.CS7,
            Opcode.CS8,
        )
    )
    return _Termios(
        characters=tuple(characters),
        flags=tuple(flags),
        sent=_layout(sent)[0],
        csize=termios.CSIZE,
        cs5=termios.CS5,
        cs7=termios.CS7,
        cs8=termios.CS8,
        bauds=bauds,
        speeds={baud: constant for constant, baud in bauds.items()},
        b9600=termios.B9600,
    )


def _character_text(value: int) -> str:
    """A special character as ``stty`` shows it: ``^C``, ``^?``, ``M-a``."""
    if value == _DISABLED:
        return "<undef>"
    if value > _DISABLED:
        return f"<{value}>"  # not a byte; OpenSSH would keep the low 8 bits
    prefix = ""
    if value >= 0x80:
        prefix = "M-"
        value -= 0x80
    if value == 0x7F:
        return prefix + "^?"
    if value < 0x20:
        return prefix + "^" + chr(value + 0x40)
    return prefix + chr(value)


def _modes_error(message: str, offset: int) -> ProtocolError:
    return ProtocolError(message, field="modes", offset=offset)


@functools.lru_cache(maxsize=_FIRST_UNDEFINED)  # room for every count of 0-159 items
def _pack_arguments(count: int) -> Callable[..., bytes]:
    """Pack ``count`` uint32 arguments as an encoding whose opcode bytes are zero.

    A pad byte before each argument leaves room for its opcode, and a last one
    is ``TTY_OP_END``; packing refuses any value that is not a uint32.
    """
    return struct.Struct(f">{'xI' * count}x").pack


@functools.lru_cache(maxsize=64)
def _layout(opcodes: bytes) -> tuple[bytes, Callable[..., bytes]]:
    """Those of ``opcodes`` that are 1-159, each once, in OpenSSH's order, and
    the packer of as many arguments as ``opcodes`` has.

    Deleting the opcodes not given from ``_OPENSSH_ORDER`` leaves the given ones
    sorted: a counting sort in two C-level calls. Cached, since a client sends
    the same opcodes in every pty-req (those of its platform's termios).
    """
    ordered = _OPENSSH_ORDER.translate(None, _OPENSSH_ORDER.translate(None, opcodes))
    return ordered, _pack_arguments(len(opcodes))


def _reorder(encoded: bytearray, opcodes: bytes, ordered: bytes) -> bytearray:
    """``encoded`` (arguments in the order of ``opcodes``) with them in ``ordered``'s.

    ``ordered`` holds each of ``opcodes`` once. Each byte of the arguments moves
    with one ``bytes.translate``: a table from opcode to that byte of its
    argument (the last one for an opcode given twice), read in the new order.
    """
    result = bytearray(5 * len(ordered) + 1)
    for position in range(1, 5):
        table = bytes.maketrans(opcodes, encoded[position::5])
        result[position::5] = ordered.translate(table)
    return result


def _invalid_item(items: Mapping[Any, Any]) -> ValueError:
    """The error for the first item that is not an opcode 1-159 with a uint32."""
    for opcode, value in items.items():
        if not isinstance(opcode, int) or not 0 < opcode < _FIRST_UNDEFINED:
            return ValueError(f"a terminal mode opcode is 1 to 159, not {opcode!r}")
        if not isinstance(value, int) or not 0 <= value <= _UINT32_MAX:
            return ValueError(f"a terminal mode value is a uint32, not {value!r}")
    raise AssertionError("unreachable: called only when an item was refused")  # pragma: no cover


class TerminalModes(Mapping[int, int]):
    """The terminal modes of a ``pty-req``: an immutable, ordered ``Mapping[int, int]``.

    Keys are opcodes (1 to 159; :class:`Opcode` names the defined ones, and any
    other opcode is kept too), values are the ``uint32`` arguments exactly as sent.
    Built from a mapping or from pairs (a repeated opcode keeps its last value),
    the items are kept in OpenSSH's order, the order :meth:`encode` writes them.
    Decoded from bytes, they are kept in wire order and the value remembers
    :attr:`raw`, so ``TerminalModes.decode(p).encode() == p`` for every ``p``
    that decodes.

    Equality and hash are those of the items as a mapping, like a ``dict``'s:
    order, :attr:`raw` and :attr:`applicable` do not count, because the modes a
    PTY ends up with do not depend on them. A ``TerminalModes`` also compares
    equal to a ``dict`` with the same items.
    """

    __slots__ = ("_applicable", "_encoded", "_hash", "_items", "_raw")

    _items: dict[int, int] | None
    _raw: bytes | None
    _encoded: bytes
    _applicable: bool
    _hash: int | None

    def __init__(
        self,
        items: Mapping[int, int] | Mapping[Opcode, int] | Iterable[tuple[int, int]] = (),
    ) -> None:
        # A repeated opcode: the last value. A dict is only read, never kept.
        given: dict[Any, Any] = items if type(items) is dict else dict(items)
        # Everything is done by a few C-level calls, never per item: bytes()
        # refuses opcodes outside 0-255, packing refuses values outside uint32,
        # and putting the opcodes in OpenSSH's order drops any that is not 1-159.
        try:
            opcodes = bytes(given)
            ordered, pack = _layout(opcodes)
            encoded = bytearray(pack(*given.values()))
        except (TypeError, ValueError, OverflowError, struct.error):
            raise _invalid_item(given) from None
        if ordered != opcodes:
            if opcodes.translate(None, _ARGUMENT_OPCODES):
                raise _invalid_item(given)
            encoded = _reorder(encoded, opcodes, ordered)
        encoded[0:-1:5] = ordered
        self._items = None
        self._raw = None
        self._encoded = bytes(encoded)
        self._applicable = True
        self._hash = None

    @classmethod
    def _decoded(
        cls, items: dict[int, int] | None, raw: bytes, *, applicable: bool
    ) -> TerminalModes:
        """Build without validation: the values came from a successful parse."""
        self = cls.__new__(cls)
        self._items = items
        self._raw = raw
        self._encoded = raw
        self._applicable = applicable
        self._hash = None
        return self

    @classmethod
    def decode(cls, data: bytes, policy: ModePolicy = ModePolicy.OPENSSH) -> TerminalModes:
        """Decode the contents of a ``pty-req``'s ``modes`` string.

        Raises :class:`~ptycore.ProtocolError` (``field="modes"``, ``offset``
        counted from the start of ``data``) for a truncated argument, which makes
        OpenSSH drop the connection, and under :attr:`ModePolicy.STRICT` for
        anything irregular. The caller caps ``len(data)`` (see the module's notes).
        """
        if type(data) is not bytes:
            data = bytes(data)
        # Fast path: what real clients send. Every opcode sits at a multiple of 5,
        # none is END or 160+, and the last byte is END. Checking that takes a few
        # C-level calls; the dict of items is built only when first needed, since
        # most servers pass the modes on without reading them one by one.
        opcodes = data[0:-1:5]
        if (
            len(data) % 5 == 1
            and data[-1] == _END
            and not opcodes.translate(None, _ARGUMENT_OPCODES)
            and (
                policy is _OPENSSH
                or (
                    not opcodes.translate(None, _KNOWN_OPCODES)
                    and len(set(opcodes)) == len(opcodes)
                )
            )
        ):
            self = object.__new__(cls)
            self._items = None
            self._raw = self._encoded = data
            self._applicable = True
            self._hash = None
            return self
        return cls._decode_slowly(data, strict=policy is not _OPENSSH)

    @classmethod
    def _decode_slowly(cls, data: bytes, *, strict: bool) -> TerminalModes:
        """Walk the stream as OpenSSH's ``tty_parse_modes`` does, byte by byte."""
        items: dict[int, int] = {}
        end = len(data)
        offset = 0
        while offset < end:
            opcode = data[offset]
            if opcode == _END:
                offset += 1
                if strict and offset < end:
                    raise _modes_error(f"{end - offset} bytes after TTY_OP_END", offset)
                break
            if opcode >= _FIRST_UNDEFINED:
                # RFC 4254 section 8: 160-255 "are not yet defined, and cause
                # parsing to stop". OpenSSH then applies nothing if bytes follow.
                if strict:
                    raise _modes_error(f"undefined opcode {opcode}", offset)
                offset += 1
                break
            if strict and opcode not in _SPECS:
                raise _modes_error(f"unknown opcode {opcode}", offset)
            if strict and opcode in items:
                raise _modes_error(f"opcode {opcode} repeated", offset)
            if offset + 5 > end:
                raise _modes_error(
                    f"truncated: the argument of opcode {opcode} needs 4 bytes, "
                    f"{end - offset - 1} left",
                    offset + 1,
                )
            items[opcode] = _UINT32.unpack_from(data, offset + 1)[0]
            offset += 5
        else:
            # An empty string is no modes at all: Paramiko sends it, and OpenSSH
            # returns early on it ("if (len == 0) return;").
            if strict and end:
                raise _modes_error("no TTY_OP_END", end)
        # ttymodes.c: "Don't process bytes passed" -- OpenSSH applies none of the
        # modes when anything is left after the byte that ended the parse.
        return cls._decoded(items, data, applicable=offset == end)

    def encode(self) -> bytes:
        """The contents of the ``modes`` string, ending with ``TTY_OP_END``.

        A decoded value gives back :attr:`raw`; any other is written in OpenSSH's
        order (``tty_make_modes``: OSPEED, ISPEED, characters, flags, END).
        """
        return self._encoded

    @property
    def raw(self) -> bytes | None:
        """The exact bytes this value was decoded from, or ``None`` if it was built."""
        return self._raw

    @property
    def applicable(self) -> bool:
        """Whether OpenSSH's sshd would apply these modes to the PTY.

        ``False`` when bytes follow the byte that ended the parse (``TTY_OP_END``
        or an opcode of 160 or more): OpenSSH then applies none of them, but
        still grants the PTY. Always ``True`` for a value that was not decoded.
        """
        return self._applicable

    @classmethod
    def from_termios(cls, attrs: Sequence[Any]) -> TerminalModes:
        """The modes of a terminal, from :func:`termios.tcgetattr`'s list.

        ``attrs`` is ``[iflag, oflag, cflag, lflag, ispeed, ospeed, cc]``. As
        OpenSSH's ``tty_make_modes``: every character and flag the platform has,
        a disabled character (``_POSIX_VDISABLE``) as 255, a flag as 0 or 1,
        speeds as baud numbers, an unknown speed as 9600. One difference: CS7
        and CS8 say whether the CSIZE field *is* CS7 or CS8, where OpenSSH tests
        them as bits and so reports CS7 set on every 8-bit terminal.
        """
        platform = _termios()
        fields = attrs[:4]
        cc = attrs[6]
        # The keys in OpenSSH's order first, so that the constructor finds them sorted.
        items = dict.fromkeys(platform.sent, 0)
        items[Opcode.TTY_OP_OSPEED] = platform.bauds.get(attrs[5], _DEFAULT_BAUD)
        items[Opcode.TTY_OP_ISPEED] = platform.bauds.get(attrs[4], _DEFAULT_BAUD)
        for opcode, index in platform.characters:
            # Python's tcgetattr gives one-byte bytes, but ints for VMIN and
            # VTIME when ICANON is off (which share slots with VEOF and VEOL on
            # some systems).
            char = cc[index]
            value = char if isinstance(char, int) else char[0]
            items[opcode] = _DISABLED if value == _POSIX_VDISABLE else value
        for opcode, field, bit in platform.flags:
            items[opcode] = int(fields[field] & bit != 0)
        size = fields[2] & platform.csize
        items[Opcode.CS7] = int(size == platform.cs7)
        items[Opcode.CS8] = int(size == platform.cs8)
        return cls(items)

    def to_termios(self, base_attrs: Sequence[Any]) -> list[Any]:
        """``base_attrs`` (``termios.tcgetattr``'s list) with these modes applied.

        A new list, ready for ``termios.tcsetattr``; nothing is called here. As
        OpenSSH's ``tty_parse_modes``: opcodes the platform lacks and unknown
        ones are skipped; 255 disables a character (``_POSIX_VDISABLE``), other
        values keep their low 8 bits as a C ``cc_t`` would; any non-zero flag
        value sets the flag; an unknown speed becomes 9600. CS7 and CS8 set the
        CSIZE field: CS8 wins when both are set (OpenSSH clients send both on
        an 8-bit terminal), and a zero turns off only the size it names.
        """
        platform = _termios()
        modes = self._mapping()
        fields = list(base_attrs[:4])
        cc = list(base_attrs[6])
        for opcode, index in platform.characters:
            value = modes.get(opcode)
            if value is not None:
                char = _POSIX_VDISABLE if value == _DISABLED else value & 0xFF
                cc[index] = char if isinstance(cc[index], int) else bytes((char,))
        for opcode, field, bit in platform.flags:
            value = modes.get(opcode)
            if value is not None:
                fields[field] = fields[field] | bit if value else fields[field] & ~bit
        size = fields[2] & platform.csize
        if modes.get(Opcode.CS8):
            size = platform.cs8
        elif modes.get(Opcode.CS7):
            size = platform.cs7
        elif (size == platform.cs8 and Opcode.CS8 in modes) or (
            size == platform.cs7 and Opcode.CS7 in modes
        ):
            size = platform.cs5  # what OpenSSH's clearing of the bits leaves
        fields[2] = fields[2] & ~platform.csize | size
        speeds = []
        for opcode, base in ((Opcode.TTY_OP_ISPEED, 4), (Opcode.TTY_OP_OSPEED, 5)):
            baud = modes.get(opcode)
            speeds.append(
                base_attrs[base] if baud is None else platform.speeds.get(baud, platform.b9600)
            )
        return [*fields, *speeds, cc]

    def describe(self) -> str:
        """These modes as readable text, in the style of ``stty -a``.

        Lines, separated by ``\\n``: the speeds, the special characters, then the
        control, input, output and local flags (``-name`` when off), then any
        opcodes without a name, and a note if OpenSSH would not apply the modes.
        Only the modes that were sent appear.
        """
        modes = self._mapping()
        lines = []
        ispeed = modes.get(Opcode.TTY_OP_ISPEED)
        ospeed = modes.get(Opcode.TTY_OP_OSPEED)
        if ispeed is not None and ispeed == ospeed:
            lines.append(f"speed {ispeed} baud;")
        else:
            lines.append(
                " ".join(
                    f"{name} {baud} baud;"
                    for name, baud in (("ispeed", ispeed), ("ospeed", ospeed))
                    if baud is not None
                )
            )
        words: dict[_Kind, list[str]] = {kind: [] for kind in _Kind}
        unknown = []
        for opcode, value in sorted(modes.items()):
            spec = _SPECS_BY_VALUE.get(opcode)
            if spec is None:
                unknown.append(f"opcode {opcode} = {value};")
            elif spec.kind is _Kind.CHARACTER:
                words[_Kind.CHARACTER].append(f"{spec.stty} = {_character_text(value)};")
            elif spec.kind is not _Kind.SPEED and opcode not in (Opcode.CS7, Opcode.CS8):
                words[spec.kind].append(spec.stty if value else f"-{spec.stty}")
        if modes.get(Opcode.CS8):
            size = ["cs8"]
        elif modes.get(Opcode.CS7):
            size = ["cs7"]
        else:
            size = [f"-{name}" for name in ("cs7", "cs8") if Opcode[name.upper()] in modes]
        words[_Kind.CONTROL][:0] = size
        for kind in (_Kind.CHARACTER, _Kind.CONTROL, _Kind.INPUT, _Kind.OUTPUT, _Kind.LOCAL):
            lines.append(" ".join(words[kind]))
        lines.append(" ".join(unknown))
        if not self._applicable:
            lines.append("(OpenSSH would not apply these: bytes follow the end of the modes)")
        text = "\n".join(line for line in lines if line)
        return text or "(no terminal modes)"

    def _mapping(self) -> dict[int, int]:
        items = self._items
        if items is None:
            # Only __init__ and the decoder's fast path leave this unset, with an
            # encoding of whole opcode/argument pairs followed by TTY_OP_END.
            items = self._items = dict(_BYTE_UINT32.iter_unpack(self._encoded[:-1]))
        return items

    def __getitem__(self, opcode: int) -> int:
        return self._mapping()[opcode]

    def __iter__(self) -> Iterator[int]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __contains__(self, opcode: object) -> bool:
        return opcode in self._mapping()

    # The views of the underlying dict, read-only, and much faster than the
    # generic ones that go through __getitem__ for every item.
    def keys(self) -> KeysView[int]:
        return self._mapping().keys()

    def values(self) -> ValuesView[int]:
        return self._mapping().values()

    def items(self) -> ItemsView[int, int]:
        return self._mapping().items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TerminalModes):
            # Equal encodings hold equal items, whether decoded or built.
            if self._encoded == other._encoded:
                return True
            return self._mapping() == other._mapping()
        if isinstance(other, Mapping):
            return self._mapping() == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._mapping().items()))
        return self._hash

    def __repr__(self) -> str:
        names = {op.value: f"Opcode.{op.name}" for op in Opcode}
        body = ", ".join(f"{names.get(op, op)}: {value}" for op, value in self.items())
        return f"TerminalModes({{{body}}})"
