"""Task groups and waits for the tasks an idle session keeps, lighter than anyio's.

Since anyio 4.14 every task a task group starts gets a ``TaskHandle``: a cancel
scope, an event and a wrapper coroutine of its own, about 2.5 KiB per task on
asyncio and more in resident memory. An idle SSH session keeps two tasks, its
connection's and its application's; with the handles they took more memory than all
of ptycore's own state for the session (issue 6, figure 4: 19 KiB per idle session
on either backend, 12 KiB without the handles).

:class:`TaskGroup` keeps what the server relies on from anyio's task groups, with
the backend's own tasks: on trio it is a trio nursery (what anyio's task group
wraps there); on asyncio, plain tasks, each inside an anyio cancel scope of its
own (or, for a task that opens a group of its own before anything else, that
group's body: :meth:`TaskGroup.start_group_task`), and the body of the ``async
with`` inside one more. Cancelling the group is anyio's cancellation, so shields
inside the tasks hold it off. As with anyio's: leaving the ``async with`` waits
for every task; a task that raises cancels the group and its exception leaves the
``async with`` in an exception group; a host cancelled from outside cancels the
tasks and still waits for them.

For the same reason, what those two tasks wait on while the session is idle uses
the backend's own means too: :func:`create_wakeup` for the application's wait for
input, :func:`readable_waiter` for the connection's wait for its socket.

A program that imported trio before this module (``ptycore serve --backend trio``
does) is not made to import asyncio: it never runs it, and asyncio's 29 modules
are about 1.5 MiB of resident memory.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import anyio

if TYPE_CHECKING or "trio" not in sys.modules:
    import asyncio  # reached through _asyncio(): under trio it may not be imported

__all__ = [
    "TaskGroup",
    "TaskStarter",
    "Wakeup",
    "create_task_group",
    "create_wakeup",
    "readable_waiter",
]

TaskFunction: TypeAlias = Callable[..., Coroutine[Any, Any, Any]]


class TaskStarter(Protocol):
    """What starts an application's task (an anyio task group also does)."""

    def start_soon(self, func: TaskFunction, *args: object, name: object = None) -> object:
        """Run ``func(*args)`` in a new task of the group."""
        ...


class TaskGroup(Protocol):
    """A group of tasks: ``async with create_task_group() as tasks``."""

    async def __aenter__(self) -> TaskGroup: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    def start_soon(self, func: TaskFunction, *args: object, name: object = None) -> None:
        """Run ``func(*args)`` in a new task of the group."""
        ...

    def cancel(self) -> None:
        """Cancel the body of the ``async with`` and every task of the group."""
        ...

    def start_group_task(self, func: TaskFunction, *args: object, name: object = None) -> None:
        """Run ``func(*args)`` in a new task of the group; ``func`` opens a task group
        with ``create_task_group(parent=self)`` before it awaits anything, and that
        group's body is what the group cancels (no cancel scope of its own per task:
        one per connection saved)."""
        ...


class Wakeup(Protocol):
    """What one task waits on until another wakes it (:func:`create_wakeup`)."""

    def set(self) -> None:
        """Wake the waiting task (once; later calls do nothing)."""
        ...

    def wait(self) -> Awaitable[Any]:
        """Wait until :meth:`set` was called; the waiting task awaits the result at
        once (on trio it registers the calling task as the one to wake)."""
        ...


def create_task_group(*, parent: TaskGroup | None = None) -> TaskGroup:
    """A task group for the running backend; ``parent``: the group that started this
    task with :meth:`TaskGroup.start_group_task`."""
    trio = _trio()
    if trio is not None:  # a nursery inside a nursery's task is cancelled with it
        return _TrioTaskGroup(trio.open_nursery(strict_exception_groups=True))
    return _AsyncioTaskGroup(parent if isinstance(parent, _AsyncioTaskGroup) else None)


def create_wakeup() -> Wakeup:
    """A one-shot wake-up for a single waiting task, for the wait of an idle session.

    An anyio Event on asyncio is an asyncio Event with a deque of waiters (760
    bytes) and two coroutines around the wait; here it is one future, awaited
    directly. On trio, the waiting task is parked and rescheduled (trio.lowlevel),
    without an Event's set of waiters and anyio's wrapper around it.
    """
    trio = _trio()
    if trio is not None:
        return _TrioWakeup(trio.lowlevel)
    return _FutureWakeup(_asyncio().get_running_loop().create_future())


def readable_waiter() -> Callable[[socket.socket], Awaitable[None]]:
    """What waits until a socket is readable, for the running backend: as
    :func:`anyio.wait_readable`, with less kept per waiting connection.

    On asyncio, a reader callback and a future (anyio's wait adds a closure with four
    cells, a coroutine and an entry in a map of waiters, about 0.5 KiB more); on
    trio, trio's own wait without anyio's coroutine around it.
    """
    trio = _trio()
    if trio is not None:
        wait: Callable[[socket.socket], Awaitable[None]] = trio.lowlevel.wait_readable
        return wait
    return _asyncio_wait_readable


