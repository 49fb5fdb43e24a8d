"""ClientConnection over a loopback socket against a real server: AsyncSSH's."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh
import pytest

from client_helpers import TIMEOUT, BlockingClient
from ptycore import DisconnectReason, ProtocolError
from ptycore.auth import AuthenticationSucceeded, Challenge, Prompt
from ptycore.requests import WindowSize
from ptycore.session import ExitStatusReceived, RequestAnswered
from ptycore.transport import HostKey

PASSWORD = "open sesame"
USER_KEY = HostKey.generate()


@dataclass
class AsyncSSHServer:
    port: int
    host_key: bytes


class _Server(asyncssh.SSHServer):
    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "alice" and password == PASSWORD

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(
        self, username: str, lang: str, submethods: str
    ) -> tuple[str, str, str, list[tuple[str, bool]]]:
        return ("Second factor", "Type the code.", "", [("Code: ", True)])

    def validate_kbdint_response(self, username: str, responses: Sequence[str]) -> bool:
        return list(responses) == ["42"]


async def _process(process: asyncssh.SSHServerProcess[bytes]) -> None:
    command = process.command
    if command == "term":
        cols, rows, _, _ = process.term_size
        process.stdout.write(f"{process.term_type} {cols}x{rows}\n".encode())
        process.exit(0)
        return
    # "sha256": hash stdin until EOF, echo it back, report the digest, exit 5.
    digest = hashlib.sha256()
    while data := await process.stdin.read(65536):
        digest.update(data)
        process.stdout.write(data)
    process.stderr.write(digest.hexdigest().encode() + b"\n")
    process.exit(5)


@pytest.fixture(scope="module")
def server() -> Iterator[AsyncSSHServer]:
    loop = asyncio.new_event_loop()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = asyncssh.import_authorized_keys(USER_KEY.openssh_public() + "\n")
    started = threading.Event()
    ports: list[int] = []

    async def start() -> asyncssh.SSHAcceptor:
        acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=_Server,
            server_host_keys=[host_key],
            authorized_client_keys=authorized,
            process_factory=_process,
            encoding=None,
        )
        ports.append(acceptor.sockets[0].getsockname()[1])
        started.set()
        return acceptor

    def run() -> None:
        asyncio.set_event_loop(loop)
        acceptor = loop.run_until_complete(start())
        loop.run_forever()
        acceptor.close()
        loop.run_until_complete(acceptor.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(TIMEOUT)
    yield AsyncSSHServer(port=ports[0], host_key=host_key.public_data)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(TIMEOUT)


def connect(server: AsyncSSHServer, **credentials: Any) -> BlockingClient:
    return BlockingClient(server.port, server.host_key, **credentials)


@pytest.mark.parametrize(
    "credentials",
    [
        {"keys": [USER_KEY]},
        {"password": PASSWORD},
        {"keys": [HostKey.generate()], "password": PASSWORD},
    ],
    ids=["key", "password", "wrong-key-then-password"],
)
def test_login_and_pty(server: AsyncSSHServer, credentials: dict[str, object]) -> None:
    client = connect(server, **credentials)
    try:
        channel = client.open_session()
        session = client.conn.session(channel)
        session.request_pty(term="xterm-256color", size=WindowSize(cols=132, rows=43))
        session.request_exec("term")
        client.wait_closed(channel)
        answers = [e for e in client.session_events(channel) if isinstance(e, RequestAnswered)]
        assert [a.accepted for a in answers] == [True, True]
        output = client.output(channel)
        assert output.replace(b"\r\n", b"\n") == b"xterm-256color 132x43\n"
        assert session.exit_status == 0
    finally:
        client.close()


def test_data_both_ways_more_than_a_window(server: AsyncSSHServer) -> None:
    client = connect(server, keys=[USER_KEY])
    payload = bytes(range(256)) * (3 * 1024 * 1024 // 256)
    try:
        channel = client.open_session()
        client.conn.session(channel).request_exec("sha256")
        client.until(lambda: client.conn.session(channel).program_started)
        client.send_all(channel, payload)
        assert client.output(channel) == payload
        assert client.output(channel, 1).decode().strip() == hashlib.sha256(payload).hexdigest()
        assert ExitStatusReceived(status=5) in client.session_events(channel)
    finally:
        client.close()


def test_wrong_credentials_give_up(server: AsyncSSHServer) -> None:
    client = connect(server, password="wrong")
    with pytest.raises(ProtocolError) as info:
        client.until(lambda: client.conn.authenticated)
    assert info.value.reason is DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE
    client.sock.sendall(client.conn.data_to_send())  # the DISCONNECT
    client.sock.close()


def test_keyboard_interactive(server: AsyncSSHServer) -> None:
    challenges: list[Challenge] = []

    def respond(challenge: Challenge) -> list[str]:
        challenges.append(challenge)
        return ["42"]

    client = connect(server, respond=respond)
    try:
        client.until(lambda: client.conn.authenticated)
    finally:
        client.close()
    assert challenges == [
        Challenge(
            name="Second factor",
            instruction="Type the code.",
            prompts=(Prompt(text="Code: ", echo=True),),
        )
    ]
    assert AuthenticationSucceeded(username="alice", method="keyboard-interactive") in (
        client.events
    )
