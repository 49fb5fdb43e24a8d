"""The text of the ``info`` application: the Twisted Conch tutorial's output, right.

The terminal name and the size with columns first, as the wire sends them (RFC 4254
6.2), then the modes in ``stty -a`` form. Lines end in CRLF: the client's terminal
is in raw mode and nothing between turns LF into CRLF.
"""

from __future__ import annotations

from typing import Final

from ptycore.requests import PtyRequest, WindowSize

__all__ = ["NO_TERMINAL", "QUIT_KEYS", "RESIZE_HINT", "describe_terminal", "size_line"]

NO_TERMINAL: Final = (
    "No terminal was requested, so there is no terminal name, size or modes to show.\n"
)
"""What ``info`` says to a client that asked for no PTY (``ssh -T``)."""

RESIZE_HINT: Final = "Resize the window to see the new size; type q to quit.\r\n"
"""The line ``info`` adds on ``shell``, where it stays until ``q``."""

QUIT_KEYS: Final = (b"q", b"Q", b"\x04")
"""Keys that end an interactive ``info`` session: q, or Ctrl-D (VEOF's default)."""


def size_line(size: WindowSize) -> str:
    """``Your terminal is 80 columns wide and 24 rows tall.`` with CRLF."""
    return f"Your terminal is {size.cols} columns wide and {size.rows} rows tall.\r\n"


def describe_terminal(pty: PtyRequest) -> str:
    """The terminal name, size and modes, with CRLF line ends."""
    modes = pty.modes.describe().rstrip("\n").replace("\n", "\r\n")
    return f"Your terminal name is {pty.term!r}.\r\n{size_line(pty.size)}{modes}\r\n"
