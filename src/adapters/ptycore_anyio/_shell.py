"""The ``shell`` application on anyio: the user's shell, or a command through it.

As ``sshd`` runs it (``session.c``): with a PTY (``do_exec_pty``), a fresh
pseudo-terminal with the client's modes applied through
:meth:`ptycore.TerminalModes.to_termios` (``ttymodes.c`` ``tty_parse_modes``) and
its size set with ``TIOCSWINSZ``, the program a session leader with the PTY as its
controlling terminal; without one (``do_exec_no_pty``), pipes and a new session all
the same, so signals reach the program's process group and never the server's.

Nothing blocks the event loop on either backend: the PTY master and the pipes are
read and written when :func:`anyio.wait_readable` / :func:`anyio.wait_writable` say
so, and the child is reaped when its pidfd becomes readable (Linux; a worker thread
waits elsewhere). The child is started with :class:`subprocess.Popen` itself, not
:func:`anyio.open_process`, because only Popen can give the program the
``argv[0]`` sshd gives it (``bash``, or ``-bash`` for a login shell) and report a
core dump (``WCOREDUMP``) for ``exit-signal``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import subprocess
import sys
import termios
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.to_thread

from ptycore.requests import ExecRequest, PtyRequest, ShellRequest
from ptycore_common.process import (
    build_environment,
    configure_pty,
    program_arguments,
    signal_name,
    user_shell,
    winsize,
)

from ._session import EOF, Break, Data, Session, Signal, WindowChange

__all__ = ["Shell", "shell"]

logger = logging.getLogger("ptycore.anyio")

READ_SIZE: Final = 256 * 1024
"""Bytes read from the PTY or a pipe at a time (OpenSSH's channel reads are 16 KiB,
``CHAN_RBUF``; larger reads mean fewer wake-ups for bulk output, up to what a
:data:`PIPE_SIZE` pipe holds in four)."""

PTY_DRAIN_GRACE: Final = 1.0
"""Seconds the output of an exited program's PTY is still read while something
(a background job) keeps it open. sshd stops reading the PTY when the session's
program exits (``session.c`` ``session_close_by_pid``); the kernel has usually
hung up the PTY's other users by then, and this only bounds the wait."""

PIPE_SIZE: Final = 1 << 20
"""Capacity asked for the program's pipes (Linux ``fcntl(2)`` ``F_SETPIPE_SZ``; 1 MiB
is the default ``pipe-max-size``) instead of 64 KiB: a bulk transfer through ``cat``
or ``head`` then takes one write or read per 256 KiB rather than four, with the
loop turns between them. The kernel allocates the pages only as data fills them."""

F_SETPIPE_SZ: Final[int | None] = getattr(fcntl, "F_SETPIPE_SZ", None)

HANGUP_GRACE: Final = 5.0
"""Seconds a program gets to exit after SIGHUP when the client went away, before
SIGKILL."""

_CONTROLLING_TTY: Final = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "try:\n"
    "    os.execv(sys.argv[1], sys.argv[2:])\n"
    "except OSError as error:\n"
    "    sys.stderr.write(f'ptycore: cannot start {sys.argv[1]}: {error.strerror}\\r\\n')\n"
    "    sys.exit(127)\n"
)
"""Make the PTY the controlling terminal (``TIOCSCTTY``, what sshd's ``pty_make_controlling_tty``
does after ``setsid``), then exec the shell. ``subprocess`` has no safe pre-exec hook
for it, so a tiny isolated interpreter does it in the new session."""


