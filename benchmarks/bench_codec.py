"""Parse and encode a real OpenSSH pty-req with ptycore, Twisted Conch and AsyncSSH.

Run ``python3 benchmarks/bench_codec.py``. The payload is the 299-byte pty-req
(TERM xterm-256color, 52 terminal modes) that OpenSSH 9.2p1 sent from a tmux pane,
taken from tests/fixtures/clients/. Every figure is the best of several timeit
repeats, in microseconds per operation; the ratios are how many times faster
ptycore is. What each peer's figure covers is written next to its code below and in
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import struct
import sys
import timeit
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncssh.channel
import asyncssh.logging
import asyncssh.packet
from twisted.conch.ssh import session as _conch_session

import ptycore

conch_session: Any = _conch_session
"""Conch's session module, whose functions are unannotated."""

FIXTURE = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "fixtures"
    / "clients"
    / "openssh-shell-xterm-256color.json"
)


def load_payload(path: Path) -> tuple[bytes, str]:
    """The first request of the fixture (pty-req) and the client that sent it."""
    document = json.loads(path.read_text())
    request = document["requests"][0]
    if request["type"] != "pty-req":
        raise SystemExit(f"{path}: the first request is {request['type']}, not pty-req")
    return bytes.fromhex(request["payload_hex"]), str(document["client"])


# --------------------------------------------------------------------------- ptycore


def ptycore_parse(payload: bytes) -> Callable[[], object]:
    parse = ptycore.parse_request
    return lambda: parse("pty-req", payload)


def ptycore_build(request: ptycore.PtyRequest) -> Callable[[], ptycore.PtyRequest]:
    """A PtyRequest built from plain values (term, four numbers, an opcode dict), as
    a client builds one from its own terminal. TerminalModes encodes the modes as it
    checks and sorts them, so only build + encode times all of the encoding."""
    term, size, modes = request.term, request.size, dict(request.modes)
    pty_request, window_size, terminal_modes = (
        ptycore.PtyRequest,
        ptycore.WindowSize,
        ptycore.TerminalModes,
    )

    def run() -> ptycore.PtyRequest:
        return pty_request(
            term=term,
            size=window_size(
                cols=size.cols, rows=size.rows, width_px=size.width_px, height_px=size.height_px
            ),
            modes=terminal_modes(modes),
        )

    return run


def ptycore_build_encode(request: ptycore.PtyRequest) -> Callable[[], bytes]:
    """Build from values, then encode: the whole of a client's work, and what the
    other encoders start from too (Conch's parse result, AsyncSSH's mode dict)."""
    build = ptycore_build(request)
    return lambda: build().encode()


# --------------------------------------------------------------------------- Conch


def conch_parse(payload: bytes) -> Callable[[], object]:
    """``twisted.conch.ssh.session.parseRequest_pty_req``: the whole of Conch's parse
    (it checks no lengths and returns the size as (rows, cols, ...))."""
    parse = conch_session.parseRequest_pty_req
    return lambda: parse(payload)


def conch_encode(payload: bytes) -> Callable[[], bytes]:
    """``packRequest_pty_req`` wants the modes already packed ("depend on the client
    packing modes"), so they are packed from Conch's own parse result, one
    ``struct.pack('>BL')`` per pair plus TTY_OP_END, then handed over."""
    term, (rows, cols, xpixel, ypixel), modes = conch_session.parseRequest_pty_req(payload)
    pack_request, pack = conch_session.packRequest_pty_req, struct.pack

    def run() -> bytes:
        packed = b"".join([pack(">BL", opcode, value) for opcode, value in modes]) + b"\x00"
        result: bytes = pack_request(term, (rows, cols, xpixel, ypixel), packed)
        return result

    return run


# --------------------------------------------------------------------------- AsyncSSH


class _NoRestrictions:
    """The connection's answers for a key or certificate without restrictions."""

    def check_key_permission(self, permission: str) -> bool:
        return True

    def check_certificate_permission(self, permission: str) -> bool:
        return True


class _GrantingSession:
    """An application session that grants the PTY (AsyncSSH's default refuses)."""

    def pty_requested(
        self, term_type: str, term_size: tuple[int, int, int, int], term_modes: dict[int, int]
    ) -> bool:
        return True


