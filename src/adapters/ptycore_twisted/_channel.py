"""A Conch session channel whose every request goes through ptycore's session machine.

Conch's own ``SSHSession`` dispatches requests by name (``request_pty_req``),
hands the size over as ``(rows, cols, ...)``, lets a second pty-req or an env after
the shell through, and sends replies in the order the handlers' Deferreds happen
to fire. Here the channel only moves bytes: each request is parsed and judged by
:class:`ptycore.ServerSession`, the application is asked only about what the
rules leave to it, and replies go out in the order the machine releases them
(RFC 4254 5.4), however late the application answers.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from twisted.conch.ssh.channel import SSHChannel
from twisted.internet import defer
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ptycore import ProtocolError
from ptycore.requests import (
    BreakRequest,
    ChannelRequest,
    EnvRequest,
    ExecRequest,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    WindowSize,
)
from ptycore.session import (
    CloseReceived,
    DataReceived,
    Discarded,
    EOFReceived,
    LocalProtocolError,
    Outgoing,
    OutgoingClose,
    OutgoingData,
    OutgoingEOF,
    OutgoingReply,
    OutgoingRequest,
    ProgramRequest,
    RequestReceived,
    RequestRefused,
    ServerSession,
    SessionPolicy,
    SessionState,
    WindowChanged,
)

from ._reactor import default_reactor

__all__ = [
    "INPUT_WINDOW",
    "MAX_OUTPUT_BUFFER",
    "OUTPUT_HIGH_WATER",
    "SessionChannel",
    "SessionProtocol",
    "SessionTransport",
]

_log = Logger(namespace="ptycore")

INPUT_WINDOW = 2 * 1024 * 1024
"""Receive window granted once the program starts: 2 MiB, OpenSSH's
``CHAN_SES_WINDOW_DEFAULT`` (64 packets of 32 KiB, ``channels.h``)."""

OUTPUT_HIGH_WATER = 256 * 1024
"""Output waiting for the client's window above which the application's producer is
paused (resumed when all of it is sent). OpenSSH stops reading the program's output
when its channel buffer holds more than the peer's window (``channels.c``
``channel_pre_open``)."""

MAX_OUTPUT_BUFFER = 16 * 1024 * 1024
"""Hard cap on output waiting for the client's window. An application that writes
past it without honouring its producer's pause has its session closed: a client
that stops reading must not make the server grow without bound."""


class PushProducer(Protocol):
    """What ``IPushProducer`` asks for, as a type mypy understands (zope interfaces
    are invisible to it)."""

    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def stopProducing(self) -> None: ...


class SessionProtocol:
    """Base class for applications: one instance per session channel.

    Override what you need; the defaults grant a PTY, the environment the policy
    lets through and a shell or a command, refuse subsystems, X11 and agent
    forwarding, and ignore input. Methods that decide return ``bool`` or a
    ``Deferred`` that fires with one; they are called one at a time, in the order
    the client sent its requests, so a PTY and the environment are settled before
    :meth:`program_requested` is asked. ``transport`` is set before any call.
    """

    transport: SessionTransport

    def make_connection(self, transport: SessionTransport) -> None:
        """Attach the session's transport (called once, when the channel opens)."""
        self.transport = transport

    def pty_requested(self, pty: PtyRequest) -> bool | defer.Deferred[bool]:
        """The client asks for a terminal; the rules already checked it."""
        return True

    def env_requested(self, name: str, value: str) -> bool | defer.Deferred[bool]:
        """An environment variable the policy's ``accept_env`` lets through."""
        return True

    def program_requested(self, program: ProgramRequest) -> bool | defer.Deferred[bool]:
        """A shell, a command or a subsystem, as the client asked for it;
        :meth:`session_started` follows a yes (under a forced command,
        ``transport.program`` is then an exec of it)."""
        return not isinstance(program, SubsystemRequest)

    def other_requested(self, request: ChannelRequest) -> bool | defer.Deferred[bool]:
        """Requests the rules leave to the application but ptycore has no hook for
        (X11 and agent forwarding): refused by default."""
        return False

    def session_started(self) -> None:
        """The program request was granted: start producing output."""

    def data_received(self, data: bytes) -> None:
        """Input from the client (its standard input)."""

    def window_changed(self, size: WindowSize) -> None:
        """The client's terminal was resized (``transport.pty`` has the new size)."""

    def signal_received(self, name: str) -> bool | defer.Deferred[bool]:
        """A signal (name without ``SIG``) the policy allows; say whether it was delivered."""
        return False

    def break_received(self, length_ms: int) -> bool | defer.Deferred[bool]:
        """A break (RFC 4335) on the granted PTY; say whether it was sent."""
        return False

    def eof_received(self) -> None:
        """The client will send no more input."""

    def session_closed(self) -> None:
        """The channel is gone (closed by either side, or the connection dropped).

        Called exactly once; release everything the session holds here.
        """