class _Child:
    """A running program: its pid, the fds that reach it, its wait status once reaped."""

    __slots__ = ("master", "output_done", "pid", "popen", "status")

    def __init__(self, popen: subprocess.Popen[bytes], *, master: int | None) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.master = master
        self.status: int | None = None
        self.output_done = False  # set by the supervisor once the output reached its end
        for fd in self._fds():
            os.set_blocking(fd, False)
        if master is None and F_SETPIPE_SZ is not None:
            for fd in self._fds():
                with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size
                    fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)

    @property
    def stdin(self) -> int | None:
        """Where the client's input goes (the PTY, or the stdin pipe while open)."""
        if self.master is not None:
            return self.master
        return None if self.popen.stdin is None else self.popen.stdin.fileno()

    def close_stdin(self) -> None:
        """EOF on the program's stdin pipe (a PTY has none to close: sshd neither)."""
        if self.popen.stdin is not None:
            self.popen.stdin.close()
            self.popen.stdin = None

    async def wait(self) -> int:
        """Wait for the program to exit, reap it, and return its wait status."""
        if self.status is None:
            self.status = await _wait_pid(self.pid)
            # Popen must not reap it again, nor warn that it is "still running".
            self.popen.returncode = os.waitstatus_to_exitcode(self.status)
        return self.status

    def hang_up(self) -> None:
        """SIGHUP to the program's session, as closing its terminal does."""
        self.kill(signal.SIGHUP)

    def kill(self, number: int) -> None:
        """Send ``number`` to the program's process group, if it still runs."""
        if self.status is None:
            with contextlib.suppress(OSError):  # it may have exited in the meantime
                os.killpg(self.pid, number)

    async def reap(self) -> None:
        """Wait for the program; SIGHUP, then SIGKILL, if it does not exit by itself."""
        if self.status is None:
            self.hang_up()
            with anyio.move_on_after(HANGUP_GRACE):
                await self.wait()
        if self.status is None:
            self.kill(signal.SIGKILL)
            await self.wait()

    def close(self) -> None:
        """Close every fd the server holds for the program."""
        if self.master is not None:
            os.close(self.master)
            self.master = None
        for pipe in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()

    def _fds(self) -> list[int]:
        pipes = (self.popen.stdin, self.popen.stdout, self.popen.stderr)
        fds = [pipe.fileno() for pipe in pipes if pipe is not None]
        return fds if self.master is None else [self.master]


