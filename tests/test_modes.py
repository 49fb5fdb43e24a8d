"""Terminal modes: OpenSSH's decoding rules, round trips, termios on real PTYs.

The two OPENSSH_* payloads are the ``modes`` strings the real OpenSSH client
(OpenSSH_9.2p1 Debian-2+deb12u6, Linux) sent in its pty-req. They were captured
by running ``ssh -tt`` in a PTY prepared with ``stty`` against a Paramiko server
on 127.0.0.1 whose ``check_channel_pty_request`` recorded the raw modes, the same
way ``test_real_openssh_client_modes_apply_to_a_pty`` below does live.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import struct
import subprocess
import termios
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ptycore import ModePolicy, Opcode, ProtocolError, TerminalModes

# `stty sane` on a fresh Linux PTY, as OpenSSH 9.2p1 sends it: 52 modes, 261 bytes.
OPENSSH_DEFAULT = bytes.fromhex(
    "810000960080000096000100000003020000001c030000007f0400000015050000000406000000ff"
    "07000000ff080000001109000000130a0000001a0c000000120d000000170e00000016120000000f"
    "1e000000001f00000000200000000021000000002200000000230000000024000000012500000000"
    "26000000012700000000280000000029000000002a00000000320000000133000000013400000000"
    "350000000136000000013700000001380000000039000000003a000000003b000000013c00000001"
    "3d000000013e0000000046000000014700000000480000000149000000004a000000004b00000000"
    "5a000000015b000000015c000000005d0000000000"
)
# After `stty -icanon intr ^X iutf8 9600 susp undef`.
OPENSSH_CHANGED = bytes.fromhex(
    "810000258080000025800100000018020000001c030000007f0400000015050000000406000000ff"
    "07000000ff080000001109000000130a000000ff0c000000120d000000170e00000016120000000f"
    "1e000000001f00000000200000000021000000002200000000230000000024000000012500000000"
    "26000000012700000000280000000029000000002a00000001320000000133000000003400000000"
    "350000000136000000013700000001380000000039000000003a000000003b000000013c00000001"
    "3d000000013e0000000046000000014700000000480000000149000000004a000000004b00000000"
    "5a000000015b000000015c000000005d0000000000"
)
REAL_PAYLOADS = [OPENSSH_DEFAULT, OPENSSH_CHANGED]
POLICIES = list(ModePolicy)


def pair(opcode: int, value: int) -> bytes:
    return struct.pack(">BI", opcode, value)


END = b"\x00"

# Opcodes 1-159 with any uint32: everything TerminalModes can hold.
mode_maps = st.dictionaries(
    st.integers(min_value=1, max_value=159), st.integers(min_value=0, max_value=2**32 - 1)
)


# --- Opcode and the wire format --------------------------------------------------


def test_opcodes_are_those_of_rfc_4254_and_rfc_8160() -> None:
    assert len(Opcode) == 57
    assert Opcode.TTY_OP_END.value == 0
    assert [Opcode.VINTR, Opcode.VDISCARD] == [1, 18]
    assert [Opcode.IGNPAR, Opcode.IMAXBEL, Opcode.IUTF8] == [30, 41, 42]
    assert [Opcode.ISIG, Opcode.PENDIN, Opcode.OPOST, Opcode.ONLRET] == [50, 62, 70, 75]
    assert [Opcode.CS7, Opcode.CS8, Opcode.PARENB, Opcode.PARODD] == [90, 91, 92, 93]
    assert [Opcode.TTY_OP_ISPEED, Opcode.TTY_OP_OSPEED] == [128, 129]


@pytest.mark.parametrize("payload", REAL_PAYLOADS)
@pytest.mark.parametrize("policy", POLICIES)
def test_real_openssh_payloads_round_trip_byte_for_byte(
    payload: bytes, policy: ModePolicy
) -> None:
    modes = TerminalModes.decode(payload, policy)
    assert modes.encode() == payload
    assert modes.raw == payload
    assert modes.applicable
    assert len(modes) == 52
    # OpenSSH's own order is the order encode() uses for a built value.
    rebuilt = TerminalModes(dict(modes))
    assert rebuilt.raw is None
    assert rebuilt.encode() == payload
    assert rebuilt == modes
    assert list(rebuilt.items()) == list(modes.items())


def test_real_openssh_payload_values() -> None:
    default = TerminalModes.decode(OPENSSH_DEFAULT)
    changed = TerminalModes.decode(OPENSSH_CHANGED)
    assert default[Opcode.VINTR] == 3
    assert changed[Opcode.VINTR] == 0x18  # ^X
    assert (default[Opcode.VSUSP], changed[Opcode.VSUSP]) == (0x1A, 255)
    assert (default[Opcode.ICANON], changed[Opcode.ICANON]) == (1, 0)
    assert (default[Opcode.IUTF8], changed[Opcode.IUTF8]) == (0, 1)
    assert changed[Opcode.TTY_OP_ISPEED] == changed[Opcode.TTY_OP_OSPEED] == 9600
    # OpenSSH tests CS7 as a bit, so an 8-bit terminal reports both.
    assert default[Opcode.CS7] == default[Opcode.CS8] == 1
    assert Opcode.VSWTCH not in default


@given(mode_maps)
def test_encode_then_decode_gives_the_same_modes(mapping: dict[int, int]) -> None:
    modes = TerminalModes(mapping)
    wire = modes.encode()
    assert len(wire) == 5 * len(mapping) + 1
    for policy in POLICIES if set(mapping) <= set(Opcode) else [ModePolicy.OPENSSH]:
        decoded = TerminalModes.decode(wire, policy)
        assert decoded == modes == mapping
        assert list(decoded.items()) == list(modes.items())
        assert decoded.encode() == wire
        assert hash(decoded) == hash(modes)


@given(
    st.dictionaries(
        st.sampled_from([op for op in Opcode if op != Opcode.TTY_OP_END]),
        st.integers(min_value=0, max_value=2**32 - 1),
    )
)
def test_defined_opcodes_round_trip_under_the_strict_policy(mapping: dict[Opcode, int]) -> None:
    wire = TerminalModes(mapping).encode()
    assert TerminalModes.decode(wire, ModePolicy.STRICT) == mapping


@given(st.binary(max_size=400), st.sampled_from(POLICIES))
def test_any_bytes_give_modes_or_a_protocol_error(data: bytes, policy: ModePolicy) -> None:
    failure: ProtocolError | None = None
    try:
        modes = TerminalModes.decode(data, policy)
    except ProtocolError as error:
        failure = error
    if failure is not None:
        assert failure.field == "modes"
        assert failure.offset is not None
        assert 0 <= failure.offset <= len(data)
        return
    assert modes.encode() == data
    assert all(0 < opcode < 160 for opcode in modes)
    again = TerminalModes.decode(TerminalModes(modes).encode(), ModePolicy.OPENSSH)
    assert again == modes


@given(mode_maps, st.binary(max_size=20))
def test_pairs_with_junk_after_them_never_fail_otherwise(
    mapping: dict[int, int], junk: bytes
) -> None:
    wire = TerminalModes(mapping).encode()[:-1] + junk
    with contextlib.suppress(ProtocolError):
        TerminalModes.decode(wire).encode()


# --- OpenSSH's rules (ttymodes.c, tty_parse_modes) --------------------------------


def test_unknown_opcodes_below_160_are_kept() -> None:
    wire = pair(20, 7) + pair(159, 2**32 - 1) + pair(Opcode.ECHO, 1) + END
    modes = TerminalModes.decode(wire)
    assert dict(modes) == {20: 7, 159: 2**32 - 1, Opcode.ECHO: 1}
    assert list(modes) == [20, 159, 53]  # wire order
    assert modes.applicable


@pytest.mark.parametrize("stop", [160, 200, 255])
def test_an_opcode_of_160_or_more_stops_the_parse(stop: int) -> None:
    wire = pair(Opcode.ECHO, 0) + bytes([stop]) + pair(Opcode.ICANON, 1) + END
    modes = TerminalModes.decode(wire)
    assert dict(modes) == {Opcode.ECHO: 0}
    assert not modes.applicable  # OpenSSH: "bytes left", applies nothing
    assert modes.encode() == wire


def test_a_stop_opcode_as_the_last_byte_leaves_the_modes_applicable() -> None:
    # OpenSSH checks only that nothing is left after the byte that stopped it.
    modes = TerminalModes.decode(pair(Opcode.ECHO, 0) + b"\xa0")
    assert dict(modes) == {Opcode.ECHO: 0}
    assert modes.applicable


def test_a_missing_end_is_accepted() -> None:
    wire = pair(Opcode.VINTR, 3) + pair(Opcode.ECHO, 1)
    modes = TerminalModes.decode(wire)
    assert dict(modes) == {Opcode.VINTR: 3, Opcode.ECHO: 1}
    assert modes.applicable
    assert modes.encode() == wire
    assert TerminalModes(modes).encode() == wire + END


def test_bytes_after_end_are_kept_in_raw_but_make_the_modes_inapplicable() -> None:
    wire = pair(Opcode.VINTR, 3) + END + pair(Opcode.ECHO, 1) + END
    modes = TerminalModes.decode(wire)
    assert dict(modes) == {Opcode.VINTR: 3}
    assert not modes.applicable
    assert modes.encode() == wire


def test_a_repeated_opcode_takes_the_last_value_in_the_first_place() -> None:
    wire = pair(Opcode.ECHO, 1) + pair(Opcode.VINTR, 3) + pair(Opcode.ECHO, 0) + END
    modes = TerminalModes.decode(wire)
    assert list(modes.items()) == [(Opcode.ECHO, 0), (Opcode.VINTR, 3)]
    assert modes.encode() == wire


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(
    ("wire", "offset"),
    [
        (b"\x01", 1),
        (b"\x01\x00\x00\x00", 1),
        (pair(Opcode.ECHO, 1) + b"\x33\x00", 6),
        (pair(Opcode.ECHO, 1) + b"\x33\x00\x00" + END, 6),
    ],
)
def test_a_truncated_argument_is_a_protocol_error(
    wire: bytes, offset: int, policy: ModePolicy
) -> None:
    with pytest.raises(ProtocolError, match="truncated") as caught:
        TerminalModes.decode(wire, policy)
    assert caught.value.field == "modes"
    assert caught.value.offset == offset


@pytest.mark.parametrize("policy", POLICIES)
def test_empty_and_end_only(policy: ModePolicy) -> None:
    only_end = TerminalModes.decode(END, policy)
    assert (dict(only_end), only_end.applicable, only_end.encode()) == ({}, True, END)
    assert only_end == TerminalModes()
    empty = TerminalModes.decode(b"", policy)  # what Paramiko sends
    assert (dict(empty), empty.applicable, empty.encode()) == ({}, True, b"")


def test_other_bytes_like_inputs_are_accepted() -> None:
    for data in (bytearray(OPENSSH_DEFAULT), memoryview(OPENSSH_DEFAULT)):
        modes = TerminalModes.decode(data)  # type: ignore[arg-type]
        assert type(modes.raw) is bytes
        assert modes.encode() == OPENSSH_DEFAULT


def test_a_long_stream_holds_at_most_one_item_per_opcode() -> None:
    wire = b"".join(pair(op, n) for n in range(200) for op in (1, 53, 159)) + END
    modes = TerminalModes.decode(wire)
    assert dict(modes) == {1: 199, 53: 199, 159: 199}


# --- the strict policy --------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "message", "offset"),
    [
        (pair(Opcode.ECHO, 1) + pair(20, 1) + END, "unknown opcode 20", 5),
        (pair(Opcode.ECHO, 1) + b"\xa0", "undefined opcode 160", 5),
        (pair(Opcode.ECHO, 1), "no TTY_OP_END", 5),
        (pair(Opcode.ECHO, 1) + END + END, "1 bytes after TTY_OP_END", 6),
        (pair(Opcode.ECHO, 1) + pair(Opcode.ECHO, 0) + END, "opcode 53 repeated", 5),
    ],
)
def test_strict_raises_on_anything_irregular(wire: bytes, message: str, offset: int) -> None:
    with pytest.raises(ProtocolError, match=message) as caught:
        TerminalModes.decode(wire, ModePolicy.STRICT)
    assert (caught.value.field, caught.value.offset) == ("modes", offset)
    TerminalModes.decode(wire)  # all of these are fine for OpenSSH


# --- the mapping ------------------------------------------------------------------


def test_built_from_a_mapping_or_pairs_in_openssh_order() -> None:
    modes = TerminalModes([(Opcode.ECHO, 1), (20, 5), (Opcode.TTY_OP_ISPEED, 9600)])
    modes2 = TerminalModes(
        {Opcode.TTY_OP_OSPEED: 9600, Opcode.VINTR: 3, Opcode.ECHO: 0, Opcode.ECHO.value: 1}
    )
    assert list(modes) == [128, 20, 53]
    assert list(modes2) == [129, 1, 53]
    assert modes2[Opcode.ECHO] == 1
    assert all(type(opcode) is int for opcode in modes)
    assert modes.encode() == pair(128, 9600) + pair(20, 5) + pair(53, 1) + END
    assert (modes.raw, modes.applicable) == (None, True)


def openssh_order(opcode: int) -> tuple[int, int]:
    """tty_make_modes (ttymodes.c): OSPEED, ISPEED, then ascending."""
    speeds: list[int] = [Opcode.TTY_OP_OSPEED, Opcode.TTY_OP_ISPEED]
    return (speeds.index(opcode) if opcode in speeds else 2, opcode)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=159), st.integers(min_value=0, max_value=2**32 - 1)
        ),
        max_size=200,
    )
)
def test_pairs_in_any_order_are_built_in_openssh_order(pairs: list[tuple[int, int]]) -> None:
    expected = sorted(dict(pairs).items(), key=lambda item: openssh_order(item[0]))
    modes = TerminalModes(pairs)
    assert list(modes.items()) == expected
    assert modes.encode() == b"".join(pair(*item) for item in expected) + END
    assert modes == TerminalModes(expected) == TerminalModes(reversed(expected))


class Index:
    """An opcode that is not an int but converts to one, as NumPy's integers do."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_an_opcode_given_twice_as_other_objects_keeps_the_last_value() -> None:
    items: dict[Any, int] = {Opcode.ECHO: 1, Index(2): 5, 2: 6, Index(53): 0}
    modes = TerminalModes(items)
    assert list(modes.items()) == [(2, 6), (53, 0)]
    assert modes.encode() == pair(2, 6) + pair(53, 0) + END


