"""One connection's session channels: core events in, applications started and fed.

The connection layer of the core (:class:`ptycore.connection.Connection`, which
:class:`~ptycore.server.ServerConnection` drives) reports what happened on each
channel; this router decides what the rules leave to the server (a PTY, accepted
environment variables, the program), starts the application once the program
request is granted, and hands it every later input event in arrival order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol, TypeAlias

import anyio
import anyio.abc

from ptycore.connection import (
    ChannelClosed,
    ChannelDataReceived,
    ChannelEOFReceived,
    ChannelOpened,
    ChannelWritable,
    ConnectionEvent,
    SessionEvent,
)
from ptycore.requests import (
    BreakRequest,
    EnvRequest,
    ExecRequest,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
)
from ptycore.session import (
    ClientSession,
    RequestReceived,
    RequestRefused,
    ServerSession,
    SessionState,
    WindowChanged,
)

from ._session import EOF, Break, Data, Session, Signal, WindowChange
from ._tasks import TaskStarter

__all__ = ["Application", "ChannelCore", "SessionRouter"]

logger = logging.getLogger("ptycore.anyio")

Application: TypeAlias = Callable[[Session], Awaitable[None]]
"""``async def app(session)``: runs one session, from the granted program to its end."""


class ChannelCore(Protocol):
    """The part of the core's connection layer the router uses."""

    def session(self, channel_id: int) -> ServerSession | ClientSession:
        """The session machine of a channel."""
        ...

    def writable(self, channel_id: int) -> int:
        """How many data bytes the channel takes now."""
        ...

    def send_data(self, channel_id: int, data: bytes) -> None:
        """Queue data on a channel."""
        ...

    def send_stderr(self, channel_id: int, data: bytes) -> None:
        """Queue extended data of type 1 (stderr) on a channel."""
        ...

    def consume_data(self, channel_id: int, size: int) -> bool:
        """Give back window for received bytes now used (``auto_consume`` off);
        whether a WINDOW_ADJUST is now due."""
        ...


class _Link:
    """A :class:`~ptycore_anyio.Session`'s way to its channel, and what the router
    keeps of the channel (one object per channel: an idle session stays small)."""

    __slots__ = ("_channel_id", "_core", "_router", "machine", "session", "started")

    def __init__(
        self, router: SessionRouter, channel_id: int, machine: ServerSession, username: str
    ) -> None:
        self._router = router
        self._core = router.core
        self._channel_id = channel_id
        self.machine = machine  # kept: the core forgets the channel once both CLOSEs crossed
        self.session = Session(self, username=username)
        self.started = False  # the application runs

    def writable(self) -> int:
        try:
            return self._core.writable(self._channel_id)
        except KeyError:  # both CLOSEs crossed: nothing more can be sent
            return 0

    def send_data(self, data: bytes, data_type: int | None) -> None:
        if data_type is None:
            self._core.send_data(self._channel_id, data)
        else:  # the session sends only stderr (RFC 4254 5.2: the one type defined)
            self._core.send_stderr(self._channel_id, data)

    def consume(self, size: int) -> None:
        # The core decides when the client's window is worth a WINDOW_ADJUST.
        if self._core.consume_data(self._channel_id, size):  # a gone channel: False
            self._router.flush_soon()

    async def flush(self) -> None:
        await self._router.flush()

    def flush_soon(self) -> None:
        self._router.flush_soon()


