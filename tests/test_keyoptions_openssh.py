"""authorized_keys options enforced against the real OpenSSH client (and Paramiko), by ``ptycore
serve --app shell`` on the Twisted adapter and on the anyio adapter (asyncio and
trio): one server each, its authorized_keys file rewritten before each run (both
adapters read it again when it may have changed, as sshd reads it every time)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from loopback import paramiko_connect
from twisted_helpers import WAIT, Server, run_in_pane, run_server, ssh, tmux_session, wait_for

pytestmark = pytest.mark.network

SERVERS = {
    "twisted": ("twisted",),
    "anyio-asyncio": ("anyio", "--backend", "asyncio"),
    "anyio-trio": ("anyio", "--backend", "trio"),
}
"""Each server's ``--adapter`` and the options after it."""


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    name: str = request.param
    adapter, *rest = SERVERS[name]
    with run_server(
        tmp_path_factory.mktemp(name), "shell", *rest, adapter=adapter, env={"SHELL": "/bin/sh"}
    ) as running:
        yield running


def authorize(server: Server, options: str) -> None:
    """Make the client's key the file's one line, with ``options`` before it."""
    public = server.keys.client_public.read_bytes().strip()
    prefix = options.encode() + b" " if options else b""
    server.keys.authorized_keys.write_bytes(b"# rewritten by the test\n" + prefix + public + b"\n")


def logged(server: Server, pattern: str, since: int) -> str:
    """The first line the server logged since line ``since`` that matches ``pattern``."""
    return wait_for(
        lambda: next((line for line in server.lines[since:] if re.search(pattern, line)), None),
        f"a log line matching {pattern!r}",
    )


def test_no_pty_refuses_the_pty_and_the_session_still_runs(server: Server, tmp_path: Path) -> None:
    """A login session from a terminal asks for a PTY by itself; refused, it goes on
    without one (clientloop.c client_status_confirm). With ``-t`` or ``-tt`` the
    client itself gives up on the refusal."""
    authorize(server, "no-pty")
    with tmux_session(tmp_path, server.ssh_args(), cols=100, rows=30) as tmux:
        tmux.wait_screen("PTY allocation request failed on channel 0", "the refusal")
        assert "not a tty" in run_in_pane(tmux, "tty", "NOPTY-1")
        tmux.keys("exit 5", "Enter")
        assert tmux.wait_exit() == 5
    forced = ssh(server, "-tt", command="echo ran")
    assert forced.returncode == 255
    assert "PTY allocation request failed" in forced.stderr
    assert "ran" not in forced.stdout


def test_restrict_then_pty_gets_a_pty(server: Server) -> None:
    authorize(server, "restrict,pty")
    done = ssh(server, "-tt", command="tty")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^/dev/pts/\d+\r?$", done.stdout, re.MULTILINE), done.stdout
    assert "PTY allocation request failed" not in done.stderr


def test_forced_command_replaces_exec_and_shell(server: Server) -> None:
    authorize(server, 'restrict,command="echo forced $SSH_ORIGINAL_COMMAND; exit 3"')
    since = len(server.lines)
    execed = ssh(server, command="echo not this")
    shell = ssh(server, "-T")
    subsystem = ssh(server, "-s", command="sftp")
    assert (execed.returncode, execed.stdout) == (3, "forced echo not this\n")
    # A shell request has no original command: SSH_ORIGINAL_COMMAND is not set.
    assert (shell.returncode, shell.stdout) == (3, "forced\n")
    # A subsystem the server does not serve is refused first, as sshd does.
    assert subsystem.returncode == 255
    assert "subsystem request failed" in subsystem.stderr
    logged(server, r"restricted: LoginRestrictions\(pty=False, command='echo forced", since)


@pytest.mark.parametrize(
    ("options", "admitted"),
    [
        ('from="127.0.0.1"', True),
        ('from="127.0.0.*,!10.*"', True),
        ('from="10.0.0.0/8"', False),
        ('from="127.0.0.0/8,!127.0.0.1"', False),
    ],
)
def test_from_admits_or_refuses_by_address(server: Server, options: str, admitted: bool) -> None:
    authorize(server, options)
    since = len(server.lines)
    done = ssh(server, command="echo in")
    if admitted:
        assert (done.returncode, done.stdout) == (0, "in\n"), done.stderr
    else:
        assert done.returncode == 255
        assert "Permission denied" in done.stderr
        logged(server, r"line 2: not from a permitted host \(ip=127\.0\.0\.1", since)


def test_an_expired_key_is_refused(server: Server) -> None:
    authorize(server, 'expiry-time="20000101"')
    since = len(server.lines)
    done = ssh(server, command="echo in")
    assert done.returncode == 255
    assert "Permission denied" in done.stderr
    # Local time, as sshd reads it: 2000-01-01 00:00 here, logged in UTC.
    logged(server, r"line 2: key expired at (1999-12-31|2000-01-01)T", since)


def test_a_line_with_an_unknown_option_is_skipped_with_the_reason(server: Server) -> None:
    authorize(server, "no-pty,frobnicate")
    since = len(server.lines)
    done = ssh(server, command="echo in")
    assert done.returncode == 255
    assert "Permission denied" in done.stderr
    logged(server, r"line 2 skipped: bad key options: unknown key option", since)


def test_paramiko_gets_no_pty_and_the_forced_command(server: Server) -> None:
    authorize(server, 'no-pty,command="echo forced $SSH_ORIGINAL_COMMAND"')
    with paramiko_connect(
        server.port, key_filename=str(server.keys.client), timeout=WAIT
    ) as client:
        transport = client.get_transport()
        assert transport is not None
        refused = transport.open_session(timeout=WAIT)
        # Paramiko closes a channel whose request failed ("Channel closed.").
        with pytest.raises(paramiko.SSHException):
            refused.get_pty(term="vt100")
        channel = transport.open_session(timeout=WAIT)
        channel.settimeout(WAIT)
        channel.exec_command("mine, from 'paramiko'")
        output = b""
        while chunk := channel.recv(4096):
            output += chunk
        status = channel.recv_exit_status()
    assert (status, output) == (0, b"forced mine, from 'paramiko'\n")
