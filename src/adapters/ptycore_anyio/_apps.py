"""The built-in applications ``info`` and ``echo`` on anyio.

They print and do exactly what the Twisted adapter's ``InfoProtocol`` and
``EchoProtocol`` do (the text comes from :mod:`ptycore_common.info`).
"""

from __future__ import annotations

from ptycore.requests import ExecRequest
from ptycore_common.info import (
    NO_TERMINAL,
    QUIT_KEYS,
    RESIZE_HINT,
    describe_terminal,
    size_line,
)

from ._session import EOF, Data, Session, WindowChange

__all__ = ["echo", "info"]


async def info(session: Session) -> None:
    """Show the client's terminal: name, size, modes, then every resize.

    On ``shell`` it stays until the user types ``q`` or Ctrl-D (or the client
    sends EOF); on ``exec`` it exits with status 0 at once. Without a PTY it says
    so and exits with 0.
    """
    pty = session.pty
    if pty is None:
        await session.write(NO_TERMINAL.encode())
        await session.exit(0)
        return
    await session.write(describe_terminal(pty).encode("utf-8", "surrogateescape"))
    if isinstance(session.program, ExecRequest):
        await session.exit(0)
        return
    await session.write(RESIZE_HINT.encode())
    async for event in session:
        if isinstance(event, WindowChange):
            await session.write(size_line(event.size).encode())
        elif isinstance(event, EOF) or (
            isinstance(event, Data) and any(key in event.data for key in QUIT_KEYS)
        ):
            await session.exit(0)
            return


async def echo(session: Session) -> None:
    """Send back every byte received; exit with status 0 at the client's EOF.

    Each write waits for the client's window before the next read, so a client
    that sends faster than it reads is slowed down: backpressure end to end.
    """
    async for event in session:
        if isinstance(event, Data):
            await session.write(event.data)
        elif isinstance(event, EOF):
            await session.exit(0)
            return
