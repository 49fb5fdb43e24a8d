"""A minimal AsyncSSH server for ``bench_server.py``: the commands of ``bench_commands.py``.

Run as ``python3 bench_peer_asyncssh.py HOST_KEY AUTHORIZED_KEYS``; it listens on
127.0.0.1 on a free port and prints ``listening on 127.0.0.1:PORT`` to standard
error. It uses AsyncSSH's callback API (``SSHServerSession``), its leanest: no
streams, no line editor, bytes only, output paced by ``pause_writing`` and
``resume_writing``.
"""

from __future__ import annotations

import asyncio
import sys

import asyncssh
from bench_commands import CHUNK, READY, Command, parse


class Session(asyncssh.SSHServerSession[bytes]):
    """One session channel running one benchmark command."""

    def __init__(self) -> None:
        self._channel: asyncssh.SSHServerChannel[bytes] | None = None
        self._command: Command | None = None
        self._left = 0
        self._paused = False
        self._chunk = bytes(CHUNK)

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._channel = chan

    def pty_requested(self, term_type: str, term_size: object, term_modes: object) -> bool:
        return True

    def shell_requested(self) -> bool:
        self._command = parse(None)
        return True

    def exec_requested(self, command: str) -> bool:
        self._command = parse(command)
        return self._command is not None

    def session_started(self) -> None:
        channel, command = self._channel, self._command
        if channel is None or command is None:
            return
        if command.kind == "true":
            channel.exit(0)
        elif command.kind == "idle":
            channel.write(READY)
        elif command.kind == "zeros":
            self._left = command.size
            self._produce()

    def _produce(self) -> None:
        channel = self._channel
        if channel is None:
            return
        while self._left > 0 and not self._paused:
            channel.write(self._chunk if self._left >= CHUNK else self._chunk[: self._left])
            self._left -= CHUNK
        if self._left <= 0:
            channel.exit(0)  # EOF and CLOSE wait for the buffered data

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._left > 0:
            self._produce()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        """Dropped: the upload figure discards its input."""

    def eof_received(self) -> bool:
        command = self._command
        if self._channel is not None and command is not None and command.kind != "zeros":
            self._channel.exit(0)
        return True  # half open: the zeros command keeps writing after the client's EOF


class Server(asyncssh.SSHServer):
    """Every session channel gets a :class:`Session`."""

    def session_requested(self) -> Session:
        return Session()


async def main(host_key: str, authorized_keys: str) -> None:
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=authorized_keys,
        server_factory=Server,
        encoding=None,
        line_editor=False,
        allow_pty=True,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