@pytest.mark.parametrize(
    "items",
    [{0: 1}, {160: 1}, {"1": 1}, {1: -1}, {1: 2**32}, {1: "3"}, {1: 1.0}, {1: 3, 2: 3, 300: 1}],
)
def test_bad_opcodes_and_values_are_refused_when_built(items: dict[Any, Any]) -> None:
    with pytest.raises(ValueError, match="terminal mode"):
        TerminalModes(items)


def test_mapping_behaviour() -> None:
    modes = TerminalModes.decode(OPENSSH_DEFAULT)
    assert Opcode.VINTR in modes
    assert 100 not in modes
    not_an_opcode: object = "x"
    assert not_an_opcode not in modes
    assert modes.get(100) is None
    with pytest.raises(KeyError):
        modes[100]
    assert len(modes) == len(list(modes.keys())) == len(list(modes.values())) == 52
    assert next(iter(modes)) == Opcode.TTY_OP_OSPEED
    with pytest.raises(TypeError):
        modes[1] = 2  # type: ignore[index]


def test_equality_and_hash_are_by_items_not_order_or_raw() -> None:
    echo, intr = pair(Opcode.ECHO, 1), pair(Opcode.VINTR, 3)
    one = TerminalModes.decode(echo + intr + END)
    other_order = TerminalModes.decode(intr + echo + END)
    no_end = TerminalModes.decode(echo + intr)
    trailing = TerminalModes.decode(echo + intr + END + b"junk")
    built = TerminalModes({Opcode.ECHO: 1, Opcode.VINTR: 3})
    for modes in (other_order, no_end, trailing, built, TerminalModes.decode(echo + intr + END)):
        assert modes == one
        assert hash(modes) == hash(one)
    assert one == {Opcode.VINTR: 3, Opcode.ECHO: 1}
    assert one != {Opcode.VINTR: 3}
    assert one != TerminalModes({Opcode.ECHO: 1})
    assert one != [(53, 1), (1, 3)]
    assert len({one, other_order, built}) == 1


