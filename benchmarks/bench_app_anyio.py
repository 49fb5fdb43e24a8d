"""The benchmark's session app for ``ptycore serve --adapter anyio --app bench_app_anyio:app``.

It runs the commands of ``bench_commands.py`` in process (no child), as the
AsyncSSH and Conch peers do.
"""

from __future__ import annotations

from bench_commands import CHUNK, READY, parse

from ptycore.requests import ExecRequest
from ptycore_anyio import EOF, Session


async def app(session: Session) -> None:
    """Run one benchmark command; anything else exits with status 127."""
    program = session.program
    command = parse(program.command if isinstance(program, ExecRequest) else None)
    if command is None:
        await session.write_stderr(b"bench_app_anyio: unknown command\n")
        await session.exit(127)
        return
    if command.kind == "zeros":
        chunk = bytes(CHUNK)
        left = command.size
        while left > 0:
            await session.write(chunk if left >= CHUNK else chunk[:left])
            left -= CHUNK
    elif command.kind == "idle":
        await session.write(READY)
    if command.kind in ("discard", "idle"):
        async for event in session:  # Data is dropped; the window reopens as it is taken
            if isinstance(event, EOF):
                break
    await session.exit(0)
