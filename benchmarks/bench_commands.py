"""The four commands ``bench_server.py`` sends, and how the Python servers read them.

OpenSSH's ``sshd`` runs them through the user's shell; ptycore's adapters, AsyncSSH
and Twisted Conch run them in their own process (``bench_app_anyio.py``,
``bench_app_twisted.py``, ``bench_peer_asyncssh.py``, ``bench_peer_conch.py``), so
a server's CPU time is its SSH work, not a child's. The command line is the same
for every server, and so is what the client sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TRUE = "true"
"""Exit with status 0 at once: the connect-authenticate-exec-close figures."""

DISCARD = "cat > /dev/null"
"""Read standard input to EOF, keep nothing, exit 0: the upload figure."""

IDLE = "echo ready; exec sleep 3600"
"""Print ``ready`` (a PTY turns the newline into CRLF), then wait for EOF: the idle
PTY session of the memory figure."""

READY = b"ready\r\n"
"""What :data:`IDLE` prints on a PTY."""

CHUNK = 256 * 1024
"""Bytes per write when producing output: what ptycore's anyio adapter hands over
per Data event, several SSH packets at once."""

_ZEROS = re.compile(r"head -c (\d+) /dev/zero")


def zeros(size: int) -> str:
    """The command that writes ``size`` zero bytes and exits 0: the download figure."""
    return f"head -c {size} /dev/zero"


@dataclass(frozen=True, kw_only=True, slots=True)
class Command:
    """One of the commands above, as the in-process servers act on it."""

    kind: Literal["true", "discard", "zeros", "idle"]
    size: int = 0


def parse(command: str | None) -> Command | None:
    """The command for an exec request (``None`` for a shell, which idles too);
    ``None`` for anything the benchmark never sends."""
    if command is None or command == IDLE:
        return Command(kind="idle")
    if command == TRUE:
        return Command(kind="true")
    if command == DISCARD:
        return Command(kind="discard")
    match = _ZEROS.fullmatch(command)
    if match is not None:
        return Command(kind="zeros", size=int(match.group(1)))
    return None