@implementer(IConsumer, IPushProducer)
class SessionTransport:
    """What an application sees of its session: the requests and the output side.

    It is an ``IConsumer`` (register the producer of your output, it is paused
    while the client is not reading) and an ``IPushProducer`` of the client's
    input (pause it and the client's window stops being refilled).
    """

    def __init__(self, channel: SessionChannel) -> None:
        self._channel = channel
        self._producer: PushProducer | None = None

    @property
    def reactor(self) -> Any:
        """The reactor the session runs on."""
        return self._channel.reactor

    @property
    def username(self) -> str:
        """The name the client logged in with."""
        return self._channel.username

    @property
    def pty(self) -> PtyRequest | None:
        """The granted PTY as it stands now (size after window changes), or None."""
        return self._channel.machine.pty

    @property
    def environment(self) -> Mapping[str, str]:
        """The environment variables that were accepted."""
        return self._channel.machine.environment

    @property
    def program(self) -> ProgramRequest | None:
        """The shell, exec or subsystem request, once granted (an ``exec`` of the
        forced command, under one)."""
        return self._channel.machine.program

    @property
    def original_command(self) -> str | None:
        """Under a forced command (``command=`` in authorized_keys), the command or
        subsystem the client asked for, as sshd's ``SSH_ORIGINAL_COMMAND``; else
        ``None``."""
        return self._channel.machine.original_command

    @property
    def closed(self) -> bool:
        """Whether the session is closed or closing; writes are dropped then."""
        return self._channel.finished

    def write(self, data: bytes) -> None:
        """Send ``data`` on standard output."""
        self._channel.send_output(data, stderr=False)

    def write_stderr(self, data: bytes) -> None:
        """Send ``data`` on standard error (extended data type 1)."""
        self._channel.send_output(data, stderr=True)

    def send_eof(self) -> None:
        """No more output (EOF); requests such as the exit status may follow."""
        self._channel.run(lambda machine: None if machine.eof_sent else machine.send_eof())

    def exit(self, status: int) -> None:
        """End the session: EOF, ``exit-status`` (all 32 bits), CLOSE."""
        self._channel.finish(lambda machine: machine.send_exit_status(status))

    def exit_signal(self, name: str, *, core_dumped: bool = False, message: str = "") -> None:
        """End the session as killed by signal ``name`` (without ``SIG``)."""
        self._channel.finish(
            lambda machine: machine.send_exit_signal(
                name, core_dumped=core_dumped, message=message
            )
        )

    def close(self) -> None:
        """Close the channel without an exit report."""
        self._channel.finish(None)

    # IConsumer
    def registerProducer(self, producer: PushProducer, streaming: bool) -> None:
        """Register the producer of this session's output (push producers only)."""
        if not streaming:
            raise ValueError("only streaming (push) producers are supported")
        if self._producer is not None:
            raise RuntimeError("a producer is already registered")
        self._producer = producer
        self._channel.update_backpressure()

    def unregisterProducer(self) -> None:
        """Forget the registered producer."""
        self._producer = None

    @property
    def producer(self) -> PushProducer | None:
        """The registered producer of output, if any."""
        return self._producer

    # IPushProducer of the client's input
    def pauseProducing(self) -> None:
        """Stop refilling the client's window: its input stops after what is in flight."""
        self._channel.pause_input()

    def resumeProducing(self) -> None:
        """Refill the client's window again."""
        self._channel.resume_input()

    def stopProducing(self) -> None:
        """The consumer of the input is gone (a program's stdin closed): stop the
        input for good. The session stays open for the program's exit report."""
        self._channel.pause_input()