def test_repr_names_the_opcodes_and_evaluates_back() -> None:
    modes = TerminalModes({Opcode.VINTR: 3, 20: 7})
    assert repr(modes) == "TerminalModes({Opcode.VINTR: 3, 20: 7})"
    assert eval(repr(modes), {"TerminalModes": TerminalModes, "Opcode": Opcode}) == modes


# --- termios conversion: pure --------------------------------------------------------

T = termios


def base_attrs() -> list[Any]:
    """A termios list as Linux gives it for a fresh PTY, with an 8-bit size."""
    cc: list[Any] = [bytes([c]) for c in b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a"]
    cc += [b"\x00"] * (T.NCCS - len(cc))
    flags = [T.ICRNL | T.IXON, T.OPOST | T.ONLCR, T.CS8 | T.CREAD, T.ICANON | T.ECHO]
    return [*flags, T.B38400, T.B38400, cc]


def test_from_termios_encodes_as_openssh_does() -> None:
    attrs = base_attrs()
    attrs[6][T.VSUSP] = b"\x00"  # _POSIX_VDISABLE on Linux
    modes = TerminalModes.from_termios(attrs)
    assert list(modes)[:3] == [Opcode.TTY_OP_OSPEED, Opcode.TTY_OP_ISPEED, Opcode.VINTR]
    assert modes[Opcode.TTY_OP_OSPEED] == modes[Opcode.TTY_OP_ISPEED] == 38400
    assert (modes[Opcode.VINTR], modes[Opcode.VSUSP]) == (3, 255)
    assert (modes[Opcode.ICRNL], modes[Opcode.ICANON], modes[Opcode.ECHO]) == (1, 1, 1)
    assert (modes[Opcode.IXOFF], modes[Opcode.ISIG], modes[Opcode.OCRNL]) == (0, 0, 0)
    assert (modes[Opcode.CS7], modes[Opcode.CS8], modes[Opcode.PARENB]) == (0, 1, 0)
    assert modes[Opcode.IUTF8] == 0
    # Linux has no VSTATUS, VDSUSP or VFLUSH: like OpenSSH's #ifdefs, skipped.
    assert {Opcode.VSTATUS, Opcode.VDSUSP, Opcode.VFLUSH}.isdisjoint(modes)
    assert TerminalModes.decode(modes.encode(), ModePolicy.STRICT) == modes


def test_from_termios_takes_int_cc_entries_and_unknown_speeds() -> None:
    attrs = base_attrs()
    attrs[6][T.VEOF] = 4  # Python gives ints where VMIN shares a slot with VEOF
    attrs[4] = attrs[5] = 0o7777777  # no such speed constant
    attrs[2] = attrs[2] & ~T.CSIZE | T.CS7
    modes = TerminalModes.from_termios(attrs)
    assert modes[Opcode.VEOF] == 4
    assert modes[Opcode.TTY_OP_ISPEED] == modes[Opcode.TTY_OP_OSPEED] == 9600
    assert (modes[Opcode.CS7], modes[Opcode.CS8]) == (1, 0)


def test_to_termios_applies_characters_flags_and_speeds() -> None:
    base = base_attrs()
    base[6][T.VMIN] = 1  # an int entry stays an int
    modes = TerminalModes(
        {
            Opcode.TTY_OP_ISPEED: 9600,
            Opcode.TTY_OP_OSPEED: 12345,  # unknown: 9600, as OpenSSH
            Opcode.VINTR: 0x18,
            Opcode.VSUSP: 255,  # disabled
            Opcode.VQUIT: 0x11C,  # not a byte: the low 8 bits, as a C cc_t
            Opcode.VSTATUS: 20,  # not on Linux: skipped
            Opcode.ICRNL: 0,
            Opcode.IXOFF: 7,  # any non-zero value sets a flag
            Opcode.IUTF8: 1,
            Opcode.ECHO: 0,
            Opcode.ONLCR: 0,
            Opcode.PARENB: 1,
            99: 1,  # unknown: ignored
        }
    )
    attrs = modes.to_termios(base)
    assert attrs is not base
    assert attrs[6] is not base[6]
    assert base[0] == T.ICRNL | T.IXON  # the base is untouched
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    assert (ispeed, ospeed) == (T.B9600, T.B9600)
    assert (cc[T.VINTR], cc[T.VSUSP], cc[T.VQUIT], cc[T.VMIN]) == (b"\x18", b"\x00", b"\x1c", 1)
    assert cc[T.VERASE] == b"\x7f"
    assert iflag == T.IXON | T.IXOFF | 0o40000  # Linux's IUTF8
    assert oflag == T.OPOST
    assert cflag == T.CS8 | T.CREAD | T.PARENB
    assert lflag == T.ICANON
    # Absent speeds keep the base's, and an int cc entry can be set too.
    base[6][T.VINTR] = 3
    attrs = TerminalModes({Opcode.VINTR: 0x18}).to_termios(base)
    assert (attrs[4], attrs[5], attrs[6][T.VINTR]) == (T.B38400, T.B38400, 0x18)


@pytest.mark.parametrize(
    ("size", "cs7", "cs8", "expected"),
    [
        (T.CS8, 1, 1, T.CS8),  # what OpenSSH clients send for 8 bits
        (T.CS7, None, 1, T.CS8),
        (T.CS8, 1, 0, T.CS7),
        (T.CS8, 0, 1, T.CS8),
        (T.CS8, 0, None, T.CS8),  # "not 7 bits" leaves 8 bits alone
        (T.CS8, None, 0, T.CS5),  # as OpenSSH, which clears the CS8 bits
        (T.CS7, 0, None, T.CS5),
        (T.CS7, None, 0, T.CS7),
        (T.CS6, 0, 0, T.CS6),
        (T.CS6, None, None, T.CS6),
    ],
)
def test_to_termios_treats_cs7_and_cs8_as_character_sizes(
    size: int, cs7: int | None, cs8: int | None, expected: int
) -> None:
    base = base_attrs()
    base[2] = base[2] & ~T.CSIZE | size
    items = {op: value for op, value in ((90, cs7), (91, cs8)) if value is not None}
    cflag = TerminalModes(items).to_termios(base)[2]
    assert cflag & T.CSIZE == expected
    assert cflag & ~T.CSIZE == T.CREAD


# --- termios conversion on real PTYs ----------------------------------------------


@contextlib.contextmanager
def pty(*stty: str) -> Iterator[int]:
    """A fresh PTY, set up by the real `stty`; yields the slave's descriptor."""
    master, slave = os.openpty()
    try:
        if stty:
            subprocess.run(["stty", *stty], stdin=slave, check=True, timeout=10)
        yield slave
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (["-icanon"], []),
        (["-echo"], []),
        (["intr", "^X"], []),
        (["iutf8"], []),
        (["-iutf8"], ["iutf8"]),  # off is the default, so start the target on
        (["ixoff"], []),
        (["9600"], []),
        (["susp", "undef"], []),
        (["-icanon", "eof", "^B", "eol", "^A"], ["1200"]),  # VMIN/VTIME do not travel
        (["-isig", "-opost", "-ixon", "erase", "^H", "werase", "undef"], ["raw"]),
    ],
)
def test_modes_survive_a_trip_between_real_ptys(source: list[str], target: list[str]) -> None:
    with pty(*source) as client, pty(*target) as server:
        original = termios.tcgetattr(client)
        before = termios.tcgetattr(server)
        assert before != original  # the trip has something to change
        wire = TerminalModes.from_termios(original).encode()
        decoded = TerminalModes.decode(wire, ModePolicy.STRICT)
        termios.tcsetattr(server, termios.TCSANOW, decoded.to_termios(before))
        assert termios.tcgetattr(server) == original