async def _asyncio_wait_readable(sock: socket.socket) -> None:
    loop = _asyncio().get_running_loop()
    future = loop.create_future()
    fd = sock.fileno()
    try:
        loop.add_reader(fd, _wake, future)
    except NotImplementedError:  # a loop without readers (Windows' proactor)
        await anyio.wait_readable(sock)
        return
    try:
        await future
    finally:
        loop.remove_reader(fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # the reader fires until it is removed
        future.set_result(None)


def _asyncio() -> Any:
    """The asyncio module, which an asyncio run has imported (and this module may
    not have: see the module's docstring)."""
    return sys.modules["asyncio"]


def _trio() -> Any:
    """The trio module if trio runs this code, else None (trio is not imported for
    asyncio: a trio run has imported it already)."""
    trio = sys.modules.get("trio")
    return trio if trio is not None and trio.lowlevel.in_trio_run() else None


class _TrioWakeup:
    """The waiting task parked with trio.lowlevel and rescheduled by :meth:`set`.

    :meth:`wait` returns trio's own wait, which the caller awaits at once, rather
    than being a coroutine around it, and the object is its own abort function
    (:meth:`__call__`) rather than a bound method made per wait: an idle session's
    application keeps one frame and one method object less while it waits for input
    (about 260 bytes).
    """

    __slots__ = ("_lowlevel", "_task", "_woken")

    def __init__(self, lowlevel: Any) -> None:
        self._lowlevel = lowlevel
        self._task: Any = None
        self._woken = False

    def set(self) -> None:
        if not self._woken:
            self._woken = True
            if self._task is not None:
                self._lowlevel.reschedule(self._task)
                self._task = None

    def wait(self) -> Awaitable[Any]:
        lowlevel = self._lowlevel
        if self._woken:
            return lowlevel.checkpoint()  # type: ignore[no-any-return]
        self._task = lowlevel.current_task()
        return lowlevel.wait_task_rescheduled(self)  # type: ignore[no-any-return]

    def __call__(self, _raise_cancel: object) -> Any:
        """trio's abort function: the wait was cancelled."""
        self._task = None
        return self._lowlevel.Abort.SUCCEEDED


class _FutureWakeup:
    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self._future = future

    def set(self) -> None:
        if not self._future.done():  # a cancelled wait cancels the future
            self._future.set_result(None)

    def wait(self) -> Awaitable[None]:
        return self._future


class _TrioTaskGroup:
    __slots__ = ("_manager", "_nursery")

    def __init__(self, manager: AbstractAsyncContextManager[Any]) -> None:
        self._manager = manager
        self._nursery: Any = None

    async def __aenter__(self) -> _TrioTaskGroup:
        self._nursery = await self._manager.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._manager.__aexit__(exc_type, exc, tb)

    def start_soon(self, func: TaskFunction, *args: object, name: object = None) -> None:
        self._nursery.start_soon(func, *args, name=name)

    start_group_task = start_soon

    def cancel(self) -> None:
        self._nursery.cancel_scope.cancel()


class _AsyncioTaskGroup:
    __slots__ = (
        "_active",
        "_cancelled",
        "_done",
        "_errors",
        "_parent",
        "_running",
        "_scope",
        "_scopes",
    )

    def __init__(self, parent: _AsyncioTaskGroup | None) -> None:
        self._parent = parent
        self._scope = anyio.CancelScope()
        self._scopes: set[anyio.CancelScope] = set()
        self._running = 0
        self._active = False
        self._cancelled = False
        self._errors: list[BaseException] = []
        self._done: anyio.Event | None = None

    async def __aenter__(self) -> _AsyncioTaskGroup:
        self._scope.__enter__()
        self._active = True
        if self._parent is not None:  # this task's cancel scope, for the parent
            self._parent._adopt(self._scope)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is not None:
            self.cancel()
        pending = exc
        if self._running:
            try:
                await self._wait()
            except anyio.get_cancelled_exc_class() as cancelled:
                # Cancelled while waiting (from outside, or by cancel()): the tasks
                # are cancelled too, and still waited for.
                self.cancel()
                with anyio.CancelScope(shield=True):
                    await self._wait()
                pending = pending or cancelled
        self._active = False
        if self._parent is not None:
            self._parent._scopes.discard(self._scope)
        swallowed = self._scope.__exit__(
            None if pending is None else type(pending),
            pending,
            None if pending is None else pending.__traceback__,
        )
        if self._errors:
            errors, self._errors = self._errors, []
            raise BaseExceptionGroup("unhandled errors in a TaskGroup", errors)
        if pending is None or swallowed:
            return pending is not None  # the group's own cancellation ends here
        if pending is exc:
            return False
        raise pending

    async def _wait(self) -> None:
        while self._running:
            self._done = done = anyio.Event()
            await done.wait()
        self._done = None

    def start_soon(self, func: TaskFunction, *args: object, name: object = None) -> None:
        self.start_group_task(self._run, func, args, name=name)

    def start_group_task(self, func: TaskFunction, *args: object, name: object = None) -> None:
        if not self._active:
            raise RuntimeError("This task group is not active; no new tasks can be started.")
        loop = _asyncio().get_running_loop()
        task = loop.create_task(func(*args), name=None if name is None else str(name))
        self._running += 1
        task.add_done_callback(self._finished)

    def _adopt(self, scope: anyio.CancelScope) -> None:
        """Cancel ``scope`` with the tasks (now, if they already are)."""
        if self._cancelled:
            scope.cancel()
        self._scopes.add(scope)

    def cancel(self) -> None:
        self._cancelled = True
        self._scope.cancel()
        for scope in list(self._scopes):
            scope.cancel()

    async def _run(self, func: TaskFunction, args: tuple[object, ...]) -> None:
        with anyio.CancelScope() as scope:
            self._adopt(scope)
            try:
                await func(*args)
            finally:
                self._scopes.discard(scope)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running -= 1
        if not task.cancelled() and (error := task.exception()) is not None:
            self._errors.append(error)
            self.cancel()
        if not self._running and self._done is not None:
            self._done.set()
