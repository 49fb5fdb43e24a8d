"""The built-in applications of ``ptycore serve``: ``info`` and ``echo``.

``info`` is the Twisted Conch tutorial's program done right: the terminal name and
the size with columns first, as the wire sends them (RFC 4254 6.2), the modes, and
a new size at every window change.
"""

from __future__ import annotations

from ptycore.requests import ExecRequest, WindowSize
from ptycore_common.info import NO_TERMINAL, QUIT_KEYS, RESIZE_HINT, describe_terminal, size_line

from ._channel import SessionProtocol

__all__ = ["EchoProtocol", "InfoProtocol"]


class InfoProtocol(SessionProtocol):
    """Show the client's terminal: name, size, modes, then every resize.

    On ``shell`` it stays until the user types ``q`` or Ctrl-D; on ``exec`` it
    exits with status 0 at once. Without a PTY it says so and exits with 0.
    """

    def session_started(self) -> None:
        """Print what the client asked for."""
        pty = self.transport.pty
        if pty is None:
            self.transport.write(NO_TERMINAL.encode())
            self.transport.exit(0)
            return
        self.transport.write(describe_terminal(pty).encode("utf-8", "surrogateescape"))
        if isinstance(self.transport.program, ExecRequest):
            self.transport.exit(0)
            return
        self.transport.write(RESIZE_HINT.encode())

    def window_changed(self, size: WindowSize) -> None:
        """Print the new size."""
        self.transport.write(size_line(size).encode())

    def data_received(self, data: bytes) -> None:
        """``q`` or Ctrl-D ends the session with status 0."""
        if any(key in data for key in QUIT_KEYS):
            self.transport.exit(0)

    def eof_received(self) -> None:
        """The client closed its input: nothing can type ``q`` any more."""
        self.transport.exit(0)


class EchoProtocol(SessionProtocol):
    """Send back every byte received; exit with status 0 at the client's EOF.

    The session's input is registered as the producer of its own output, so a
    client that sends faster than it reads stops getting window: backpressure
    end to end, with bounded buffers.
    """

    def session_started(self) -> None:
        """Tie input to output."""
        self.transport.registerProducer(self.transport, True)

    def data_received(self, data: bytes) -> None:
        """Echo."""
        self.transport.write(data)

    def eof_received(self) -> None:
        """The client is done."""
        self.transport.exit(0)
