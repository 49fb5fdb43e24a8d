"""What an application sees of one session channel: typed input, awaitable output.

An application is ``async def app(session)``, called once the client's shell, exec
or subsystem request was granted, with the PTY and the environment settled. Input
comes as typed events from :meth:`Session.receive` (or ``async for``): data, window
changes, signals, breaks and EOF all arrive in the order the client sent them, so a
resize never interrupts a pending read the way AsyncSSH's ``read()`` raises
``TerminalSizeChanged``. Flow control runs end to end, as in sshd: output awaits
the client's window, so a client that stops reading slows the application down;
the client's window grows only as the application takes its input, so an
application that stops reading slows the client down.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeAlias

import anyio

from ptycore.requests import PtyRequest, WindowSize
from ptycore.session import ProgramRequest, ServerSession

from ._tasks import Wakeup, create_wakeup

__all__ = [
    "EOF",
    "Break",
    "ChannelLink",
    "Data",
    "InputEvent",
    "Session",
    "Signal",
    "WindowChange",
]

MAX_DATA_EVENT: Final = 256 * 1024
"""Largest :class:`Data` event made by joining data that arrived back to back."""

SSH_EXTENDED_DATA_STDERR: Final = 1
"""RFC 4254 5.2: the extended data type of standard error."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Data:
    """Bytes the client sent (the program's standard input)."""

    data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowChange:
    """The client's terminal was resized (RFC 4254 6.7); :attr:`Session.pty` has it too."""

    size: WindowSize


@dataclass(frozen=True, kw_only=True, slots=True)
class EOF:
    """The client sends no more data (RFC 4254 5.3); other events may still follow."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Signal:
    """A signal for the program (RFC 4254 6.9), name without ``SIG``.

    Call :meth:`accept` once it is delivered or :meth:`reject` if it cannot be;
    undecided, it is rejected when the application asks for the next event (replies
    leave in request order, RFC 4254 5.4, so one open decision would hold back the
    rest).
    """

    name: str
    _decide: Callable[[bool], None] = field(repr=False, compare=False)

    def accept(self) -> None:
        """The signal was delivered."""
        self._decide(True)

    def reject(self) -> None:
        """The signal was not delivered."""
        self._decide(False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Break:
    """A break on the PTY (RFC 4335); decide it like a :class:`Signal`."""

    length_ms: int
    _decide: Callable[[bool], None] = field(repr=False, compare=False)

    def accept(self) -> None:
        """The break was sent."""
        self._decide(True)

    def reject(self) -> None:
        """The break was not sent."""
        self._decide(False)


InputEvent: TypeAlias = Data | WindowChange | Signal | Break | EOF
"""Everything :meth:`Session.receive` returns."""


class ChannelLink(Protocol):
    """What a session needs from the connection that carries its channel."""

    @property
    def machine(self) -> ServerSession:
        """The channel's session machine."""
        ...

    def writable(self) -> int:
        """Bytes of data the connection takes now (window plus its buffer)."""
        ...

    def send_data(self, data: bytes, data_type: int | None) -> None:
        """Queue data that fits in :meth:`writable`."""
        ...

    def consume(self, size: int) -> None:
        """The application took ``size`` received bytes: the client may send more
        (a WINDOW_ADJUST once enough is taken), sent soon without waiting."""
        ...

    async def flush(self) -> None:
        """Send what the connection has queued, now."""
        ...

    def flush_soon(self) -> None:
        """Have what the connection has queued sent without waiting for it."""
        ...


