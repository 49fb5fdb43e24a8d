"""ptycore_anyio's task groups, wake-ups and socket waits (the backend's own means,
lighter than anyio's) behave as anyio's do where the server relies on it, on
asyncio and trio."""

from __future__ import annotations

import socket

import anyio
import pytest

from ptycore_anyio._tasks import (
    TaskGroup,
    Wakeup,
    create_task_group,
    create_wakeup,
    readable_waiter,
)

pytestmark = pytest.mark.anyio

WAIT = 10.0
"""Seconds any wait of these tests may take before it fails (none should)."""


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_leaving_waits_for_every_task() -> None:
    done: list[int] = []
    release = anyio.Event()

    async def child(number: int) -> None:
        await release.wait()
        done.append(number)

    with anyio.fail_after(WAIT):
        async with create_task_group() as tasks:
            for number in range(3):
                tasks.start_soon(child, number, name="child")
            await anyio.sleep(0)
            release.set()
    assert sorted(done) == [0, 1, 2]


async def test_cancel_stops_body_and_tasks_but_not_their_shielded_cleanup() -> None:
    cleaned: list[str] = []
    started = anyio.Event()

    async def child() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)  # a checkpoint the group's cancellation must not break
                cleaned.append("child")

    with anyio.fail_after(WAIT):
        async with create_task_group() as tasks:
            tasks.start_soon(child)
            await started.wait()
            tasks.cancel()
            await anyio.sleep_forever()  # the body is cancelled too
    assert cleaned == ["child"]


async def test_task_started_after_cancel_is_cancelled() -> None:
    ran: list[str] = []

    async def child() -> None:
        await anyio.sleep_forever()
        ran.append("never")

    with anyio.fail_after(WAIT):
        async with create_task_group() as tasks:
            tasks.cancel()
            tasks.start_soon(child)
    assert ran == []


async def test_failing_task_cancels_the_others_and_raises_in_a_group() -> None:
    cancelled: list[str] = []

    async def sleeper() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append("sleeper")
            raise

    async def failing() -> None:
        await anyio.sleep(0)
        raise ValueError("boom")

    with anyio.fail_after(WAIT), pytest.RaisesGroup(ValueError):
        async with create_task_group() as tasks:
            tasks.start_soon(sleeper)
            tasks.start_soon(failing)
    assert cancelled == ["sleeper"]


async def test_outer_cancellation_cancels_tasks_and_waits_for_them() -> None:
    cleaned: list[str] = []
    started = anyio.Event()

    async def child() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)
                cleaned.append("child")

    with anyio.fail_after(WAIT):
        with anyio.CancelScope() as outer:
            async with create_task_group() as tasks:
                tasks.start_soon(child)
                await started.wait()
                outer.cancel()
                await anyio.sleep_forever()
        assert outer.cancelled_caught
    assert cleaned == ["child"]


async def test_outer_cancellation_while_leaving_reaches_the_tasks() -> None:
    started = anyio.Event()

    async def child() -> None:
        started.set()
        await anyio.sleep_forever()

    with anyio.fail_after(WAIT):
        with anyio.move_on_after(0.05) as outer:
            async with create_task_group() as tasks:
                tasks.start_soon(child)
                await started.wait()
        assert outer.cancelled_caught


async def test_wakeup_wakes_its_waiter_once_set() -> None:
    woken: list[str] = []

    async def waiter(wakeup: Wakeup) -> None:
        await wakeup.wait()
        woken.append("waiter")

    with anyio.fail_after(WAIT):
        wakeup = create_wakeup()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(waiter, wakeup)
            await anyio.wait_all_tasks_blocked()  # the waiter is parked in wait()
            assert woken == []
            wakeup.set()
            wakeup.set()  # a second set does nothing
        assert woken == ["waiter"]
        already = create_wakeup()
        already.set()
        await already.wait()  # set before the wait: returns at once


async def test_wakeup_wait_can_be_cancelled_and_set_after() -> None:
    wakeup = create_wakeup()
    with anyio.fail_after(WAIT):
        with anyio.move_on_after(0.01) as scope:
            await wakeup.wait()
        assert scope.cancelled_caught
        wakeup.set()  # the waiter is gone: nothing to wake, and no error


async def test_readable_waiter_waits_for_data_and_can_be_cancelled() -> None:
    wait_readable = readable_waiter()
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        with anyio.fail_after(WAIT):
            with anyio.move_on_after(0.01) as scope:
                await wait_readable(left)  # nothing sent yet
            assert scope.cancelled_caught
            right.send(b"x")
            await wait_readable(left)  # the cancelled wait left nothing behind
            assert left.recv(1) == b"x"


async def test_group_task_is_cancelled_through_its_own_group() -> None:
    cleaned: list[str] = []
    started = anyio.Event()

    async def child(parent: TaskGroup) -> None:
        async with create_task_group(parent=parent) as tasks:
            tasks.start_soon(anyio.sleep_forever)
            try:
                started.set()
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(0.01)
                    cleaned.append("child")

    with anyio.fail_after(WAIT):
        with anyio.CancelScope() as outer:
            async with create_task_group() as parent:
                parent.start_group_task(child, parent)
                await started.wait()
                outer.cancel()
        assert outer.cancelled_caught
    assert cleaned == ["child"]
