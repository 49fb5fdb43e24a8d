"""``serve()``: an SSH server on anyio, over :class:`ptycore.server.ServerConnection`.

One code path for asyncio and trio, in the style of mqttproto and anycorn: anyio
TCP listeners, one task per connection that feeds the core what the socket gives,
sends what the core queued, and arms the core's one timer on anyio's clock. What an
idle session keeps (its two tasks, their waits for the socket and for input) comes
from :mod:`._tasks`, which uses each backend's own means where anyio's cost more
memory per task.

The sockets are used directly, non-blocking, rather than as anyio socket streams:
on asyncio a stream is a transport and a protocol with a receive queue and two
events, about 4 KiB per idle connection, and each read goes through them and pauses
and resumes the transport. Socket errors become "the connection is lost" in one place
(:meth:`_Connection._receive_bytes`, :meth:`_Connection._recv` and
:meth:`_Connection._send_buffers`); a
:class:`ptycore.ProtocolError` means the core queued a DISCONNECT: it is sent, and
the connection closed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import secrets
import socket
from collections.abc import Collection, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread

from ptycore import DisconnectReason, ProtocolError
from ptycore.auth import AuthenticationFailed, AuthenticationSucceeded, Authenticator
from ptycore.connection import (
    ChannelClosed,
    ChannelDataReceived,
    ChannelEOFReceived,
    ChannelOpened,
    ChannelWritable,
    SessionEvent,
)
from ptycore.keyoptions import UNRESTRICTED
from ptycore.server import ConnectionClosed, Event, ServerConfig, ServerConnection
from ptycore.transport import HostKey
from ptycore_common.tcp import acknowledge_short_read

from ._channels import Application, SessionRouter
from ._tasks import TaskGroup, create_task_group, readable_waiter

__all__ = ["ServerLimits", "serve"]

logger = logging.getLogger("ptycore.anyio")

READ_SIZE: Final = 256 * 1024
"""Bytes asked of the socket at a time: the transport's largest packet. Against 64 KiB,
bulk uploads from the OpenSSH client take about half the server CPU per GiB: fewer
loop turns, and the WINDOW_ADJUSTs of several packets leave in one send."""

SMALL_READ_SIZE: Final = 64 * 1024
"""Bytes asked of the socket after a read that brought less than this: ``recv``
allocates what it is asked for, and above glibc's mmap threshold (128 KiB) that is
an mmap, a page fault and a munmap per read, about 13 us, ten times a small read.
Handshakes and interactive sessions read little at a time; a read that fills this
size switches back to :data:`READ_SIZE`."""

IOV_MAX: Final = 1024
"""Buffers one sendmsg takes at most: Linux's UIO_MAXIOV (POSIX's IOV_MAX)."""

_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
"""accept(2) errors that pass once some connection has ended."""

ACCEPT_RETRY_DELAY: Final = 0.1
"""Seconds between accept attempts while the process is out of resources."""

MAX_STARTUPS_MESSAGE: Final = b"Exceeded MaxStartups\r\n"
"""What sshd writes to a connection it drops for MaxStartups (``sshd.c``
``drop_connection``), before its version line would have been sent."""

_CHANNEL_EVENTS: Final = (
    ChannelOpened,
    SessionEvent,
    ChannelDataReceived,
    ChannelEOFReceived,
    ChannelWritable,
    ChannelClosed,
)

_BACKEND_ERRORS: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
"""What a socket operation raises on any backend when the peer is gone."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerLimits:
    """How many connections the server takes, with OpenSSH's ideas and defaults."""

    max_startups: tuple[int, int, int] = (10, 30, 100)
    """sshd_config ``MaxStartups start:rate:full`` (default ``10:30:100``): with
    ``start`` connections not yet authenticated, a new one is dropped with
    probability ``rate``%, rising linearly to 100% at ``full`` (``sshd.c``
    ``should_drop_connection``)."""
    max_connections: int = 1024
    """Connections at once, authenticated or not. sshd has no such cap (each
    connection is a process, bounded by the system); one event loop's is its
    file-descriptor limit, often 1024, and a full loop cannot accept at all."""
    shutdown_timeout: float = 5.0
    """Seconds a stopping server gives each connection to send its DISCONNECT."""

    def __post_init__(self) -> None:
        start, rate, full = self.max_startups
        if not (0 < start <= full and 0 <= rate <= 100):  # servconf.c checks the same
            raise ValueError("max_startups must be (start, rate, full) with start <= full")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.shutdown_timeout < 0:
            raise ValueError("shutdown_timeout must not be negative")


