"""Applications loaded as MODULE:ATTRIBUTE (the tutorial example, and apps written
here), the echo app, password logins and breaks, against real clients."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import bcrypt
import paramiko
import pytest
from asyncssh.channel import SSHClientChannel
from asyncssh.packet import String, UInt32

from twisted_helpers import WAIT, Server, make_keys, run_server

pytestmark = pytest.mark.network

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

APP_MODULE = '''
from twisted.internet import task
from ptycore_twisted import SessionProtocol


class LateAnswers(SessionProtocol):
    """Grants the PTY late (through a Deferred) and exits with a 32-bit status."""

    def pty_requested(self, pty):
        return task.deferLater(self.transport.reactor, 0.05, lambda: pty.term == "late-yes")

    def session_started(self):
        self.transport.write(f"pty={self.transport.pty is not None}\\n".encode())
        self.transport.exit(0x10007)
'''


def run(coroutine: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, WAIT)

    return asyncio.run(bounded())


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("tutorial"),
        "conch_tutorial:ShowTerminal",
        env={"PYTHONPATH": str(EXAMPLES)},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("late")
    (directory / "late_app.py").write_text(textwrap.dedent(APP_MODULE))
    with run_server(directory, "late_app:LateAnswers") as server:  # found in the cwd
        yield server


def ssh(server: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*server.ssh_args(*args), "ignored"],
        capture_output=True,
        timeout=WAIT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_tutorial_example_with_and_without_a_terminal(tutorial: Server) -> None:
    done = ssh(tutorial, "-tt", "-o", "SetEnv=TERM=vt100")
    assert done.returncode == 0
    assert done.stdout.startswith(b"Your terminal name is ")
    assert b"Your terminal is 0 columns wide and 0 rows tall.\r\n" in done.stdout
    done = ssh(tutorial, "-T")
    assert (done.returncode, done.stdout) == (0, b"You did not ask for a terminal.\n")


def test_tutorial_example_runs_as_a_script(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    script = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "conch_tutorial.py"), str(keys.authorized_keys), "0"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert script.stdout is not None
        line = script.stdout.readline().decode()
        assert line.startswith("listening on 127.0.0.1:"), line
        port = line.strip().rpartition(":")[2]
        done = subprocess.run(
            ["ssh", "-F", "/dev/null", "-p", port, "-i", str(keys.client), "-T",
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "127.0.0.1"],
            capture_output=True, timeout=WAIT, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        assert (done.returncode, done.stdout) == (0, b"You did not ask for a terminal.\n")
        assert (tmp_path / "ssh_host_ed25519_key").exists()
    finally:
        script.terminate()
        script.wait(timeout=WAIT)
        if script.stdout is not None:
            script.stdout.close()


async def connect(server: Server, **options: Any) -> asyncssh.SSHClientConnection:
    options.setdefault("client_keys", [str(server.keys.client)])
    return await asyncssh.connect(
        "127.0.0.1",
        server.port,
        username="tester",
        known_hosts=None,
        agent_path=None,
        **options,
    )


def test_replies_keep_request_order_when_the_application_answers_late(late: Server) -> None:
    """The PTY answer comes through a Deferred after the machine already refused the
    next request by itself; FAILURE for the unknown request must still come second."""

    async def scenario(term: bytes) -> list[Any]:
        conn = await connect(late)
        try:
            channel: SSHClientChannel[bytes] = SSHClientChannel(
                conn, asyncio.get_running_loop(), "strict", None, "strict", 1 << 21, 32768
            )
            await channel._open(b"session")
            pty = [String(term), UInt32(80), UInt32(24), UInt32(0), UInt32(0), String(b"\0")]
            answers = [
                asyncio.ensure_future(channel._make_request(b"pty-req", *pty)),
                asyncio.ensure_future(channel._make_request(b"x-vendor@example.com")),
            ]
            return list(await asyncio.gather(*answers))
        finally:
            conn.close()

    assert run(scenario(b"late-yes")) == [True, False]
    assert run(scenario(b"late-no")) == [False, False]


def test_exit_status_keeps_all_32_bits(late: Server) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=late.port,
        username="tester",
        key_filename=str(late.keys.client),
        look_for_keys=False,
        allow_agent=False,
        timeout=WAIT,
    )
    try:
        channel = client.get_transport().open_session()  # type: ignore[union-attr]
        channel.get_pty(term="late-yes")
        channel.invoke_shell()
        assert channel.recv_exit_status() == 0x10007
        assert channel.recv(100) == b"pty=True\n"
    finally:
        client.close()


def test_echo_round_trips_a_mebibyte(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096

    async def scenario(server: Server) -> tuple[bytes, int | None]:
        conn = await connect(server)
        try:
            process = await conn.create_process(encoding=None)
            process.stdin.write(payload)
            process.stdin.write_eof()
            echoed = await process.stdout.read()
            completed = await process.wait()
            return echoed, completed.exit_status
        finally:
            conn.close()

    with run_server(tmp_path, "echo") as server:
        echoed, status = run(scenario(server))
    assert echoed == payload
    assert status == 0


def test_password_file_login(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    hashed = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(rounds=4))
    passwords.write_bytes(b"alice:plain text\nbob:" + hashed + b"\n")

    async def login(server: Server, user: str, password: str) -> str:
        conn = await asyncssh.connect(
            "127.0.0.1",
            server.port,
            username=user,
            password=password,
            client_keys=None,
            known_hosts=None,
            agent_path=None,
        )
        try:
            result = await conn.run("ignored")
            return str(result.stdout)
        finally:
            conn.close()

    with run_server(tmp_path, "info", "--password-file", str(passwords)) as server:
        assert "No terminal was requested" in run(login(server, "alice", "plain text"))
        assert "No terminal was requested" in run(login(server, "bob", "correct horse"))
        with pytest.raises(asyncssh.PermissionDenied):
            run(login(server, "bob", "wrong"))


def test_break_needs_a_pty_and_reaches_it(tmp_path: Path) -> None:
    async def scenario(server: Server, with_pty: bool) -> Any:
        conn = await connect(server)
        try:
            channel: SSHClientChannel[bytes] = SSHClientChannel(
                conn, asyncio.get_running_loop(), "strict", None, "strict", 1 << 21, 32768
            )
            await channel._open(b"session")
            if with_pty:
                pty = [String(b"xterm"), UInt32(80), UInt32(24), UInt32(0), UInt32(0)]
                assert await channel._make_request(b"pty-req", *pty, String(b"\0"))
            assert await channel._make_request(b"exec", String(b"sleep 5"))
            return await channel._make_request(b"break", UInt32(1000))
        finally:
            conn.close()

    with run_server(tmp_path, "shell", env={"SHELL": "/bin/sh"}) as server:
        assert run(scenario(server, with_pty=True)) is True
        assert run(scenario(server, with_pty=False)) is False