def asyncssh_channel() -> Any:
    """An ``SSHServerChannel`` with just what ``_process_pty_req_request`` reads.

    Building a real one needs a live connection; the method only looks at these
    attributes (asyncssh/channel.py ``SSHServerChannel._process_pty_req_request``).
    """
    channel: Any = object.__new__(asyncssh.channel.SSHServerChannel)
    channel._allow_pty = True
    channel._line_editor = False
    channel._conn = _NoRestrictions()
    channel._session = _GrantingSession()
    channel._logger = asyncssh.logging.logger.get_child(context="chan=0")
    channel._term_type = None
    return channel


def asyncssh_parse(payload: bytes) -> Callable[[], object]:
    """AsyncSSH's server-side handler, run for real on an ``SSHPacket`` of the
    payload: field reads, ``check_end``, ASCII decode, the modes loop with its
    (disabled) debug logging, the permission checks and the session callback.
    ``_term_type`` is reset each time so the "PTY already requested" check passes."""
    channel = asyncssh_channel()
    handler = asyncssh.channel.SSHServerChannel._process_pty_req_request
    packet_class = asyncssh.packet.SSHPacket

    def run() -> object:
        channel._term_type = None
        return handler(channel, packet_class(payload))

    return run


def asyncssh_parse_fields(payload: bytes) -> Callable[[], object]:
    """The lower bound of AsyncSSH's parse: only the ``SSHPacket`` reads, the ASCII
    decode and the modes loop of ``_process_pty_req_request``, without its logging,
    permission checks and session callback (same calls, same order)."""
    packet_class = asyncssh.packet.SSHPacket
    op_end, op_reserved = asyncssh.PTY_OP_END, asyncssh.PTY_OP_RESERVED

    def run() -> object:
        packet = packet_class(payload)
        term_type = packet.get_string().decode("ascii")
        width = packet.get_uint32()
        height = packet.get_uint32()
        pixwidth = packet.get_uint32()
        pixheight = packet.get_uint32()
        modes = packet.get_string()
        packet.check_end()
        term_modes = {}
        idx = 0
        while idx < len(modes):
            mode = modes[idx]
            idx += 1
            if mode == op_end or mode >= op_reserved:
                break
            if idx + 4 <= len(modes):
                term_modes[mode] = int.from_bytes(modes[idx : idx + 4], "big")
                idx += 4
            else:
                raise ValueError("Invalid pty modes string")
        return term_type, (width, height, pixwidth, pixheight), term_modes

    return run


def asyncssh_encode(request: ptycore.PtyRequest) -> Callable[[], bytes]:
    """AsyncSSH builds pty-req inline in ``SSHClientChannel.create`` (a coroutine
    that needs a connection); this is the same call sequence with the same
    functions: the two debug1 lines, the modes loop (range check, name lookup,
    debug2, ``Byte + UInt32``), ``Byte(PTY_OP_END)``, the ``String``/``UInt32``
    arguments of ``_make_request`` and the ``b''.join`` of ``send_packet``."""
    channel = asyncssh_channel()
    names: Mapping[int, str] = asyncssh.channel._pty_mode_names
    byte, uint32, string = asyncssh.packet.Byte, asyncssh.packet.UInt32, asyncssh.packet.String
    op_end, op_reserved = asyncssh.PTY_OP_END, asyncssh.PTY_OP_RESERVED
    term_type = request.term
    term_size = (
        request.size.cols,
        request.size.rows,
        request.size.width_px,
        request.size.height_px,
    )
    term_modes = dict(request.modes)

    def run() -> bytes:
        logger = channel.logger
        logger.debug1("  Terminal type: %s", term_type or "None")
        width, height, pixwidth, pixheight = term_size
        logger.debug1("  Terminal size: %sx%s (%sx%s pixels)", width, height, pixwidth, pixheight)
        modes = b""
        for mode, mode_value in term_modes.items():
            if mode <= op_end or mode >= op_reserved:
                raise ValueError(f"Invalid pty mode: {mode}")
            name = names.get(mode, str(mode))
            logger.debug2("  Mode %s: %d", name, mode_value)
            modes += byte(mode) + uint32(mode_value)
        modes += byte(op_end)
        args = (
            string(term_type or ""),
            uint32(width),
            uint32(height),
            uint32(pixwidth),
            uint32(pixheight),
            string(modes),
        )
        return b"".join(args)

    return run