class SessionChannel(SSHChannel):
    """A ``session`` channel (RFC 4254 6.1) run by :class:`ptycore.ServerSession`.

    Opens with a receive window of 0 and grants :data:`INPUT_WINDOW` once the
    program starts, as ``sshd`` does (``serverloop.c`` ``server_request_session``).
    Works with Conch's plain ``SSHConnection``, which does not tell a channel
    whether a request wants a reply: every request is fed to the machine as if it
    did, and Conch drops the replies nobody asked for.
    """

    name = b"session"

    def __init__(
        self,
        protocol: SessionProtocol,
        *,
        policy: SessionPolicy | None = None,
        reactor: Any = None,
        username: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # RFC 4254 5.1: the initial window is ours to choose; 0 until the program
        # starts, so no input can arrive before there is something to read it.
        self.localWindowSize = 0
        self.localWindowLeft = 0
        self.reactor = default_reactor() if reactor is None else reactor
        self.username = username
        self.machine = ServerSession(policy)
        self.protocol = protocol
        self.session_transport = SessionTransport(self)
        self.finished = False
        self._replies: collections.deque[defer.Deferred[bool]] = collections.deque()
        self._ordered: collections.deque[Outgoing] = collections.deque()
        self._queued_bytes = 0
        self._asking: defer.Deferred[None] = defer.succeed(None)
        self._started = False
        self._input_paused = False
        self._producer_paused = False
        self._gone = False
        self._holding = False
        self._held: list[Outgoing] = []
        self._handlers: Mapping[type, Callable[[Any], bool | defer.Deferred[bool]]] = {
            PtyRequest: protocol.pty_requested,
            EnvRequest: lambda r: protocol.env_requested(r.name, r.value),
            ShellRequest: protocol.program_requested,
            ExecRequest: protocol.program_requested,
            SubsystemRequest: protocol.program_requested,
            SignalRequest: lambda r: protocol.signal_received(r.name),
            BreakRequest: lambda r: protocol.break_received(r.length_ms),
        }
        protocol.make_connection(self.session_transport)

    # -- Conch's side ------------------------------------------------------------

    def logPrefix(self) -> str:
        """Name the channel in Twisted's log lines."""
        return f"ptycore session {self.id}"

    def channelOpen(self, specificData: bytes) -> None:
        """The client opened the channel (RFC 4254 6.1)."""
        _log.info("session {id} opened for {user}", id=self.id, user=self.username)

    def requestReceived(self, requestType: bytes, data: bytes) -> defer.Deferred[bool]:
        """Judge the request with the machine; the Deferred fires with its reply, in order."""
        return self.channel_request(requestType, data, want_reply=True)

    def channel_request(
        self, request_type: bytes, payload: bytes, *, want_reply: bool
    ) -> defer.Deferred[bool]:
        """Feed one CHANNEL_REQUEST to the machine (RFC 4254 5.4).

        The returned Deferred fires with the reply once the machine releases it;
        it never fires for a request the machine discards (after our CLOSE) or
        when the connection is being dropped for a protocol error.
        """
        name = request_type.decode("ascii", "backslashreplace")
        try:
            event = self.machine.receive_channel_request(request_type, payload, want_reply)
        except ProtocolError as error:
            self._protocol_error(error)
            return defer.Deferred()
        except LocalProtocolError:  # already in ERROR: the connection is going away
            return defer.Deferred()
        if isinstance(event, Discarded):
            _log.info("session {id}: {name} discarded after CLOSE", id=self.id, name=name)
            return defer.Deferred()
        self._hold_until_returned()
        reply: defer.Deferred[bool] = defer.Deferred()
        if want_reply:
            self._replies.append(reply)
        if isinstance(event, RequestRefused):
            reason = event.reason
            _log.info(
                "session {id}: {name} refused, {reason}", id=self.id, name=name, reason=reason
            )
        elif isinstance(event, WindowChanged):
            _log.info("session {id}: window-change to {size}", id=self.id, size=event.size)
            if self._started:
                self._call(self.protocol.window_changed, event.size)
        elif isinstance(event, RequestReceived):
            self._ask(event)
        self._flush()
        return reply

    def dataReceived(self, data: bytes) -> None:
        """Channel data (RFC 4254 5.2), only accepted once the program runs."""
        event = self._receive(lambda: self.machine.receive_data(data))
        if isinstance(event, DataReceived):
            self._call(self.protocol.data_received, event.data)

    def extReceived(self, dataType: int, data: bytes) -> None:
        """Extended data from a client has no meaning for a session (RFC 4254 5.2)."""
        self._receive(lambda: self.machine.receive_extended_data(dataType, data))

    def eofReceived(self) -> None:
        """The client sends no more data (RFC 4254 5.3)."""
        event = self._receive(self.machine.receive_eof)
        if isinstance(event, EOFReceived) and self._started:
            self._call(self.protocol.eof_received)
        # Before the program starts (``ssh host cmd < /dev/null`` sends EOF at once),
        # the application hears of it right after session_started.

    def closeReceived(self) -> None:
        """RFC 4254 5.3: answer CLOSE with CLOSE; output still waiting is dropped."""
        event = self._receive(self.machine.receive_close)
        if isinstance(event, CloseReceived):
            self.finished = True
            self._drop_output()
            self._flush()

    def closed(self) -> None:
        """Both CLOSEs crossed, or the connection dropped: tell the application, once."""
        if self._gone:
            return
        self._gone = True
        self.finished = True
        self._replies.clear()  # Conch can no longer send them; never fire
        _log.info("session {id} closed", id=self.id)
        self._call(self.protocol.session_closed)

    def addWindowBytes(self, data: int) -> None:
        """The client opened its window: send what waited, then wake the producer."""
        super().addWindowBytes(data)  # type: ignore[no-untyped-call]
        self._send_ordered()
        self.update_backpressure()

    # -- the application's side ----------------------------------------------------

    def run(self, step: Callable[[ServerSession], None]) -> None:
        """Apply one application call to the machine and send what it produced.

        Calls after the session closed are ignored: an application may still be
        finishing when the client goes away.
        """
        if self.finished or self._gone:
            return
        step(self.machine)
        self._flush()

    def finish(self, report: Callable[[ServerSession], None] | None) -> None:
        """EOF (if not sent), the exit report (if any), then CLOSE: ``sshd``'s order."""

        def steps(machine: ServerSession) -> None:
            if not machine.eof_sent:
                machine.send_eof()
            if report is not None:
                report(machine)
            machine.close()

        self.run(steps)
        self.finished = True

    def send_output(self, data: bytes, *, stderr: bool) -> None:
        """Queue output for the client, split later to its window and packet size."""
        if not data:
            return
        if stderr:
            self.run(lambda machine: machine.send_extended_data(data))
        else:
            self.run(lambda machine: machine.send_data(data))
        if self._buffered() > MAX_OUTPUT_BUFFER and not self.finished:
            _log.warn(
                "session {id}: client not reading, {n} bytes waiting; closing",
                id=self.id,
                n=self._buffered(),
            )
            self._drop_output()
            self.finish(None)

    def pause_input(self) -> None:
        """Stop refilling the receive window (Conch refills it when half is used)."""
        self._input_paused = True
        self.localWindowSize = 0

    def resume_input(self) -> None:
        """Refill the receive window to :data:`INPUT_WINDOW` again."""
        self._input_paused = False
        if self._started:
            self._open_window()

    def update_backpressure(self) -> None:
        """Pause the output producer above :data:`OUTPUT_HIGH_WATER`, resume when drained."""
        producer = self.session_transport.producer
        if producer is None:
            return
        waiting = self._buffered()
        if waiting > OUTPUT_HIGH_WATER and not self._producer_paused:
            self._producer_paused = True
            producer.pauseProducing()
        elif waiting == 0 and self._producer_paused:
            self._producer_paused = False
            producer.resumeProducing()

    # -- machinery ---------------------------------------------------------------------

    def _drop_output(self) -> None:
        """Forget output the client will never read, so EOF and CLOSE can go now."""
        self.buf = b""
        self.extBuf = []
        self._ordered = collections.deque(
            item for item in self._ordered if not isinstance(item, OutgoingData)
        )
        self._held = [item for item in self._held if not isinstance(item, OutgoingData)]
        self._queued_bytes = 0

    @property
    def _connection(self) -> Any:
        """Conch's ``SSHConnection``, set by Conch before the channel is used."""
        return self.conn

    def _buffered(self) -> int:
        return len(self.buf) + sum(len(chunk) for _, chunk in self.extBuf) + self._queued_bytes

    def _open_window(self) -> None:
        self.localWindowSize = INPUT_WINDOW
        if not self.finished and self.localWindowLeft < INPUT_WINDOW // 2:
            self._connection.adjustWindow(self, INPUT_WINDOW - self.localWindowLeft)

    def _receive(self, step: Callable[[], object]) -> object:
        try:
            return step()
        except ProtocolError as error:
            self._protocol_error(error)
        except LocalProtocolError:
            pass  # in ERROR already: the connection is being dropped
        return None

    def _protocol_error(self, error: ProtocolError) -> None:
        """h2's way: the goodbye goes out first, then the connection is dropped."""
        _log.warn("session {id}: protocol error, disconnecting: {error}", id=self.id, error=error)
        self.finished = True
        transport = self._connection.transport
        transport.sendDisconnect(int(error.reason), str(error).encode("utf-8"))

    def _ask(self, event: RequestReceived) -> None:
        """Ask the application, one request at a time, in the order they arrived.

        Under a forced command it is asked about the request the client sent (a
        subsystem it does not serve is refused, as sshd refuses one missing from
        its configuration before the forced command could run, ``session.c``
        ``session_subsystem_req``); once granted, the program is the forced exec.
        """
        request = event.original if event.original is not None else event.request
        handler = self._handlers.get(type(request), self.protocol.other_requested)
        name = request.request_type

        def ask(_: object) -> defer.Deferred[None]:
            if self._gone:
                return defer.succeed(None)
            asked: defer.Deferred[Any] = defer.maybeDeferred(handler, request)
            return asked.addBoth(decided)

        def decided(result: object) -> None:
            if isinstance(result, Failure):
                _log.failure("session {id}: {name} handler failed", result, id=self.id, name=name)
                result = False
            _log.info(
                "session {id}: {name} {verdict}",
                id=self.id,
                name=name,
                verdict="accepted" if result else "rejected",
            )
            if self._gone or self.machine.state is SessionState.ERROR:
                return
            if event.handle not in self.machine.undecided:
                return  # answered FAILURE by the machine when the channel closed
            if result:
                self.machine.accept(event.handle)
            else:
                self.machine.reject(event.handle)
            self._flush()
            if self.machine.program_started and not self._started:
                self._started = True
                if not self._input_paused:
                    self._open_window()
                self._call(self.protocol.session_started)
                if self.machine.eof_received and not self.finished:
                    self._call(self.protocol.eof_received)

        self._asking.addCallback(ask)

    def _call(self, method: Callable[..., object], *args: object) -> None:
        """Call the application; an exception is logged, never raised into Conch."""
        try:
            method(*args)
        except Exception:
            _log.failure("session {id}: application error", id=self.id)

    def _hold_until_returned(self) -> None:
        """Keep output back until Conch has hooked its reply sender onto our Deferred.

        Conch adds the callbacks that send SUCCESS/FAILURE only after
        ``requestReceived`` returns, so a reply decided during the call (and the
        output an application writes right after accepting a program) would
        otherwise overtake it. Everything is released on the next reactor turn,
        replies first, in the machine's order.
        """
        if not self._holding:
            self._holding = True
            self.reactor.callLater(0, self._release)

    def _release(self) -> None:
        self._holding = False
        if not self._gone:
            self._flush()

    def _flush(self) -> None:
        """Hand what the machine produced to Conch: replies at once, the rest in order."""
        self._held.extend(self.machine.items_to_send())
        if self._holding:
            return
        items, self._held = self._held, []
        for item in items:
            if isinstance(item, OutgoingReply):
                if self._replies:
                    self._replies.popleft().callback(item.success)
            else:
                if isinstance(item, OutgoingData):
                    self._queued_bytes += len(item.data)
                self._ordered.append(item)
        self._send_ordered()

    def _send_ordered(self) -> None:
        """Send data, requests, EOF and CLOSE in the machine's order.

        Conch sends requests and EOF at once but holds data back until the client's
        window allows it, so nothing behind waiting data is sent before it.
        """
        while self._ordered and not (self.buf or self.extBuf):
            item = self._ordered.popleft()
            if self.localClosed:
                continue
            if isinstance(item, OutgoingData):
                self._queued_bytes -= len(item.data)
                if item.data_type is None:
                    self.write(item.data)  # type: ignore[no-untyped-call]
                else:
                    self.writeExtended(item.data_type, item.data)  # type: ignore[no-untyped-call]
            elif isinstance(item, OutgoingRequest):
                self._connection.sendRequest(
                    self,
                    item.request.request_type.encode("ascii"),
                    item.request.encode(),
                    wantReply=item.want_reply,
                )
            elif isinstance(item, OutgoingEOF):
                self._connection.sendEOF(self)
            elif isinstance(item, OutgoingClose):
                self.finished = True
                self._connection.sendClose(self)
        self.update_backpressure()