class Shell:
    """The ``shell`` application: ``$SHELL`` (or ``shell``) as a login shell, or
    ``$SHELL -c COMMAND`` for exec; a subsystem gets exit status 127."""

    def __init__(self, shell: str | None = None) -> None:
        self.shell = shell or user_shell()

    async def __call__(self, session: Session) -> None:
        """Run the program for ``session`` until it exits, and report how it ended."""
        program = session.program
        if not isinstance(program, ShellRequest | ExecRequest):
            await session.write_stderr(b"ptycore: the shell application runs no subsystems\r\n")
            await session.exit(127)
            return
        args = program_arguments(self.shell, program)
        pty = session.pty
        try:
            child = (
                self._spawn(session, args) if pty is None else self._spawn_pty(session, pty, args)
            )
        except OSError as error:
            logger.error("cannot start %s: %s", self.shell, error)
            await session.write_stderr(f"ptycore: cannot start {self.shell}: {error}\r\n".encode())
            await session.exit(127)
            return
        await self._supervise(session, child)

    def _spawn(self, session: Session, args: list[str]) -> _Child:
        """Pipes, in a new session (``session.c`` ``do_exec_no_pty`` calls ``setsid``)."""
        env = build_environment(
            session.environment,
            shell=self.shell,
            pty=None,
            tty=None,
            original_command=session.original_command,
        )
        # S603: the command is the client's to choose; that is what exec means.
        popen = subprocess.Popen(  # noqa: S603
            args,
            executable=self.shell,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=env["HOME"],
            env=env,
            start_new_session=True,
        )
        return _Child(popen, master=None)

    def _spawn_pty(self, session: Session, pty: PtyRequest, args: list[str]) -> _Child:
        """A new PTY with the client's modes and size (``session.c`` ``do_exec_pty``)."""
        master, slave = os.openpty()
        try:
            configure_pty(slave, pty)
            env = build_environment(
                session.environment,
                shell=self.shell,
                pty=pty,
                tty=os.ttyname(slave),
                original_command=session.original_command,
            )
            popen = subprocess.Popen(  # noqa: S603 (the client's command, as exec means)
                [sys.executable, "-I", "-S", "-c", _CONTROLLING_TTY, self.shell, *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=env["HOME"],
                env=env,
                start_new_session=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the child has it; the master sees EIO once every copy is closed
        return _Child(popen, master=master)

    async def _supervise(self, session: Session, child: _Child) -> None:
        """Move bytes both ways until the program exits, then report its end as sshd
        does: ``exit-status``, or ``exit-signal`` with the core flag."""
        try:
            # The output is pumped here, the input and the wait for the exit in two
            # tasks: whichever of the output's end and the exit comes last stops the rest
            # (no event: each task costs an idle session memory already).
            async with anyio.create_task_group() as tasks:
                output = anyio.CancelScope()
                tasks.start_soon(_input, session, child)
                tasks.start_soon(_watch_exit, child, output, tasks.cancel_scope)
                with output:
                    await _output(session, child)
                child.output_done = True
                if child.status is not None:
                    tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await child.reap()
            child.close()
        status = await child.wait()
        if os.WIFSIGNALED(status):
            await session.exit_signal(
                signal_name(os.WTERMSIG(status)), core_dumped=os.WCOREDUMP(status)
            )
        else:
            await session.exit(os.waitstatus_to_exitcode(status))


async def _input(session: Session, child: _Child) -> None:
    """The client's input events, until the channel closes; then hang up."""
    async for event in session:
        if isinstance(event, Data):
            fd = child.stdin
            if fd is not None:
                await _write_fd(fd, event.data)
        elif isinstance(event, EOF):
            child.close_stdin()
        elif isinstance(event, WindowChange):
            if child.master is not None:  # the kernel sends SIGWINCH to the foreground job
                fcntl.ioctl(child.master, termios.TIOCSWINSZ, winsize(event.size))
        elif isinstance(event, Signal):
            _signal(event, child)
        elif isinstance(event, Break):
            _break(event, child.master)
    child.hang_up()


async def _watch_exit(child: _Child, output: anyio.CancelScope, rest: anyio.CancelScope) -> None:
    """Wait for the program to exit, then bound what is left of its output.

    Pipes: all of it, as sshd waits for the pipes' EOF. A PTY: what is left, for
    as long as nothing else holds it open, :data:`PTY_DRAIN_GRACE` at most.
    """
    await child.wait()
    if child.output_done:
        rest.cancel()
    elif child.master is not None:
        output.deadline = anyio.current_time() + PTY_DRAIN_GRACE


async def _output(session: Session, child: _Child) -> None:
    """The program's output to the session until EOF (EIO on a PTY)."""
    try:
        if child.master is not None:
            await _pump(child.master, session.write)
        else:
            async with anyio.create_task_group() as pipes:
                if child.popen.stderr is not None:
                    pipes.start_soon(_pump, child.popen.stderr.fileno(), session.write_stderr)
                if child.popen.stdout is not None:
                    await _pump(child.popen.stdout.fileno(), session.write)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        child.hang_up()  # the client is gone: nobody reads the output


def _signal(event: Signal, child: _Child) -> None:
    """Deliver to the PTY's foreground process group (what the terminal's own Ctrl-C
    reaches), or to the program's group without a PTY.

    ``session.c`` ``session_signal_req`` uses ``killpg`` on the program's group;
    with job control the running command has a group of its own, and the
    terminal's foreground group is the one a user means.
    """
    number = getattr(signal, f"SIG{event.name}", None)
    if number is None or child.status is not None:
        event.reject()
        return
    group = child.pid
    if child.master is not None:
        with contextlib.suppress(OSError):
            group = os.tcgetpgrp(child.master)
    try:
        os.killpg(group, number)
    except OSError:
        event.reject()
        return
    event.accept()


def _break(event: Break, master: int | None) -> None:
    """RFC 4335 3: ``tcsendbreak`` on the PTY (length ignored, as sshd does)."""
    if master is None:
        event.reject()
        return
    try:
        termios.tcsendbreak(master, 0)
    except termios.error:
        event.reject()
        return
    event.accept()


async def _wait_pid(pid: int) -> int:
    """Reap ``pid`` without blocking the event loop: wait on its pidfd (Linux 5.3+),
    else in a worker thread."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        _, status = await anyio.to_thread.run_sync(os.waitpid, pid, 0, abandon_on_cancel=True)
        return status
    try:
        while True:
            reaped, status = os.waitpid(pid, os.WNOHANG)
            if reaped == pid:
                return status
            await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)


async def _pump(fd: int, write: Callable[[bytes], Awaitable[None]]) -> None:
    """Read ``fd`` until EOF, or EIO (a PTY whose every slave copy is closed, Linux)."""
    while True:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            await anyio.wait_readable(fd)
            continue
        except OSError as error:
            if error.errno == errno.EIO:
                return
            raise
        if not data:
            return
        await write(data)


async def _write_fd(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking fd, waiting while it is full."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        except OSError as error:
            if isinstance(error, BrokenPipeError) or error.errno == errno.EIO:
                return  # the program closed its input: what it did not read is lost
            raise
        view = view[written:]


shell = Shell()
"""The ``shell`` application with the user's own shell."""