class _Server:
    """The listener's shared state: counts of connections and of startups."""

    def __init__(
        self,
        app: Application,
        *,
        host_keys: Sequence[HostKey],
        authenticator: Authenticator,
        config: ServerConfig | None,
        limits: ServerLimits,
        subsystems: Collection[str],
        authenticate_in_thread: bool,
    ) -> None:
        self.app = app
        self.host_keys = list(host_keys)
        self.authenticator = authenticator
        # Flow control end to end: a channel's window reopens only as its application
        # takes the input (Session.receive), as sshd's does as it writes to the program.
        base = config or ServerConfig()
        self.config = replace(base, connection=replace(base.connection, auto_consume=False))
        self.limits = limits
        self.subsystems = frozenset(subsystems)
        self.authenticate_in_thread = authenticate_in_thread
        self.connections = 0
        self.startups = 0

    def should_drop(self) -> bool:
        """sshd.c ``should_drop_connection``, plus :attr:`ServerLimits.max_connections`."""
        if self.connections >= self.limits.max_connections:
            return True
        start, rate, full = self.limits.max_startups
        if self.startups < start:
            return False
        if self.startups >= full:
            return True
        probability = rate + (100 - rate) * (self.startups - start) / (full - start)
        return secrets.randbelow(100) < probability

    async def accept(self, listener: socket.socket, tasks: TaskGroup) -> None:
        """Accept connections on a listening socket, each served in its own task."""
        while True:
            await anyio.wait_readable(listener)
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # taken by another process, or gone before we got to it
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    raise
                # Out of file descriptors or memory: the connection waits in the
                # backlog; try again shortly instead of stopping the server (as
                # trio's serve_listeners does).
                logger.warning("cannot accept a connection: %s", error.strerror)
                await anyio.sleep(ACCEPT_RETRY_DELAY)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.admit(sock, _address(address), tasks)

    def admit(self, sock: socket.socket, peer: str, tasks: TaskGroup) -> None:
        """Serve an accepted connection in a task of its own, or drop it at once
        (no task for a connection past MaxStartups)."""
        if self.should_drop():
            with sock:
                logger.warning("drop connection from %s past MaxStartups", peer)
                with contextlib.suppress(OSError):
                    sock.send(MAX_STARTUPS_MESSAGE)  # a fresh socket takes 22 bytes
            return
        try:
            connection = _Connection(self, sock, peer)
        except Exception:  # one connection's bug must not stop the listener
            sock.close()
            logger.exception("%s: connection failed", peer)
            return
        tasks.start_group_task(connection.run, tasks, name="ptycore connection")


