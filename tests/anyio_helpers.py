"""An in-memory driver for ptycore_anyio applications: the core's own client
connection layer, wired to a server connection layer and the adapter's router.

No transport and no sockets: payloads move between two real
:class:`ptycore.connection.Connection` objects, so the applications meet the same
windows, replies and session rules as over the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc

from ptycore.connection import (
    ChannelClosed,
    ChannelDataReceived,
    ChannelEOFReceived,
    Connection,
    ConnectionConfig,
    ConnectionEvent,
    SessionEvent,
)
from ptycore.modes import TerminalModes
from ptycore.requests import WindowSize
from ptycore.session import (
    ClientSession,
    ExitSignalReceived,
    ExitStatusReceived,
    RequestAnswered,
    Role,
    ServerSession,
    SessionPolicy,
)
from ptycore_anyio import Application
from ptycore_anyio._channels import SessionRouter

DEFAULT_SIZE = WindowSize(cols=80, rows=24)

TIMEOUT = 10.0
"""Seconds any single wait in these tests may take before the test fails."""


@dataclass
class ClientView:
    """What the client side saw on its channel."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    answers: list[RequestAnswered] = field(default_factory=list)
    exit_status: int | None = None
    exit_signal: ExitSignalReceived | None = None
    eof: bool = False
    closed: bool = False
    order: list[str] = field(default_factory=list)


class ServerChannels:
    """The server's connection layer with ServerConnection's channel verbs."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def session(self, channel_id: int) -> ServerSession | ClientSession:
        return self.connection.session(channel_id)

    def writable(self, channel_id: int) -> int:
        return self.connection.writable(channel_id)

    def send_data(self, channel_id: int, data: bytes) -> None:
        self.connection.send_data(channel_id, data)

    def send_stderr(self, channel_id: int, data: bytes) -> None:
        self.connection.send_data(channel_id, data, 1)

    def consume_data(self, channel_id: int, size: int) -> bool:
        return self.connection.consume(channel_id, size)


class MemoryPair:
    """A client connection layer talking to an anyio application in memory."""

    def __init__(
        self,
        app: Application,
        task_group: anyio.abc.TaskGroup,
        *,
        client_window: int = 64 * 32768,
        accept_env: tuple[str, ...] = ("LANG", "LC_*"),
        subsystems: tuple[str, ...] = (),
    ) -> None:
        policy = SessionPolicy(accept_env=accept_env)
        self.server = Connection(
            Role.SERVER, ConnectionConfig(session_policy=policy, auto_consume=False)
        )
        self.client = Connection(Role.CLIENT, ConnectionConfig(window_size=client_window))
        self.router = SessionRouter(
            ServerChannels(self.server),
            app=app,
            task_group=task_group,
            flush=self._flush,
            flush_soon=self.pump,
            username="tester",
            subsystems=subsystems,
        )
        self.view = ClientView()
        self.hold = False  # True: the client stops reading what the server sends
        self._pumping = False
        self._changed = anyio.Event()
        self.channel = self.client.open_session()
        self.pump()

    @property
    def session(self) -> ClientSession:
        """The client's session machine."""
        session = self.client.session(self.channel)
        assert isinstance(session, ClientSession)
        return session

    def pump(self) -> None:
        """Move payloads both ways until both sides are quiet.

        Not re-entrant: a flush asked for while payloads are being delivered is done
        by the loop already running (the network's connection task works the same way).
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            self._pump()
        finally:
            self._pumping = False

    def _pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for payload in self.client.payloads_to_send():
                moved = True
                for event in self.server.receive_payload(payload):
                    self.router.handle(event)
            if not self.hold:
                for payload in self.server.payloads_to_send():
                    moved = True
                    for event in self.client.receive_payload(payload):
                        self._client_event(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def _flush(self) -> None:
        self.pump()

    def _client_event(self, event: ConnectionEvent) -> None:
        view = self.view
        if isinstance(event, ChannelDataReceived):
            (view.stdout if event.data_type is None else view.stderr).extend(event.data)
            view.order.append("data")
        elif isinstance(event, ChannelEOFReceived):
            view.eof = True
            view.order.append("eof")
        elif isinstance(event, ChannelClosed):
            view.closed = True
            view.order.append("close")
        elif isinstance(event, SessionEvent):
            inner = event.event
            if isinstance(inner, RequestAnswered):
                view.answers.append(inner)
            elif isinstance(inner, ExitStatusReceived):
                view.exit_status = inner.status
                view.order.append("exit-status")
            elif isinstance(inner, ExitSignalReceived):
                view.exit_signal = inner
                view.order.append("exit-signal")

    async def wait_for(self, condition: Callable[[ClientView], bool]) -> None:
        """Wait until ``condition`` holds for what the client saw."""
        with anyio.fail_after(TIMEOUT):
            while not condition(self.view):
                await self._changed.wait()

    # -- the client's verbs ----------------------------------------------------------

    def start(
        self,
        *,
        pty: bool = True,
        command: str | None = None,
        size: WindowSize = DEFAULT_SIZE,
        term: str = "xterm-256color",
        modes: TerminalModes | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """pty-req (if ``pty``), env, then shell or exec, as OpenSSH's client sends them."""
        session = self.session
        if pty:
            session.request_pty(term=term, size=size, modes=modes or TerminalModes())
        for name, value in (env or {}).items():
            session.request_env(name, value)
        if command is None:
            session.request_shell()
        else:
            session.request_exec(command)
        self.pump()

    def send(self, data: bytes) -> None:
        self.client.send_data(self.channel, data)
        self.pump()

    def send_eof(self) -> None:
        self.session.send_eof()
        self.pump()

    def resize(self, size: WindowSize) -> None:
        self.session.change_window(size)
        self.pump()

    def signal(self, name: str) -> None:
        self.session.send_signal(name)
        self.pump()

    def send_break(self) -> None:
        self.session.send_break(want_reply=True)
        self.pump()

    def close(self) -> None:
        self.session.close()
        self.pump()

    def release(self) -> None:
        """The client reads again."""
        self.hold = False
        self.pump()


@contextlib.asynccontextmanager
async def memory_pair(app: Application, **options: object) -> AsyncIterator[MemoryPair]:
    """A :class:`MemoryPair` whose applications are cancelled on the way out."""
    async with anyio.create_task_group() as tasks:
        pair = MemoryPair(app, tasks, **options)  # type: ignore[arg-type]
        yield pair
        tasks.cancel_scope.cancel()