def test_describe_a_real_openssh_client() -> None:
    assert TerminalModes.decode(OPENSSH_DEFAULT).describe() == (
        "speed 38400 baud;\n"
        "intr = ^C; quit = ^\\; erase = ^?; kill = ^U; eof = ^D; eol = <undef>; "
        "eol2 = <undef>; start = ^Q; stop = ^S; susp = ^Z; rprnt = ^R; werase = ^W; "
        "lnext = ^V; discard = ^O;\n"
        "cs8 -parenb -parodd\n"
        "-ignpar -parmrk -inpck -istrip -inlcr -igncr icrnl -iuclc ixon -ixany -ixoff "
        "-imaxbel -iutf8\n"
        "opost -olcuc onlcr -ocrnl -onocr -onlret\n"
        "isig icanon -xcase echo echoe echok -echonl -noflsh -tostop iexten echoctl "
        "echoke -pendin"
    )


def test_describe_the_unusual() -> None:
    assert TerminalModes().describe() == "(no terminal modes)"
    modes = TerminalModes(
        {
            Opcode.TTY_OP_ISPEED: 9600,
            Opcode.VINTR: 0x83,
            Opcode.VQUIT: 300,
            Opcode.VERASE: 0xFE,
            Opcode.VKILL: ord("k"),
            Opcode.CS7: 1,
            20: 3,
        }
    )
    assert modes.describe() == (
        "ispeed 9600 baud;\nintr = M-^C; quit = <300>; erase = M-~; kill = k;\ncs7\nopcode 20 = 3;"
    )
    assert TerminalModes({Opcode.TTY_OP_OSPEED: 300, Opcode.VINTR: 0xFF - 0x80}).describe() == (
        "ospeed 300 baud;\nintr = ^?;"
    )
    assert TerminalModes({Opcode.VINTR: 0xA0}).describe() == "intr = M- ;"
    assert TerminalModes({Opcode.CS7: 0, Opcode.CS8: 0}).describe() == "-cs7 -cs8"
    ignored = TerminalModes.decode(pair(Opcode.ECHO, 0) + END + END)
    assert ignored.describe() == (
        "-echo\n(OpenSSH would not apply these: bytes follow the end of the modes)"
    )