class _Connection:
    """One client: socket in, core, socket out, one timer, the sessions' applications."""

    __slots__ = (
        "_flush_scheduled",
        "_flushers",
        "_lost",
        "_read_scope",
        "_read_size",
        "_send_done",
        "_sending",
        "_tasks",
        "_wait_readable",
        "authenticated",
        "core",
        "peer",
        "router",
        "server",
        "sock",
    )

    def __init__(self, server: _Server, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.core = ServerConnection(
            server.config,
            server.authenticator,
            server.host_keys,
            now=anyio.current_time(),
            peer_address=_host(peer),
        )
        # Logged here rather than in run(): logging looks up its caller's frame, and
        # a coroutine's frame object, once made, lives as long as the connection.
        logger.info("connection from %s", peer)
        server.connections += 1
        server.startups += 1
        self.authenticated = False
        self.router: SessionRouter | None = None
        self._lost = False
        self._sending = False
        self._send_done: anyio.Event | None = None  # made only when a flush must wait
        self._read_scope: anyio.CancelScope | None = None
        self._read_size = SMALL_READ_SIZE
        self._flush_scheduled = False
        self._flushers = 0  # _flush_once tasks started and not yet done
        self._tasks: TaskGroup | None = None
        self._wait_readable = readable_waiter()

    async def run(self, server_tasks: TaskGroup) -> None:
        """Serve until either side ends the connection or the server stops."""
        server = self.server
        try:
            # The body of this group is the task's cancel scope for the server's group.
            async with create_task_group(parent=server_tasks) as tasks:
                self._tasks = tasks
                try:
                    # Feed the core what the socket gives, a read at a time. What one
                    # read brought is handled in a frame of its own (nothing of it
                    # stays referenced while the next read waits), and the read is
                    # awaited right here: each frame of a waiting task stays in memory.
                    await self._flush_now()  # our version line and KEXINIT
                    await self._log_in()
                    while (
                        not self.core.closed
                        and not self._lost
                        and await self._process(await self._receive())
                    ):
                        pass
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._goodbye()
                if self._flushers or (self.router is not None and self.router.running):
                    # Applications that outlive their channel, or a flush stuck on a
                    # client that stopped reading. Only then: a cancel is not free
                    # (anyio names the cancelling task, with its repr, each time).
                    tasks.cancel()
        except Exception:  # one connection's bug must not stop the listener
            logger.exception("%s: connection failed", self.peer)
        finally:
            # Closed here rather than with a ``with``: its bound __exit__ would be
            # kept on the waiting coroutine's stack.
            self.sock.close()
            server.connections -= 1
            if not self.authenticated:
                server.startups -= 1
            if self.router is not None:
                self.router.connection_lost()
            logger.info("connection from %s closed", self.peer)

    # -- reading ---------------------------------------------------------------------------

    async def _log_in(self) -> None:
        """The reads before the login, under one cancel scope for the login grace time.

        Before the login the core's one timer is that deadline (sshd ``LoginGraceTime``),
        so one scope serves every read of the handshake instead of one per read (on
        asyncio about 750 Python opcodes each; together 8% of ``ssh host true``'s). Besides
        the reads it can cut only a send waiting for a client that has not read for
        the whole grace time, which the deadline drops anyway: a password checked in
        a worker thread finishes first (anyio shields it), and after the login the
        scope is left.
        """
        while self.router is None and not self.core.closed and not self._lost:
            deadline = self.core.get_timer()
            if deadline is None:
                return  # no grace time (AuthConfig.login_grace_time 0): plain reads
            with anyio.CancelScope(deadline=deadline) as scope:
                self._read_scope = scope
                while (
                    self.router is None
                    and not self.core.closed
                    and not self._lost
                    and await self._process(await self._receive_bytes())
                ):
                    pass
            self._read_scope = None
            if scope.cancelled_caught:
                await self._timer_fired()

    async def _timer_fired(self) -> None:
        for event in self.core.handle_timer(anyio.current_time()):
            self._event(event)
        await self.flush()

    def _receive(self) -> Coroutine[Any, Any, bytes | None]:
        """The next read (:meth:`_receive_bytes`), ended early by the core's timer.

        The core has one timer (login grace time, keepalives, rekeying by time): the
        wait for the socket ends at its deadline, which :meth:`_rearm` moves when the
        core changed it, so no task per connection waits for it. With no timer the
        read is awaited as it is, without a cancel scope (about 600 bytes per idle
        connection on asyncio) or a coroutine around it: the core's timer only
        appears in ``receive_data`` and ``handle_timer``, which this task calls.
        """
        deadline = self.core.get_timer()
        return self._receive_bytes() if deadline is None else self._receive_until(deadline)

    async def _receive_until(self, deadline: float) -> bytes | None:
        """:meth:`_receive_bytes`, or None once ``deadline`` (moved by :meth:`_rearm`)
        passed first."""
        data = None
        with anyio.CancelScope(deadline=deadline) as scope:
            self._read_scope = scope
            data = await self._receive_bytes()
        self._read_scope = None
        return data

    async def _process(self, data: bytes | None) -> bool:
        """What follows from one read (None: the timer went off, or the connection
        is lost); False once the connection is over."""
        if data is None:
            if self._lost:
                return False
            await self._timer_fired()
            return True
        try:
            events = await self._feed(data)
        except ProtocolError as error:
            logger.warning("%s: protocol error, disconnecting: %s", self.peer, error)
            await self.flush()  # the DISCONNECT the core queued
            return False
        for event in events:
            self._event(event)
        if self.router is None or self.core.closed:
            # Before the login no other task of this connection can add to the send
            # (no checkpoint, a loop turn, for the eight or so reads of a handshake),
            # and once the client said goodbye no task can: this is the last turn.
            sent = await self._flush_now()
        else:
            sent = await self._flush_after_checkpoint()
        if not sent:
            # What we send carries the ACK; a read we answer with nothing gets one now,
            # or the client's next small packet waits for the delayed ACK (up to 40 ms).
            # After every short read it would cost an ACK packet of its own each time.
            acknowledge_short_read(self.sock, len(data))
        return True

    async def _feed(self, data: bytes) -> list[Event]:
        now = anyio.current_time()
        if self.authenticated or not self.server.authenticate_in_thread:
            return self.core.receive_data(data, now=now)
        # ptycore.auth: a slow authenticator (bcrypt) runs with the core in a worker
        # thread, so other connections keep being served meanwhile. Nothing else uses
        # the core before the login: no sessions, and the timer is this task's.
        return await anyio.to_thread.run_sync(lambda: self.core.receive_data(data, now=now))

    def _event(self, event: Event) -> None:
        if isinstance(event, _CHANNEL_EVENTS):
            if self.router is not None:
                self.router.handle(event)
        elif isinstance(event, AuthenticationSucceeded):
            logger.info("%s: %s logged in by %s", self.peer, event.username, event.method)
            if event.restrictions != UNRESTRICTED:
                logger.info("%s: %s restricted: %s", self.peer, event.username, event.restrictions)
            self._authenticated(event.username)
        elif isinstance(event, AuthenticationFailed):
            logger.info("%s: %s failed %s", self.peer, event.username, event.method)
        elif isinstance(event, ConnectionClosed):
            logger.info("%s: disconnected (%d): %s", self.peer, event.reason, event.description)

    def _authenticated(self, username: str) -> None:
        self.authenticated = True
        self.server.startups -= 1
        tasks = self._tasks
        if tasks is None:  # run() sets it before reading anything
            raise RuntimeError("connection not running")
        self.router = SessionRouter(
            self.core,
            app=self.server.app,
            task_group=tasks,
            flush=self.flush,
            flush_soon=self.flush_soon,
            username=username,
            subsystems=self.server.subsystems,
        )

    # -- writing ---------------------------------------------------------------------------

    async def flush(self) -> None:
        """Send everything the core queued, in one send.

        It starts with a checkpoint, as anyio's streams do on every send, and drains
        the core after it: tasks made ready by what was just read (an application
        started by its exec request, say) queue their output first, and it leaves in
        the same send (for ``ssh host true``: the exec's SUCCESS, EOF, ``exit-status``
        and CLOSE in one segment). A task that only writes, while the client's window
        allows, still lets the others run.

        One send at a time (the bytes of two sends must not interleave): a flush that
        finds one under way waits for it, then sends whatever is still queued. No
        lock per connection: an idle connection keeps no waiter queue.
        """
        await self._flush_after_checkpoint()

    async def _flush_after_checkpoint(self) -> bool:
        """:meth:`flush`, telling whether anything was sent."""
        await anyio.lowlevel.checkpoint()
        return await self._flush_now()

    async def _flush_now(self) -> bool:
        """Send what the core queued now; whether there was anything."""
        while self._sending:
            done = self._send_done
            if done is None:
                self._send_done = done = anyio.Event()
            await done.wait()
        buffers = self.core.buffers_to_send()
        self._rearm()
        if not buffers:
            return False
        self._sending = True
        try:
            await self._send_buffers(buffers)
        finally:
            self._sending = False
            done, self._send_done = self._send_done, None
            if done is not None:
                done.set()
        return True

    def flush_soon(self) -> None:
        """Have :meth:`flush` run soon (from code that cannot wait: a signal's reply).

        A short task when needed rather than one waiting per connection: idle
        connections stay small."""
        if not self._flush_scheduled and self._tasks is not None:
            self._flush_scheduled = True
            self._flushers += 1
            self._tasks.start_soon(self._flush_once, name="ptycore flush")

    async def _flush_once(self) -> None:
        self._flush_scheduled = False
        try:
            await self.flush()
        finally:
            self._flushers -= 1

    async def _goodbye(self) -> None:
        """On the way out: tell a client still there why (DISCONNECT BY_APPLICATION)."""
        if self._lost:
            return
        if not self.core.closed:
            self.core.disconnect(DisconnectReason.BY_APPLICATION, "server shutting down")
        # No checkpoint first (flush): nothing queued after the DISCONNECT is sent.
        with anyio.move_on_after(self.server.limits.shutdown_timeout):
            await self._flush_now()

    # -- the one place backend errors are seen --------------------------------------------

    async def _receive_bytes(self) -> bytes | None:
        """What the socket has (waiting until it has something), or None once it is
        closed or broken."""
        sock = self.sock
        data: bytes | None = None
        # Once logged in, read before waiting: during a transfer the next bytes are
        # usually there already, and every wait adds the socket to the event loop's
        # selector and removes it again; the flush after each read yields to the other
        # tasks. Before the login nothing else of a turn yields: wait first.
        wait = self.router is None
        try:
            while data is None:
                if wait:
                    await self._wait_readable(sock)
                wait = True
                data = self._recv()
        except _BACKEND_ERRORS:
            data = b""
        if not data:
            self._lose()
            return None
        self._read_size = READ_SIZE if len(data) >= SMALL_READ_SIZE else SMALL_READ_SIZE
        return data

    def _recv(self) -> bytes | None:
        """One read that does not wait: the bytes (empty once the socket is closed
        or broken), or None if there are none yet.

        Not inline in :meth:`_receive_bytes`: an exception that passes through a
        coroutine makes its frame an object, kept as long as the coroutine (about
        200 bytes per idle connection for the BlockingIOError of an empty socket).
        """
        try:
            return self.sock.recv(self._read_size)
        except (BlockingIOError, InterruptedError):
            return None
        except _BACKEND_ERRORS:
            return b""

    async def _send_buffers(self, buffers: list[bytes]) -> None:
        """Send all of ``buffers``, in order, waiting while the socket's buffer is full.

        One vectored write (sendmsg) where the platform has it: the core's packets
        are not joined into one more copy first. They go as they are; only a send
        that stops inside one leaves a view of its rest (:func:`drop_sent`)."""
        if self._lost:
            return
        sock = self.sock
        views: list[bytes | memoryview] = (
            list(buffers) if hasattr(sock, "sendmsg") else [b"".join(buffers)]
        )
        try:
            while views and not self._lost:
                try:
                    sent = sock.sendmsg(views[:IOV_MAX]) if len(views) > 1 else sock.send(views[0])
                except (BlockingIOError, InterruptedError):
                    await anyio.wait_writable(sock)
                    continue
                drop_sent(views, sent)
        except _BACKEND_ERRORS:
            self._lose()

    def _lose(self) -> None:
        """The peer is gone: end the sessions and stop the connection's tasks."""
        if self._lost:
            return
        self._lost = True
        if self.router is not None:
            self.router.connection_lost()
        if self._tasks is not None:
            self._tasks.cancel()

    # -- the timer ------------------------------------------------------------------------------

    def _rearm(self) -> None:
        """Move the socket wait's deadline to the core's timer, if it changed."""
        scope = self._read_scope
        if scope is not None:
            timer = self.core.get_timer()
            deadline = math.inf if timer is None else timer
            if deadline != scope.deadline:  # setting it re-arms anyio's timer even if equal
                scope.deadline = deadline


def drop_sent(views: list[bytes | memoryview], sent: int) -> None:
    """Remove the first ``sent`` bytes from ``views``: the buffers a send took whole,
    then the start of the one it stopped in (its rest a view, not a copy)."""
    if sent >= sum(map(len, views)):  # most sends take everything: no loop in Python
        views.clear()
        return
    done = 0
    while done < len(views) and sent >= len(views[done]):
        sent -= len(views[done])
        done += 1
    del views[:done]
    if sent:
        views[0] = memoryview(views[0])[sent:]


def _host(peer: str) -> str:
    """The address in what :func:`_address` made: ``[::1]:22`` gives ``::1``."""
    return peer.rpartition(":")[0].removeprefix("[").removesuffix("]")


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


async def serve(
    app: Application,
    *,
    host: str | Sequence[str] | None = "127.0.0.1",
    port: int = 2222,
    host_keys: Sequence[HostKey],
    authenticator: Authenticator,
    config: ServerConfig | None = None,
    limits: ServerLimits | None = None,
    subsystems: Collection[str] = (),
    authenticate_in_thread: bool | None = None,
    task_status: anyio.abc.TaskStatus[list[tuple[str, int]]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve SSH on ``host`` and ``port`` until cancelled; each session runs ``app``.

    ``host`` may be an address, a name (``localhost`` listens on 127.0.0.1 and ::1),
    several of them, or ``None`` for every interface; port 0 picks a free port.
    Once listening, ``task_status.started`` gets the bound ``(address, port)``
    pairs, so ``await task_group.start(serve, ...)`` returns them. Cancelling the
    task stops the server: every client is sent DISCONNECT ``BY_APPLICATION``.

    ``authenticate_in_thread`` (default: the authenticator's ``blocking``
    attribute) runs the core in a worker thread until the user is logged in, for
    authenticators that block (bcrypt, PAM).

    ``config.connection.auto_consume`` is always turned off: a channel's window
    reopens as its application calls :meth:`Session.receive`, so a slow
    application slows its client down and holds at most one window of input.

    Raises :class:`ValueError`, before listening, when no host key makes any of
    ``config.transport.host_key_algorithms`` (an ECDSA key alone, with the
    defaults, which leave out the NIST curves' ``ecdsa-sha2-nistp*``).
    """
    if not host_keys:
        raise ValueError("serve needs at least one host key")
    if authenticate_in_thread is None:
        authenticate_in_thread = bool(getattr(authenticator, "blocking", False))
    server = _Server(
        app,
        host_keys=host_keys,
        authenticator=authenticator,
        config=config,
        limits=limits or ServerLimits(),
        subsystems=subsystems,
        authenticate_in_thread=authenticate_in_thread,
    )
    if not server.config.transport.host_keys_by_algorithm(host_keys):
        offered = ", ".join(server.config.transport.host_key_algorithms)
        raise ValueError(f"no host key makes any of host_key_algorithms ({offered})")
    hosts = [host] if host is None or isinstance(host, str) else list(host)
    listeners: list[anyio.abc.SocketListener] = []
    try:
        for name in hosts:
            listener = await anyio.create_tcp_listener(
                local_host=name, local_port=port if not listeners else _port(listeners[0])
            )
            if isinstance(listener, anyio.abc.SocketListener):
                listeners.append(listener)
            else:  # a MultiListener: a name with several addresses (IPv4 and IPv6)
                listeners += [
                    each
                    for each in listener.listeners
                    if isinstance(each, anyio.abc.SocketListener)
                ]
        bound = [
            _pair(_attribute(each, anyio.abc.SocketAttribute.local_address)) for each in listeners
        ]
        for address, bound_port in bound:
            logger.info("listening on %s", _address((address, bound_port)))
        async with create_task_group() as connections, anyio.create_task_group() as tasks:
            for each in listeners:
                raw = _attribute(each, anyio.abc.SocketAttribute.raw_socket)
                tasks.start_soon(server.accept, raw, connections)
            task_status.started(bound)
    finally:
        with anyio.CancelScope(shield=True):
            for each in listeners:
                await each.aclose()


def _port(listener: anyio.abc.SocketListener) -> int:
    return _pair(_attribute(listener, anyio.abc.SocketAttribute.local_address))[1]


def _attribute(provider: anyio.TypedAttributeProvider, attribute: Any) -> Any:
    """A typed attribute of a stream or listener (S610 mistakes anyio's extra() for Django's)."""
    return provider.extra(attribute, None)  # noqa: S610


def _pair(address: Any) -> tuple[str, int]:
    return str(address[0]), int(address[1])
