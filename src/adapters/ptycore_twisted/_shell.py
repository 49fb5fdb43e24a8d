"""The ``shell`` application: the user's shell, or a command through it, as sshd runs it.

With a PTY (``session.c`` ``do_exec_pty``): a fresh pseudo-terminal with the
client's modes applied through :meth:`ptycore.TerminalModes.to_termios` (what
``ttymodes.c`` ``tty_parse_modes`` does) and its size set with ``TIOCSWINSZ``; the
program is a session leader with the PTY as its controlling terminal. Without
one (``do_exec_no_pty``): pipes, and a new session all the same, so that signals
reach the program's process group and never the server's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import termios
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ptycore.requests import PtyRequest, SubsystemRequest, WindowSize
from ptycore_common.process import (
    build_environment,
    configure_pty,
    program_arguments,
    signal_name,
    user_shell,
    winsize,
)

from ._channel import SessionProtocol

__all__ = ["ShellProtocol"]

_log = Logger(namespace="ptycore")

_NEW_SESSION = "import os, sys; os.setsid(); os.execv(sys.argv[1], sys.argv[2:])"
"""Run without a PTY in a new session (setsid(2)) before exec, as sshd's child does
(``session.c`` ``do_exec_no_pty`` calls ``setsid``); Twisted's spawnProcess has
no pre-exec hook, so a tiny interpreter trampoline does it."""


class _Process(ProcessProtocol):
    """Carries the program's output to the session and its end to the shell protocol."""

    def __init__(self, owner: ShellProtocol) -> None:
        self.owner = owner

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 2:
            self.owner.transport.write_stderr(data)
        else:
            self.owner.transport.write(data)

    def processEnded(self, reason: Failure) -> None:
        self.owner.process_ended(reason)


class ShellProtocol(SessionProtocol):
    """Run the user's shell, or ``$SHELL -c COMMAND`` for exec; subsystems are refused."""

    def __init__(self, shell: str | None = None) -> None:
        self.shell = shell or user_shell()
        self.process: Any = None
        self._master: int | None = None
        self._ended = False

    def program_requested(self, program: Any) -> bool:
        """Shell and exec only (sshd would look subsystems up in its configuration)."""
        return not isinstance(program, SubsystemRequest)

    def session_started(self) -> None:
        """Spawn the program."""
        program = self.transport.program
        if program is None or isinstance(program, SubsystemRequest):
            return  # program_requested refused subsystems; nothing else starts us
        args = program_arguments(self.shell, program)
        pty = self.transport.pty
        reactor = self.transport.reactor
        process = _Process(self)
        try:
            if pty is None:
                env = self._environment(None, None)
                self.process = reactor.spawnProcess(
                    process,
                    sys.executable,
                    [sys.executable, "-c", _NEW_SESSION, self.shell, *args],
                    env=env,
                    path=env["HOME"],
                )
            else:
                self.process = self._spawn_pty(process, pty, args)
        except OSError as error:
            _log.error("cannot start {shell}: {error}", shell=self.shell, error=error)
            message = f"ptycore: cannot start {self.shell}: {error}\r\n"
            self.transport.write_stderr(message.encode())
            self.transport.exit(127)
            return
        self.transport.registerProducer(self.process, True)
        self.process.registerProducer(self.transport, True)

    def _environment(self, pty: PtyRequest | None, tty: str | None) -> dict[str, str]:
        """The program's environment (see :func:`build_environment`)."""
        return build_environment(
            self.transport.environment,
            shell=self.shell,
            pty=pty,
            tty=tty,
            original_command=self.transport.original_command,
        )

    def _spawn_pty(self, process: _Process, pty: PtyRequest, args: list[str]) -> Any:
        master, slave = os.openpty()
        try:
            configure_pty(slave, pty)
            tty = os.ttyname(slave)
            env = self._environment(pty, tty)
            spawned = self.transport.reactor.spawnProcess(
                process, self.shell, args, env=env, path=env["HOME"], usePTY=(master, slave, tty)
            )
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # Twisted closed the slave in the parent and owns the master from here on.
        self._master = master
        return spawned

    def data_received(self, data: bytes) -> None:
        """Input for the program."""
        if self.process is not None and not self._ended:
            self.process.write(data)

    def eof_received(self) -> None:
        """Close the program's stdin once what is buffered for it is written; with a
        PTY there is nothing to close (sshd neither).

        The session stops being stdin's producer first: Twisted closes a pipe with a
        producer only when that producer is done, and a producer it paused (input
        faster than the program reads it) would instead be resumed when the buffer
        drains, leaving the pipe open and the program waiting for input for ever
        (``FileDescriptor.loseConnection``).
        """
        if self.process is not None and self._master is None and not self._ended:
            self.process.unregisterProducer()
            self.process.closeStdin()

    def window_changed(self, size: WindowSize) -> None:
        """TIOCSWINSZ on the PTY; the kernel sends SIGWINCH to the foreground job."""
        if self._master is not None and not self._ended:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, winsize(size))

    def signal_received(self, name: str) -> bool:
        """Deliver to the PTY's foreground process group (what the terminal's own
        Ctrl-C reaches), or to the program's group without a PTY.

        ``session.c`` ``session_signal_req`` uses ``killpg`` on the program's group;
        with job control the running command has a group of its own, and the
        terminal's foreground group is the one a user means.
        """
        number = getattr(signal, f"SIG{name}", None)
        if number is None or self.process is None or self._ended:
            return False
        group = self.process.pid
        if self._master is not None:
            try:
                group = os.tcgetpgrp(self._master)
            except OSError:
                group = self.process.pid
        try:
            os.killpg(group, number)
        except OSError:
            return False
        return True

    def break_received(self, length_ms: int) -> bool:
        """RFC 4335 3: ``tcsendbreak`` on the PTY (length ignored, as sshd does)."""
        if self._master is None or self._ended:
            return False
        try:
            termios.tcsendbreak(self._master, 0)
        except termios.error:
            return False
        return True

    def process_ended(self, reason: Failure) -> None:
        """Report the exit as sshd does: exit-status, or exit-signal with the core flag."""
        self._ended = True
        self._master = None
        value = reason.value
        status = getattr(value, "status", None)
        if isinstance(value, ProcessDone | ProcessTerminated) and status is not None:
            if os.WIFSIGNALED(status):
                self.transport.exit_signal(
                    signal_name(os.WTERMSIG(status)), core_dumped=os.WCOREDUMP(status)
                )
                return
            self.transport.exit(os.WEXITSTATUS(status))
            return
        self.transport.exit(getattr(value, "exitCode", None) or 0)

    def session_closed(self) -> None:
        """The client is gone: hang up the program's session, as closing a PTY does."""
        if self.process is None or self._ended:
            return
        with contextlib.suppress(OSError):  # it may have exited in the meantime
            os.killpg(self.process.pid, signal.SIGHUP)
        self.process.loseConnection()