# --------------------------------------------------------------------------- timing


def best_us(function: Callable[[], object], repeat: int) -> float:
    """Best of ``repeat`` timeit runs (each about 0.2 s or more), in us per call."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def check(payload: bytes, request: ptycore.PtyRequest) -> None:
    """Every contestant must really parse and really give back the same bytes."""
    encoders = {
        "ptycore (built from values)": ptycore_build_encode(request),
        "ptycore (parsed object)": request.encode,
        "Twisted Conch": conch_encode(payload),
        "AsyncSSH": asyncssh_encode(request),
    }
    for name, encode in encoders.items():
        if encode() != payload:
            raise SystemExit(f"{name} did not encode the payload byte for byte")
    term, _, modes = conch_session.parseRequest_pty_req(payload)
    if (term, len(modes)) != (request.term.encode(), len(request.modes)):
        raise SystemExit("Twisted Conch parsed something else")
    fields: Any = asyncssh_parse_fields(payload)()
    if fields[2] != dict(request.modes):
        raise SystemExit("the AsyncSSH parse sequence parsed something else")
    channel = asyncssh_channel()
    asyncssh.channel.SSHServerChannel._process_pty_req_request(
        channel, asyncssh.packet.SSHPacket(payload)
    )
    if channel._term_modes != dict(request.modes):
        raise SystemExit("AsyncSSH parsed something else")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pty-req codec benchmark")
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats (best is kept)")
    parser.add_argument("--fixture", type=Path, default=FIXTURE, help="fixture JSON file")
    options = parser.parse_args(argv)

    payload, client = load_payload(options.fixture)
    request = ptycore.parse_request("pty-req", payload)
    if not isinstance(request, ptycore.PtyRequest):
        raise SystemExit("ptycore did not give a PtyRequest")
    check(payload, request)

    repeat = options.repeat
    parse = {
        "ptycore": best_us(ptycore_parse(payload), repeat),
        "conch": best_us(conch_parse(payload), repeat),
        "asyncssh": best_us(asyncssh_parse(payload), repeat),
    }
    encode = {
        "ptycore": best_us(ptycore_build_encode(request), repeat),
        "conch": best_us(conch_encode(payload), repeat),
        "asyncssh": best_us(asyncssh_encode(request), repeat),
    }
    asyncssh_fields = best_us(asyncssh_parse_fields(payload), repeat)
    cached = best_us(request.encode, repeat)

    print(
        f"pty-req payload: {len(payload)} bytes, TERM {request.term}, "
        f"{len(request.modes)} modes, sent by {client}"
    )
    print(
        f"Python {platform.python_version()}, ptycore {version('ptycore')}, "
        f"Twisted {version('twisted')}, AsyncSSH {version('asyncssh')}; "
        f"best of {repeat} repeats, microseconds per operation"
    )
    print()
    header = ("", "ptycore", "Conch", "AsyncSSH", "vs Conch", "vs AsyncSSH")
    print("{:<8} {:>9} {:>9} {:>9} {:>9} {:>12}".format(*header))
    for name, row in (("parse", parse), ("encode", encode)):
        print(
            f"{name:<8} {row['ptycore']:>9.2f} {row['conch']:>9.2f} {row['asyncssh']:>9.2f} "
            f"{row['conch'] / row['ptycore']:>8.1f}x {row['asyncssh'] / row['ptycore']:>11.1f}x"
        )
    print()
    print(
        f"AsyncSSH parse without its logging, permission checks and session callback: "
        f"{asyncssh_fields:.2f} us (ptycore {asyncssh_fields / parse['ptycore']:.1f}x faster)"
    )
    print(f"ptycore encode() of the parsed object (its kept bytes): {cached:.2f} us")
    print(
        "goals (issue 2): parse >= 2x Conch and >= 3x AsyncSSH; encode >= 5x AsyncSSH: "
        + ", ".join(
            [
                f"parse vs Conch {'met' if parse['conch'] >= 2 * parse['ptycore'] else 'NOT met'}",
                f"parse vs AsyncSSH "
                f"{'met' if parse['asyncssh'] >= 3 * parse['ptycore'] else 'NOT met'}",
                f"encode vs AsyncSSH "
                f"{'met' if encode['asyncssh'] >= 5 * encode['ptycore'] else 'NOT met'}",
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
