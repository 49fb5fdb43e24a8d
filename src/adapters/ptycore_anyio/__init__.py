"""ptycore on anyio: one SSH server for asyncio and trio, over ptycore's own transport.

An application is a coroutine function that gets a :class:`Session`::

    import anyio
    from ptycore_anyio import Data, EOF, Session, WindowChange

    async def app(session: Session) -> None:
        pty = session.pty
        await session.write(b"no terminal\\n" if pty is None else
                            f"{pty.size.cols}x{pty.size.rows}\\r\\n".encode())
        async for event in session:
            if isinstance(event, WindowChange):
                await session.write(f"{event.size.cols}x{event.size.rows}\\r\\n".encode())
            elif isinstance(event, Data | EOF):
                break
        await session.exit(0)
"""

from ._apps import echo, info
from ._auth import FileAuthenticator
from ._channels import Application
from ._server import ServerLimits, serve
from ._session import (
    EOF,
    Break,
    Data,
    InputEvent,
    Session,
    Signal,
    WindowChange,
)
from ._shell import Shell, shell

__all__ = [
    "EOF",
    "Application",
    "Break",
    "Data",
    "FileAuthenticator",
    "InputEvent",
    "ServerLimits",
    "Session",
    "Shell",
    "Signal",
    "WindowChange",
    "echo",
    "info",
    "serve",
    "shell",
]
