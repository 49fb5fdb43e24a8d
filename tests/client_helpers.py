"""ClientConnection on a blocking loopback socket, for tests against real servers.

Every read waits at most :data:`TIMEOUT`, so a server that goes silent fails the
test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Sequence

from ptycore.auth import Challenge, UserKey
from ptycore.client import ClientConfig, ClientConnection, Event
from ptycore.connection import ChannelClosed, ChannelDataReceived, ChannelOpened, SessionEvent
from ptycore.session import ClientEvent, ClientSession, ServerEvent

TIMEOUT = 20.0


class BlockingClient:
    """A ClientConnection to 127.0.0.1:``port``, pumped until a condition holds.

    The server's host key is trusted when its blob is ``host_key``; ``offered`` keeps
    every ``(algorithm, blob)`` the client was asked to trust.
    """

    def __init__(
        self,
        port: int,
        host_key: bytes,
        *,
        username: str = "alice",
        config: ClientConfig | None = None,
        keys: Sequence[UserKey] = (),
        password: str | None = None,
        respond: Callable[[Challenge], Sequence[str]] | None = None,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        # Each key exchange of a transfer would otherwise wait on Nagle's algorithm.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.offered: list[tuple[str, bytes]] = []

        def verify(algorithm: str, blob: bytes) -> bool:
            self.offered.append((algorithm, blob))
            return blob == host_key

        self.conn = ClientConnection(
            config, username, verify_host_key=verify, keys=keys, password=password, respond=respond
        )
        self.events: list[Event] = []

    def until(self, done: Callable[[], bool]) -> None:
        """Send what is queued and read until ``done()``, running the connection's
        timer (a rekey by time) when it is due."""
        while True:
            self.sock.sendall(self.conn.data_to_send())
            if done():
                return
            timer = self.conn.get_timer()
            wait = TIMEOUT if timer is None else min(TIMEOUT, timer - time.monotonic())
            self.sock.settimeout(max(wait, 0.001))
            try:
                data = self.sock.recv(1 << 18)
            except TimeoutError:
                if wait >= TIMEOUT:
                    raise  # nothing from the server within TIMEOUT: a hung test
                self.events += self.conn.handle_timer(time.monotonic())
                continue
            assert data, "the server hung up"
            self.events += self.conn.receive_data(data, now=time.monotonic())

    def open_session(self) -> int:
        """Log in (if not yet) and open a session channel."""
        self.until(lambda: self.conn.authenticated)
        channel = self.conn.open_session()
        self.until(lambda: ChannelOpened(channel_id=channel) in self.events)
        return channel

    def run(self, command: str) -> tuple[int, ClientSession]:
        """Open a session, run ``command`` and read until the server closed it."""
        channel = self.open_session()
        session = self.conn.session(channel)
        session.request_exec(command)
        self.wait_closed(channel)
        return channel, session

    def wait_closed(self, channel: int) -> None:
        """Read until the server closed ``channel``."""
        self.until(lambda: ChannelClosed(channel_id=channel) in self.events)

    def session_events(self, channel: int) -> list[ServerEvent | ClientEvent]:
        """What the session machine of ``channel`` reported, in order."""
        return [
            e.event for e in self.events if isinstance(e, SessionEvent) and e.channel_id == channel
        ]

    def output(self, channel: int, data_type: int | None = None) -> bytes:
        """All data received on ``channel`` (``data_type`` 1: stderr)."""
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, ChannelDataReceived)
            and e.channel_id == channel
            and e.data_type == data_type
        )

    def send_all(self, channel: int, payload: bytes) -> None:
        """Send ``payload`` as the peer's window allows, then EOF, reading meanwhile
        (the program's output too), until the server closes ``channel``."""
        pending = memoryview(payload)
        eof_sent = False
        while ChannelClosed(channel_id=channel) not in self.events:
            n = min(len(pending), self.conn.writable(channel))
            if n:
                self.conn.send_data(channel, bytes(pending[:n]))
                pending = pending[n:]
            if not pending and not eof_sent:
                self.conn.send_eof(channel)
                eof_sent = True
            seen = len(self.events)
            self.until(lambda seen=seen: len(self.events) > seen)  # type: ignore[misc]

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Say goodbye and close the socket."""
        self.conn.disconnect()
        # The server may have hung up first, as sshd does once its session is over.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(self.conn.data_to_send())
        self.sock.close()
