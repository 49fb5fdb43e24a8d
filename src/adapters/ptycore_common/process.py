"""How the ``shell`` application starts the user's program, as ``sshd`` does.

Decisions (which shell, which arguments, which environment, how a size is packed
for ``TIOCSWINSZ``, how a signal is named on the wire) and the setup of a new PTY;
spawning belongs to each adapter's event loop.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import signal
import struct
import termios
from collections.abc import Mapping

from ptycore.requests import ExecRequest, PtyRequest, ShellRequest, WindowSize

__all__ = [
    "build_environment",
    "configure_pty",
    "program_arguments",
    "signal_name",
    "user_shell",
    "winsize",
]


def user_shell() -> str:
    """``$SHELL``, else the password database's shell, else ``/bin/sh``."""
    shell = os.environ.get("SHELL")
    if shell:
        return shell
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


def program_arguments(shell: str, program: ShellRequest | ExecRequest) -> list[str]:
    """argv for ``shell``: ``-c COMMAND`` for exec, else a login shell (``-bash``),
    as ``session.c`` ``do_child`` starts it."""
    name = os.path.basename(shell)
    if isinstance(program, ExecRequest):
        return [name, "-c", program.command]
    return [f"-{name}"]


def signal_name(number: int) -> str:
    """RFC 4254 6.10: the signal name without the ``SIG`` prefix."""
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return f"{number}@ptycore"  # RFC 4254 6.10: local names carry an @domain


def build_environment(
    accepted: Mapping[str, str],
    *,
    shell: str,
    pty: PtyRequest | None,
    tty: str | None,
    original_command: str | None = None,
) -> dict[str, str]:
    """The program's environment, built fresh as ``session.c`` ``do_setup_env`` does.

    The client's accepted variables first; the server's own ``HOME``, ``USER``,
    ``LOGNAME``, ``PATH``, ``SHELL``, ``TERM`` from the pty-req, and
    ``SSH_ORIGINAL_COMMAND`` (the client's command when a forced command runs in
    its place) override them. Nothing else leaks from the server's environment.
    """
    env = dict(accepted)
    home = os.path.expanduser("~")
    user = pwd.getpwuid(os.getuid()).pw_name
    env.update(
        HOME=home,
        USER=user,
        LOGNAME=user,
        PATH=os.environ.get("PATH", os.defpath),
        SHELL=shell,
    )
    if pty is not None:
        env["TERM"] = pty.term
    if tty is not None:
        env["SSH_TTY"] = tty
    if original_command is not None:
        env["SSH_ORIGINAL_COMMAND"] = original_command
    return env


def winsize(size: WindowSize) -> bytes:
    """``struct winsize { ws_row, ws_col, ws_xpixel, ws_ypixel }`` for ``TIOCSWINSZ``.

    Unsigned shorts; the session machine has already clamped every dimension to
    65535 (OpenSSH's ``pty_change_window_size`` would truncate instead).
    """
    return struct.pack("HHHH", size.rows, size.cols, size.width_px, size.height_px)


def configure_pty(fd: int, pty: PtyRequest) -> None:
    """Give a new PTY the client's modes and size, as ``session.c`` ``do_exec_pty`` does.

    Modes that OpenSSH would not apply (``ttymodes.c`` ``tty_parse_modes`` gives up
    on an opcode of 160 or more, or bytes after ``TTY_OP_END``) are left out, and
    the PTY keeps its defaults, while the PTY itself is still granted.
    """
    if pty.modes.applicable:
        termios.tcsetattr(fd, termios.TCSANOW, pty.modes.to_termios(termios.tcgetattr(fd)))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize(pty.size))
