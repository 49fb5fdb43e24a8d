"""Peers that break the rules, driven with AsyncSSH's channel-request primitives.

Each gets what the session machine decides (a FAILURE, or a DISCONNECT with
PROTOCOL_ERROR) and the server goes on serving everybody else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import asyncssh
import pytest
from asyncssh.channel import SSHClientChannel
from asyncssh.packet import String, UInt32

from ptycore import ProtocolError
from ptycore.session import RequestRefused, ServerSession, SessionPolicy
from twisted_helpers import WAIT, Server, run_server, wait_for

pytestmark = pytest.mark.network

T = TypeVar("T")

PROTOCOL_ERROR = 2  # RFC 4253 11.1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("bad"), "shell", env={"SHELL": "/bin/sh"}) as s:
        yield s


def run(coroutine: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, WAIT)

    return asyncio.run(bounded())


class Watcher(asyncssh.SSHClient):
    """Remembers why the connection ended."""

    def __init__(self) -> None:
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


async def connect(server: Server) -> tuple[asyncssh.SSHClientConnection, Watcher]:
    conn, client = await asyncssh.create_connection(
        Watcher,
        "127.0.0.1",
        server.port,
        username="tester",
        client_keys=[str(server.keys.client)],
        known_hosts=None,
        agent_path=None,
    )
    assert isinstance(client, Watcher)
    return conn, client


async def bare_session(conn: asyncssh.SSHClientConnection) -> SSHClientChannel[bytes]:
    """An open session channel on which nothing was requested yet."""
    channel: SSHClientChannel[bytes] = SSHClientChannel(
        conn, asyncio.get_running_loop(), "strict", None, "strict", 2 * 1024 * 1024, 32768
    )
    await channel._open(b"session")
    return channel


def pty_payload(term: bytes = b"xterm", cols: int = 80, rows: int = 24) -> list[bytes]:
    return [String(term), UInt32(cols), UInt32(rows), UInt32(0), UInt32(0), String(b"\x00")]


async def request(channel: SSHClientChannel[bytes], name: bytes, *args: bytes) -> Any:
    return await channel._make_request(name, *args)


async def still_serving(server: Server) -> None:
    conn, _ = await connect(server)
    try:
        result = await conn.run("echo still-serving")
        assert result.stdout == "still-serving\n"
    finally:
        conn.close()


async def disconnect_reason(watcher: Watcher) -> Exception | None:
    return await watcher.lost


def test_unknown_request_with_want_reply_gets_failure(server: Server) -> None:
    async def scenario() -> list[Any]:
        conn, _ = await connect(server)
        try:
            channel = await bare_session(conn)
            return [
                await request(channel, b"x-unknown@example.com", String(b"payload")),
                await request(channel, b"pty-req", *pty_payload()),
                await request(channel, b"keepalive@openssh.com"),
            ]
        finally:
            conn.close()

    assert run(scenario()) == [False, True, False]
    run(still_serving(server))


def test_exec_after_shell_is_refused(server: Server) -> None:
    async def scenario() -> list[Any]:
        conn, _ = await connect(server)
        try:
            channel = await bare_session(conn)
            return [
                await request(channel, b"shell"),
                await request(channel, b"exec", String(b"echo second")),
                await request(channel, b"env", String(b"LANG"), String(b"C")),
            ]
        finally:
            conn.close()

    assert run(scenario()) == [True, False, False]
    run(still_serving(server))


def expect_disconnect(server: Server, *requests: tuple[bytes, list[bytes]]) -> Exception | None:
    async def scenario() -> Exception | None:
        conn, watcher = await connect(server)
        channel = await bare_session(conn)
        for name, args in requests[:-1]:
            assert await request(channel, name, *args) is True
        name, args = requests[-1]
        channel._send_request(name, *args, want_reply=True)
        reason = await disconnect_reason(watcher)
        conn.close()
        return reason

    return run(scenario())


def test_malformed_pty_req_disconnects_with_protocol_error(server: Server) -> None:
    truncated = [String(b"xterm"), UInt32(80)]
    reason = expect_disconnect(server, (b"pty-req", truncated))
    assert isinstance(reason, asyncssh.DisconnectError)
    assert reason.code == PROTOCOL_ERROR
    assert "pty-req" in reason.reason
    run(still_serving(server))


def test_second_pty_req_disconnects_as_openssh_does(server: Server) -> None:
    reason = expect_disconnect(server, (b"pty-req", pty_payload()), (b"pty-req", pty_payload()))
    assert isinstance(reason, asyncssh.DisconnectError)
    assert reason.code == PROTOCOL_ERROR
    run(still_serving(server))


def test_one_mebibyte_terminal_name_is_cut_off_by_the_transport(server: Server) -> None:
    """A 1 MiB name does not fit in one packet: Conch's transport refuses packets over
    1 MiB (``transport.py`` getPacket; OpenSSH's limit is 256 KiB, ``packet.c``
    PACKET_MAX_SIZE) with a PROTOCOL_ERROR disconnect before any session sees it."""

    async def scenario() -> Exception | None:
        conn, watcher = await connect(server)
        channel = await bare_session(conn)
        channel._send_request(b"pty-req", *pty_payload(term=b"x" * (1 << 20)), want_reply=True)
        reason = await disconnect_reason(watcher)
        conn.close()
        return reason

    reason = run(scenario())
    assert isinstance(reason, asyncssh.DisconnectError)
    assert reason.code == PROTOCOL_ERROR
    run(still_serving(server))


@pytest.mark.parametrize("length", [300, 200 * 1024])
def test_long_terminal_name_gets_what_the_session_machine_decides(
    server: Server, length: int
) -> None:
    """Past SessionPolicy.max_term_length the machine refuses; past the codec's
    RequestLimits it is a protocol error. The server does exactly what it decides."""
    payload = pty_payload(term=b"x" * length)
    machine = ServerSession(SessionPolicy())
    try:
        decided: object = machine.receive_channel_request("pty-req", b"".join(payload), True)
    except ProtocolError as error:
        decided = error
    if isinstance(decided, ProtocolError):
        reason = expect_disconnect(server, (b"pty-req", payload))
        assert isinstance(reason, asyncssh.DisconnectError)
        assert reason.code == decided.reason
        assert "term" in reason.reason
    else:
        assert isinstance(decided, RequestRefused)

        async def scenario() -> Any:
            conn, _ = await connect(server)
            try:
                channel = await bare_session(conn)
                return [
                    await request(channel, b"pty-req", *payload),
                    await request(channel, b"pty-req", *pty_payload()),
                ]
            finally:
                conn.close()

        assert run(scenario()) == [False, True]
    run(still_serving(server))


def test_client_vanishing_mid_session_leaves_nothing_behind(server: Server) -> None:
    async def scenario() -> None:
        conn, _ = await connect(server)
        process = await conn.create_process("echo started; sleep 97", term_type="xterm")
        assert "started" in await process.stdout.readline()
        conn.abort()

    run(scenario())

    def sleeper_gone() -> bool:
        return not any(b"sleep\x0097" in _cmdline(pid) for pid in _descendants(server.pid))

    wait_for(sleeper_gone, "the abandoned program to be hung up")
    wait_for(lambda: not server.children(), "the server to reap its children")
    run(still_serving(server))


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read()
    except OSError:
        return b""


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as file:
                kids = [int(k) for k in file.read().split()]
        except OSError:
            kids = []
        found.extend(kids)
        todo.extend(kids)
    return found