# --- the example in docs/modes.rst, included from here ---------------------------


# example-start
def apply_client_modes(pty_fd: int, request_modes: TerminalModes) -> None:
    """Give a PTY the terminal modes a client sent, as OpenSSH's sshd does."""
    if not request_modes.applicable:
        return  # sshd still grants the PTY, but leaves its settings alone
    attrs = termios.tcgetattr(pty_fd)
    termios.tcsetattr(pty_fd, termios.TCSANOW, request_modes.to_termios(attrs))
    # example-end


def test_the_docs_example_applies_a_real_clients_modes() -> None:
    with pty("-icanon", "intr", "^X", "iutf8", "9600", "susp", "undef") as client:
        expected = termios.tcgetattr(client)
    with pty() as server:
        apply_client_modes(server, TerminalModes.decode(OPENSSH_CHANGED))
        assert termios.tcgetattr(server) == expected
    with pty() as server:
        before = termios.tcgetattr(server)
        apply_client_modes(server, TerminalModes.decode(OPENSSH_CHANGED + b"junk"))
        assert termios.tcgetattr(server) == before


# --- the real OpenSSH client, live --------------------------------------------------


@pytest.mark.network
@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_real_openssh_client_modes_apply_to_a_pty() -> None:
    import paramiko
    import paramiko.common
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    host_key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    captured: list[bytes] = []
    shell = threading.Event()

    class Server(paramiko.ServerInterface):
        def get_allowed_auths(self, username: str) -> str:
            return "none"

        def check_auth_none(self, username: str) -> int:
            return paramiko.common.AUTH_SUCCESSFUL

        def check_channel_request(self, kind: str, chanid: int) -> int:
            return paramiko.common.OPEN_SUCCEEDED

        def check_channel_pty_request(self, *args: Any) -> bool:
            captured.append(args[-1])  # the modes, as raw bytes
            return True

        def check_channel_shell_request(self, channel: Any) -> bool:
            shell.set()
            return True

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def serve() -> None:
        with contextlib.suppress(OSError, paramiko.SSHException):
            conn, _ = listener.accept()
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transport.start_server(server=Server())
            channel = transport.accept(20)
            shell.wait(20)
            if channel is not None:
                channel.send_exit_status(0)
                channel.close()
            transport.join(20)  # until the client hangs up: closing first races it
            transport.close()

    server = threading.Thread(target=serve)
    server.start()
    port = listener.getsockname()[1]
    with pty("-icanon", "intr", "^X", "iutf8", "9600", "susp", "undef") as client:
        original = termios.tcgetattr(client)
        ssh = subprocess.run(
            [
                *("ssh", "-tt", "-p", str(port), "-F", "/dev/null"),
                *("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"),
                *("-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "x@127.0.0.1"),
            ],
            stdin=client,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=30,
            check=False,
        )
    server.join(30)
    listener.close()
    assert ssh.returncode == 0, ssh.stderr
    [wire] = captured
    modes = TerminalModes.decode(wire, ModePolicy.STRICT)
    assert modes.encode() == wire
    with pty() as fresh:
        termios.tcsetattr(fresh, termios.TCSANOW, modes.to_termios(termios.tcgetattr(fresh)))
        assert termios.tcgetattr(fresh) == original
    # What we would send differs from OpenSSH only where it is deliberate:
    # VSWTCH, which Python's termios offers on Linux, and CS7 as a size.
    ours = dict(TerminalModes.from_termios(original))
    del ours[Opcode.VSWTCH]
    ours[Opcode.CS7] = 1
    assert ours == modes


def test_values_of_other_int_types_are_checked_one_by_one_and_kept_as_ints() -> None:
    modes = TerminalModes({Opcode.ECHO: True, Opcode.ICANON: False})
    assert modes == {53: 1, 51: 0}
    assert all(type(value) is int for value in modes.values())