class Session:
    """One session channel, for an application running on anyio.

    Created by the server; applications receive it. Only one task may call
    :meth:`receive` at a time; writes from several tasks are fine.
    """

    __slots__ = (
        "_arrived",
        "_broken",
        "_finished",
        "_inbox",
        "_inbox_bytes",
        "_link",
        "_receiving",
        "_undecided",
        "_username",
        "_writable",
    )

    def __init__(self, link: ChannelLink, *, username: str) -> None:
        self._link = link
        self._username = username
        # None while empty: an idle session keeps no queue (an empty deque is 760 bytes).
        self._inbox: collections.deque[InputEvent] | None = None
        self._inbox_bytes = 0
        self._arrived: Wakeup | None = None  # the receiver's, while it waits
        self._writable: anyio.Event | None = None
        self._undecided: Signal | Break | None = None
        self._receiving = False
        self._broken = False  # the client closed the channel or the connection is gone
        self._finished = False  # we sent CLOSE (exit, exit_signal or close)

    # -- what the client asked for --------------------------------------------------

    @property
    def username(self) -> str:
        """The name the client logged in with."""
        return self._username

    @property
    def pty(self) -> PtyRequest | None:
        """The granted PTY as it stands now (size after window changes), or None."""
        return self._link.machine.pty

    @property
    def environment(self) -> Mapping[str, str]:
        """The environment variables that were accepted."""
        return self._link.machine.environment

    @property
    def original_command(self) -> str | None:
        """Under a forced command (``command=`` in authorized_keys), the command or
        subsystem the client asked for, as sshd's ``SSH_ORIGINAL_COMMAND``; else
        ``None``."""
        return self._link.machine.original_command

    @property
    def program(self) -> ProgramRequest:
        """The shell, exec or subsystem request that started this application (an
        ``exec`` of the forced command, under one)."""
        program = self._link.machine.program
        if program is None:  # the server starts applications only after the grant
            raise RuntimeError("the session has no program yet")
        return program

    @property
    def closed(self) -> bool:
        """Whether the channel is closed (by either side) or the connection is gone."""
        return self._broken or self._finished

    # -- input ----------------------------------------------------------------------

    async def receive(self) -> InputEvent:
        """The next input event, waiting for one if needed.

        Raises :class:`anyio.EndOfStream` once the channel is closed and every
        event before the close was delivered.
        """
        return await self._receive(anyio.EndOfStream)

    def __aiter__(self) -> Session:
        return self

    def __anext__(self) -> Coroutine[Any, Any, InputEvent]:
        # Not a coroutine awaiting receive(): an ``async for`` that waits for input
        # keeps one frame less (about 240 bytes per idle session).
        return self._receive(StopAsyncIteration)

    async def _receive(self, end: type[Exception]) -> InputEvent:
        """:meth:`receive`, raising ``end`` once the channel is closed."""
        if self._receiving:
            raise anyio.BusyResourceError("receiving")
        self._settle()
        self._receiving = True
        try:
            while (inbox := self._inbox) is None:
                if self.closed:
                    raise end
                self._arrived = arrived = create_wakeup()
                await arrived.wait()
        finally:
            self._receiving = False
        event = inbox.popleft()
        if isinstance(event, Data):
            event = self._join(event, inbox)
            self._inbox_bytes -= len(event.data)
            # The client's window grows by what the application took, not by what
            # arrived (session.c: sshd adjusts as it writes to the program), so the
            # inbox holds at most one window (ConnectionConfig.window_size).
            self._link.consume(len(event.data))
        elif isinstance(event, Signal | Break):
            self._undecided = event
        if not inbox:
            self._inbox = None
        return event

    def _join(self, first: Data, inbox: collections.deque[InputEvent]) -> Data:
        """``first`` and the Data right behind it, up to :data:`MAX_DATA_EVENT` bytes.

        A client sends at most 32 KiB per packet; handing the application what has
        arrived in one piece saves it a write (and a wake-up) per packet.
        """
        if not inbox or not isinstance(inbox[0], Data):
            return first
        pieces = [first.data]
        size = len(first.data)
        while inbox:
            following = inbox[0]
            if not isinstance(following, Data) or size + len(following.data) > MAX_DATA_EVENT:
                break
            inbox.popleft()
            pieces.append(following.data)
            size += len(following.data)
        return Data(data=b"".join(pieces))

    # -- output ---------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Send ``data`` on standard output, waiting while the client's window is full.

        Raises :class:`anyio.ClosedResourceError` after :meth:`exit` or
        :meth:`close`, :class:`anyio.BrokenResourceError` once the client closed
        the channel or the connection is gone.
        """
        await self._send(bytes(data), None)

    async def write_stderr(self, data: bytes) -> None:
        """Send ``data`` on standard error (extended data type 1), like :meth:`write`."""
        await self._send(bytes(data), SSH_EXTENDED_DATA_STDERR)

    async def send_eof(self) -> None:
        """No more output (RFC 4254 5.3); the exit status may still follow."""
        if self.closed or self._link.machine.eof_sent:
            return
        self._link.machine.send_eof()
        await self._link.flush()

    async def exit(self, status: int) -> None:
        """End the session as sshd does: EOF, ``exit-status`` (all 32 bits), CLOSE.

        Output still waiting for the client's window goes first. Does nothing if
        the session is already closed.
        """
        await self._finish(lambda machine: machine.send_exit_status(status))

    async def exit_signal(
        self, name: str, *, core_dumped: bool = False, message: str = ""
    ) -> None:
        """End the session as killed by signal ``name`` (without ``SIG``, RFC 4254 6.10)."""
        await self._finish(
            lambda machine: machine.send_exit_signal(
                name, core_dumped=core_dumped, message=message
            )
        )

    async def close(self) -> None:
        """Close the channel without an exit report."""
        await self._finish(None)

    async def aclose(self) -> None:
        """Same as :meth:`close`, for ``contextlib.aclosing`` and anyio's habits."""
        await self.close()

    # -- called by the server ---------------------------------------------------------

    @property
    def input_buffered(self) -> int:
        """Data bytes received and not yet taken by the application: at most the
        channel's receive window, which reopens only as the application reads."""
        return self._inbox_bytes

    def deliver(self, event: InputEvent) -> None:
        """Queue an input event for the application."""
        if isinstance(event, Data):
            self._inbox_bytes += len(event.data)
        if self._inbox is None:
            self._inbox = collections.deque()
        self._inbox.append(event)
        self._wake_receiver()

    def window_grew(self) -> None:
        """The client's window grew: wake a waiting writer."""
        if self._writable is not None:
            self._writable.set()
            self._writable = None

    def channel_closed(self) -> None:
        """The client closed the channel, or the connection is gone."""
        self._broken = True
        self._wake_receiver()
        self.window_grew()

    async def finish_default(self, *, failed: bool) -> None:
        """The application returned (status 0) or raised (status 1, as Python's own
        exit status for an uncaught exception) without ending the session."""
        await self.exit(1 if failed else 0)

    # -- internals ----------------------------------------------------------------------

    def _wake_receiver(self) -> None:
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    def _settle(self) -> None:
        """Reject the last signal or break if the application did not decide it."""
        undecided, self._undecided = self._undecided, None
        if undecided is not None:
            undecided.reject()

    def _check_writable(self) -> None:
        if self._finished:
            raise anyio.ClosedResourceError
        if self._broken:
            raise anyio.BrokenResourceError
        if self._link.machine.eof_sent:
            raise anyio.ClosedResourceError

    async def _send(self, data: bytes, data_type: int | None) -> None:
        while True:
            self._check_writable()
            if not data:
                return
            room = self._link.writable()
            if room == 0:
                # Shared by every waiting writer (stdout and stderr pumps, say).
                writable = self._writable or anyio.Event()
                self._writable = writable
                await writable.wait()
                continue
            chunk, data = data[:room], data[room:]
            self._link.send_data(chunk, data_type)
            await self._link.flush()

    async def _finish(self, report: Callable[[ServerSession], None] | None) -> None:
        if self.closed:
            return
        self._settle()
        self._finished = True
        machine = self._link.machine
        if not machine.eof_sent:
            machine.send_eof()
        if report is not None:
            report(machine)
        machine.close()
        self._wake_receiver()
        self.window_grew()  # a writer still waiting learns that the session ended
        await self._link.flush()
