"""The PTY tutorial on anyio: one server, run on asyncio or on trio.

The application tells the client what terminal it asked for, then prints the new
size at every resize until the user types ``q``. Run it, then log in with
``ssh -t -p 5022 localhost``::

    python3 examples/anyio_terminal.py ~/.ssh/authorized_keys asyncio
    python3 examples/anyio_terminal.py ~/.ssh/authorized_keys trio
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from ptycore_anyio import EOF, Data, FileAuthenticator, Session, WindowChange, serve
from ptycore_common.hostkeys import load_or_create_host_key


# -- the application --
async def show_terminal(session: Session) -> None:
    """Name and size of the client's terminal, then every resize, until ``q``."""
    pty = session.pty
    if pty is None:
        await session.write(b"You did not ask for a terminal.\n")
        await session.exit(0)
        return
    size = pty.size
    await session.write(
        f"Your terminal name is {pty.term!r}.\r\n"
        f"Your terminal is {size.cols} columns wide and {size.rows} rows tall.\r\n".encode()
    )
    async for event in session:  # a resize never interrupts this loop's read
        if isinstance(event, WindowChange):
            await session.write(f"Now {event.size.cols}x{event.size.rows}.\r\n".encode())
        elif isinstance(event, EOF) or (isinstance(event, Data) and b"q" in event.data):
            break
    await session.exit(0)


# -- the server --
async def main(authorized_keys: str) -> None:
    await serve(
        show_terminal,
        host="127.0.0.1",
        port=5022,
        host_keys=[load_or_create_host_key(Path("ssh_host_ed25519_key"))],
        authenticator=FileAuthenticator(authorized_keys=Path(authorized_keys)),
    )  # serves until Ctrl-C


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], backend=sys.argv[2] if len(sys.argv) > 2 else "asyncio")