class SessionRouter:
    """Routes one connection's channel events to :class:`Session` objects.

    Pty-req and env requests that passed the session rules are granted, as are
    ``shell`` and ``exec``; a ``subsystem`` only if its name is in ``subsystems``
    (sshd refuses those not in its configuration); X11 and agent forwarding are
    refused. Applications run in ``task_group``.
    """

    __slots__ = (
        "_app",
        "_links",
        "_subsystems",
        "_task_group",
        "_username",
        "core",
        "flush",
        "flush_soon",
        "running",
    )

    def __init__(
        self,
        core: ChannelCore,
        *,
        app: Application,
        task_group: TaskStarter,
        flush: Callable[[], Awaitable[None]],
        flush_soon: Callable[[], None],
        username: str,
        subsystems: Collection[str] = (),
    ) -> None:
        self.core = core
        self.flush = flush
        self.flush_soon = flush_soon
        self._app = app
        self._task_group = task_group
        self._username = username
        self._subsystems = frozenset(subsystems)
        self._links: dict[int, _Link] = {}
        self.running = 0  # applications started and not yet returned

    @property
    def sessions(self) -> tuple[Session, ...]:
        """The sessions whose channels are open."""
        return tuple(link.session for link in self._links.values())

    def handle(self, event: ConnectionEvent) -> None:
        """Act on one event of the connection layer."""
        if isinstance(event, ChannelOpened):
            machine = self.core.session(event.channel_id)
            if isinstance(machine, ServerSession):
                logger.info("session %d opened for %s", event.channel_id, self._username)
                self._links[event.channel_id] = _Link(
                    self, event.channel_id, machine, self._username
                )
            return
        link = self._links.get(getattr(event, "channel_id", -1))
        if link is None:
            return
        session = link.session
        if isinstance(event, SessionEvent):
            self._session_event(event.channel_id, link, event.event)
        elif isinstance(event, ChannelDataReceived):
            # RFC 4254 5.2: no extended data type is defined from client to server;
            # the machine took it, and there is nothing to hand it to: its window is
            # given back at once (the connection flushes after every read).
            if event.data_type is None:
                session.deliver(Data(data=event.data))
            else:
                self.core.consume_data(event.channel_id, len(event.data))
        elif isinstance(event, ChannelEOFReceived):
            session.deliver(EOF())
        elif isinstance(event, ChannelWritable):
            session.window_grew()
        elif isinstance(event, ChannelClosed):
            logger.info("session %d closed", event.channel_id)
            del self._links[event.channel_id]
            session.channel_closed()

    def connection_lost(self) -> None:
        """The connection is gone: every session is closed."""
        links, self._links = self._links, {}
        for link in links.values():
            link.session.channel_closed()

    # -- internals ---------------------------------------------------------------------

    def _session_event(self, channel_id: int, link: _Link, event: object) -> None:
        if isinstance(event, WindowChanged):
            logger.info("session %d: window-change to %s", channel_id, event.size)
            if link.started:
                link.session.deliver(WindowChange(size=event.size))
        elif isinstance(event, RequestRefused):
            logger.info(
                "session %d: %s refused, %s", channel_id, event.request.request_type, event.reason
            )
        elif isinstance(event, RequestReceived):
            self._decide_request(channel_id, link, event)

    def _decide_request(self, channel_id: int, link: _Link, event: RequestReceived) -> None:
        machine = link.machine
        session = link.session
        request = event.request
        handle = event.handle
        started = link.started
        if isinstance(request, SignalRequest | BreakRequest) and started:

            def decide(ok: bool) -> None:
                if machine.state is SessionState.ERROR or handle not in machine.undecided:
                    return  # answered FAILURE by the machine when the channel closed
                if ok:
                    machine.accept(handle)
                else:
                    machine.reject(handle)
                self.flush_soon()

            if isinstance(request, SignalRequest):
                session.deliver(Signal(name=request.name, _decide=decide))
            else:
                session.deliver(Break(length_ms=request.length_ms, _decide=decide))
            return
        # Under a forced command, judged by what the client asked for: sshd refuses a
        # subsystem missing from its configuration before the forced command could
        # run (session.c session_subsystem_req).
        asked = event.original if event.original is not None else request
        grant = isinstance(asked, PtyRequest | EnvRequest | ShellRequest | ExecRequest) or (
            isinstance(asked, SubsystemRequest) and asked.name in self._subsystems
        )
        logger.info(
            "session %d: %s %s",
            channel_id,
            request.request_type,
            "accepted" if grant else "rejected",
        )
        if grant:
            machine.accept(handle)
        else:
            machine.reject(handle)
        if machine.program_started and not started:
            link.started = True
            self.running += 1
            self._task_group.start_soon(self._run, channel_id, session, name="ptycore session")

    async def _run(self, channel_id: int, session: Session) -> None:
        try:
            try:
                await self._app(session)
            except (anyio.BrokenResourceError, anyio.EndOfStream):
                if not session.closed:
                    raise
                return  # the client went away under the application: nothing to report
            except Exception:
                logger.exception("session %d: application failed", channel_id)
                await session.finish_default(failed=True)
                return
            await session.finish_default(failed=False)
        finally:
            self.running -= 1
