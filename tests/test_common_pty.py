"""configure_pty: a new PTY gets the client's size, and its modes only where OpenSSH would."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from collections.abc import Iterator

import pytest

from ptycore import Opcode, PtyRequest, TerminalModes, WindowSize
from ptycore_common.process import configure_pty

ECHO_OFF = bytes([Opcode.ECHO]) + struct.pack(">I", 0) + b"\x00"


@pytest.fixture
def slave() -> Iterator[int]:
    master, slave = os.openpty()
    try:
        yield slave
    finally:
        os.close(master)
        os.close(slave)


def _size(fd: int) -> tuple[int, ...]:
    return struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))


def test_modes_and_size_are_applied(slave: int) -> None:
    assert termios.tcgetattr(slave)[3] & termios.ECHO  # a new PTY echoes
    request = PtyRequest(
        term="xterm", size=WindowSize(cols=132, rows=43), modes=TerminalModes.decode(ECHO_OFF)
    )
    configure_pty(slave, request)
    assert not termios.tcgetattr(slave)[3] & termios.ECHO
    assert _size(slave) == (43, 132, 0, 0)


def test_modes_openssh_would_not_apply_are_left_out(slave: int) -> None:
    modes = TerminalModes.decode(ECHO_OFF + b"junk after the end")
    assert not modes.applicable
    request = PtyRequest(term="xterm", size=WindowSize(cols=90, rows=30), modes=modes)
    configure_pty(slave, request)
    assert termios.tcgetattr(slave)[3] & termios.ECHO  # defaults kept
    assert _size(slave) == (30, 90, 0, 0)  # the PTY is still granted its size
