"""AsyncSSH and Paramiko clients against `ptycore serve --app shell` and `--app info`:
modes, resize, environment, exit status and exit signal, as their APIs reach."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncssh
import paramiko
import pytest

from loopback import asyncssh_resize
from twisted_helpers import WAIT, Server, run_server

pytestmark = pytest.mark.network

T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("clients"),
        "shell",
        "--accept-env",
        "LANG",
        "--accept-env",
        "PTYCORE_*",
        env={"SHELL": "/bin/sh"},
    ) as running:
        yield running


def run(coroutine: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, WAIT)

    return asyncio.run(bounded())


async def connect(server: Server) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        server.port,
        username="tester",
        client_keys=[str(server.keys.client)],
        known_hosts=None,
        agent_path=None,
    )


def test_asyncssh_modes_size_env_and_exit_status(server: Server) -> None:
    async def session() -> asyncssh.SSHCompletedProcess:
        conn = await connect(server)
        try:
            result = await conn.run(
                'stty -a; echo "LANG=$LANG X=$PTYCORE_X Y=$NOT_ACCEPTED TERM=$TERM"; exit 3',
                term_type="vt220",
                term_size=(91, 33),
                term_modes={asyncssh.PTY_VINTR: 0x07, asyncssh.PTY_ECHO: 0},
                env={"LANG": "C.UTF-8", "PTYCORE_X": "x y", "NOT_ACCEPTED": "no"},
            )
        finally:
            conn.close()
        return result

    result = run(session())
    assert result.exit_status == 3
    out = str(result.stdout)
    assert "rows 33; columns 91" in out
    assert "intr = ^G" in out
    assert re.search(r"(^|\s)-echo(\s|$)", out), out
    assert "LANG=C.UTF-8 X=x y Y= TERM=vt220" in out


def test_asyncssh_resize_reaches_the_pty(server: Server) -> None:
    async def session() -> tuple[str, str]:
        conn = await connect(server)
        try:
            return await asyncssh_resize(conn)
        finally:
            conn.close()

    first, second = run(session())
    assert first.strip() == "24 80"
    assert second.strip() == "50 132"


def test_asyncssh_kill_term_self_is_exit_signal(server: Server) -> None:
    async def session() -> asyncssh.SSHCompletedProcess:
        conn = await connect(server)
        try:
            return await conn.run("kill -TERM $$")
        finally:
            conn.close()

    result = run(session())
    assert result.exit_signal is not None
    name, core_dumped, _message, _language = result.exit_signal
    assert (name, core_dumped) == ("TERM", False)


def test_asyncssh_send_signal_interrupts_a_command(server: Server) -> None:
    async def session() -> asyncssh.SSHCompletedProcess:
        conn = await connect(server)
        try:
            process = await conn.create_process("echo started; exec sleep 60")
            assert (await process.stdout.readline()).strip() == "started"
            process.send_signal("INT")
            return await process.wait()
        finally:
            conn.close()

    result = run(session())
    assert result.exit_signal is not None
    assert result.exit_signal[0] == "INT"


def test_asyncssh_exit_status_keeps_more_than_8_bits_where_the_shell_allows(
    server: Server,
) -> None:
    async def session() -> asyncssh.SSHCompletedProcess:
        conn = await connect(server)
        try:
            return await conn.run("exit 255")
        finally:
            conn.close()

    assert run(session()).exit_status == 255


def paramiko_client(server: Server) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=server.port,
        username="tester",
        key_filename=str(server.keys.client),
        look_for_keys=False,
        allow_agent=False,
        timeout=WAIT,
    )
    return client


def read_until(channel: paramiko.Channel, marker: bytes) -> bytes:
    seen = b""
    channel.settimeout(WAIT)
    while marker not in seen:
        chunk = channel.recv(65536)
        if not chunk:
            break
        seen += chunk
    return seen


def test_paramiko_pty_resize_env_and_exit_status(server: Server) -> None:
    client = paramiko_client(server)
    try:
        channel = client.get_transport().open_session()  # type: ignore[union-attr]
        channel.get_pty(term="xterm-mono", width=70, height=20)
        channel.update_environment({"LANG": "C", "PTYCORE_P": "paramiko"})
        channel.exec_command(
            'stty size; echo "TERM=$TERM LANG=$LANG P=$PTYCORE_P"; read x; stty size; exit 5'
        )
        first = read_until(channel, b"P=paramiko")
        assert b"20 70" in first
        assert b"TERM=xterm-mono LANG=C P=paramiko" in first
        channel.resize_pty(width=101, height=41)
        channel.sendall(b"\n")
        assert b"41 101" in read_until(channel, b"41 101")
        assert channel.recv_exit_status() == 5
    finally:
        client.close()


def test_paramiko_without_pty_gets_pipes(server: Server) -> None:
    client = paramiko_client(server)
    try:
        _stdin, stdout, stderr = client.exec_command(
            "test -t 0 || echo no-tty; echo oops >&2; exit 9", timeout=WAIT
        )
        assert stdout.read() == b"no-tty\n"
        assert stderr.read() == b"oops\n"
        assert stdout.channel.recv_exit_status() == 9
    finally:
        client.close()


def test_info_app_for_paramiko_reports_columns_first(tmp_path: Path) -> None:
    with run_server(tmp_path, "info") as info:
        client = paramiko_client(info)
        try:
            channel = client.get_transport().open_session()  # type: ignore[union-attr]
            try:
                channel.get_pty(term="vt100", width=132, height=43)
                channel.exec_command("anything")
            except paramiko.SSHException as error:
                raise AssertionError(f"{error}; server log:\n{info.log()}") from None
            out = read_until(channel, b"rows tall.")
            assert b"Your terminal name is 'vt100'.\r\n" in out
            assert b"Your terminal is 132 columns wide and 43 rows tall.\r\n" in out
            assert channel.recv_exit_status() == 0
        finally:
            client.close()
