"""ClientConnection over a loopback socket against a real server: AsyncSSH's."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import asyncssh
import pytest

from ptycore import DisconnectReason, ProtocolError
from ptycore.auth import AuthenticationSucceeded, Challenge, Prompt
from ptycore.client import ClientConnection, Event
from ptycore.connection import ChannelClosed, ChannelDataReceived, ChannelOpened, SessionEvent
from ptycore.requests import WindowSize
from ptycore.session import ExitStatusReceived, RequestAnswered
from ptycore.transport import HostKey

TIMEOUT = 20.0
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


class Client:
    """A ClientConnection on a blocking socket, pumped until a condition holds."""

    def __init__(self, server: AsyncSSHServer, **credentials: object) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        self.conn = ClientConnection(
            None,
            "alice",
            verify_host_key=lambda algorithm, blob: blob == server.host_key,
            **credentials,  # type: ignore[arg-type]
        )
        self.events: list[Event] = []

    def until(self, done: Callable[[], bool]) -> None:
        while True:
            self.sock.sendall(self.conn.data_to_send())
            if done():
                return
            data = self.sock.recv(65536)
            assert data, "the server hung up"
            self.events += self.conn.receive_data(data)

    def close(self) -> None:
        self.conn.disconnect()
        self.sock.sendall(self.conn.data_to_send())
        self.sock.close()


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
    client = Client(server, **credentials)
    try:
        client.until(lambda: client.conn.authenticated)
        channel = client.conn.open_session()
        client.until(lambda: ChannelOpened(channel_id=channel) in client.events)
        session = client.conn.session(channel)
        session.request_pty(term="xterm-256color", size=WindowSize(cols=132, rows=43))
        session.request_exec("term")
        client.until(lambda: ChannelClosed(channel_id=channel) in client.events)
        answers = [
            e.event
            for e in client.events
            if isinstance(e, SessionEvent) and isinstance(e.event, RequestAnswered)
        ]
        assert [a.accepted for a in answers] == [True, True]
        output = b"".join(e.data for e in client.events if isinstance(e, ChannelDataReceived))
        assert output.replace(b"\r\n", b"\n") == b"xterm-256color 132x43\n"
        assert session.exit_status == 0
    finally:
        client.close()


def test_data_both_ways_more_than_a_window(server: AsyncSSHServer) -> None:
    client = Client(server, keys=[USER_KEY])
    payload = bytes(range(256)) * (3 * 1024 * 1024 // 256)
    try:
        client.until(lambda: client.conn.authenticated)
        channel = client.conn.open_session()
        client.until(lambda: ChannelOpened(channel_id=channel) in client.events)
        client.conn.session(channel).request_exec("sha256")
        client.until(lambda: client.conn.session(channel).program_started)
        pending = payload
        received = bytearray()
        stderr = bytearray()
        while pending or ChannelClosed(channel_id=channel) not in client.events:
            n = min(len(pending), client.conn.writable(channel))
            if n:
                client.conn.send_data(channel, pending[:n])
                pending = pending[n:]
                if not pending:
                    client.conn.send_eof(channel)
            seen = len(client.events)
            client.until(lambda seen=seen: len(client.events) > seen)  # type: ignore[misc]
            for event in client.events[seen:]:
                if isinstance(event, ChannelDataReceived):
                    (stderr if event.data_type == 1 else received).extend(event.data)
        assert bytes(received) == payload
        assert stderr.decode().strip() == hashlib.sha256(payload).hexdigest()
        assert (
            SessionEvent(channel_id=channel, event=ExitStatusReceived(status=5)) in client.events
        )
    finally:
        client.close()


def test_wrong_credentials_give_up(server: AsyncSSHServer) -> None:
    client = Client(server, password="wrong")
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

    client = Client(server, respond=respond)
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
