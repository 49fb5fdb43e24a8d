"""The benchmark's session app for ``ptycore serve --adapter twisted --app bench_app_twisted:App``.

It runs the commands of ``bench_commands.py`` in process (no child), as the
AsyncSSH and Conch peers do; output is written while the session's transport does
not pause its producer.
"""

from __future__ import annotations

from bench_commands import CHUNK, READY, parse

from ptycore.requests import ExecRequest
from ptycore_twisted import SessionProtocol


class App(SessionProtocol):
    """Run one benchmark command; anything else exits with status 127."""

    _chunk = bytes(CHUNK)
    _left = 0
    _paused = False
    _idle = False

    def session_started(self) -> None:
        """Act on the command."""
        program = self.transport.program
        command = parse(program.command if isinstance(program, ExecRequest) else None)
        if command is None:
            self.transport.write_stderr(b"bench_app_twisted: unknown command\n")
            self.transport.exit(127)
        elif command.kind == "true":
            self.transport.exit(0)
        elif command.kind == "idle":
            self.transport.write(READY)
            self._idle = True
        elif command.kind == "zeros":
            self._left = command.size
            self.transport.registerProducer(self, True)
            self._produce()
        else:
            self._idle = True  # discard: input is dropped until EOF

    def _produce(self) -> None:
        while self._left > 0 and not self._paused and not self.transport.closed:
            self.transport.write(self._chunk if self._left >= CHUNK else self._chunk[: self._left])
            self._left -= CHUNK
        if self._left <= 0 and not self.transport.closed:
            self.transport.unregisterProducer()
            self.transport.exit(0)  # queued behind the data

    def eof_received(self) -> None:
        """The client is done sending."""
        if self._idle:
            self.transport.exit(0)

    # IPushProducer of the output
    def pauseProducing(self) -> None:
        """The client's window is full."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The client's window reopened."""
        self._paused = False
        self._produce()

    def stopProducing(self) -> None:
        """The session is gone."""
        self._left = 0
