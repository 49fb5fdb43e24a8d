"""ptycore_anyio's session object and built-in applications, in memory, on asyncio and trio."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import anyio
import pytest

from anyio_helpers import MemoryPair, memory_pair
from ptycore.connection import ConnectionConfig
from ptycore.modes import Opcode, TerminalModes
from ptycore.requests import PtyRequest, WindowSize
from ptycore_anyio import (
    EOF,
    Application,
    Break,
    Data,
    InputEvent,
    Session,
    Shell,
    Signal,
    WindowChange,
    echo,
    info,
)
from ptycore_common.info import NO_TERMINAL, describe_terminal, size_line

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


MODES = TerminalModes([(Opcode.VINTR, 3), (Opcode.ECHO, 1), (Opcode.ICANON, 1)])


def exited(view: object) -> bool:
    return bool(getattr(view, "closed", False))


# -- info ------------------------------------------------------------------------------------


async def test_info_shows_the_terminal_and_every_resize_until_q() -> None:
    async with memory_pair(info) as pair:
        pair.start(term="xterm-256color", size=WindowSize(cols=80, rows=24), modes=MODES)
        pty = PtyRequest(term="xterm-256color", size=WindowSize(cols=80, rows=24), modes=MODES)
        expected = describe_terminal(pty).encode()
        await pair.wait_for(lambda v: b"type q to quit" in v.stdout)
        assert pair.view.stdout.startswith(expected)
        assert b"Your terminal name is 'xterm-256color'.\r\n" in pair.view.stdout
        assert b"Your terminal is 80 columns wide and 24 rows tall.\r\n" in pair.view.stdout
        pair.resize(WindowSize(cols=132, rows=43))
        await pair.wait_for(
            lambda v: v.stdout.endswith(size_line(WindowSize(cols=132, rows=43)).encode())
        )
        pair.send(b"q")
        await pair.wait_for(exited)
    assert pair.view.exit_status == 0
    assert pair.view.order[-3:] == ["eof", "exit-status", "close"]


async def test_info_on_exec_prints_and_exits_0() -> None:
    async with memory_pair(info) as pair:
        pair.start(command="anything", size=WindowSize(cols=100, rows=30))
        await pair.wait_for(exited)
    assert b"Your terminal is 100 columns wide and 30 rows tall.\r\n" in pair.view.stdout
    assert b"type q" not in pair.view.stdout
    assert pair.view.exit_status == 0


async def test_info_without_a_pty_says_so() -> None:
    async with memory_pair(info) as pair:
        pair.start(pty=False)
        await pair.wait_for(exited)
    assert bytes(pair.view.stdout) == NO_TERMINAL.encode()
    assert pair.view.exit_status == 0


async def test_info_ends_at_ctrl_d_and_at_eof() -> None:
    async with memory_pair(info) as pair:
        pair.start()
        await pair.wait_for(lambda v: b"type q" in v.stdout)
        pair.send(b"abc\x04")
        await pair.wait_for(exited)
    assert pair.view.exit_status == 0
    async with memory_pair(info) as pair:
        pair.start()
        await pair.wait_for(lambda v: b"type q" in v.stdout)
        pair.send_eof()
        await pair.wait_for(exited)
    assert pair.view.exit_status == 0


# -- echo and the session object ---------------------------------------------------------------


async def test_echo_sends_back_and_exits_at_eof() -> None:
    async with memory_pair(echo) as pair:
        pair.start(pty=False)
        pair.send(b"hello ")
        pair.send(b"world")
        await pair.wait_for(lambda v: v.stdout == b"hello world")
        pair.send_eof()
        await pair.wait_for(exited)
    assert pair.view.exit_status == 0


async def test_events_arrive_in_order_without_breaking_a_pending_read() -> None:
    seen: list[InputEvent] = []

    async def app(session: Session) -> None:
        async for event in session:
            seen.append(event)
            if isinstance(event, Signal):
                event.accept()
            if isinstance(event, EOF):
                await session.exit(3)

    async with memory_pair(app) as pair:
        pair.start()
        await anyio.wait_all_tasks_blocked()  # the application waits in receive()
        pair.send(b"a")
        pair.resize(WindowSize(cols=90, rows=20))
        pair.signal("INT")
        pair.send(b"b")
        pair.send_eof()
        await pair.wait_for(exited)
    kinds = [type(event) for event in seen]
    assert kinds == [Data, WindowChange, Signal, Data, EOF]
    assert seen[1] == WindowChange(size=WindowSize(cols=90, rows=20))
    assert isinstance(seen[2], Signal)
    assert seen[2].name == "INT"
    assert pair.view.exit_status == 3


async def test_an_undecided_break_is_refused_and_an_accepted_one_succeeds() -> None:
    async def app(session: Session) -> None:
        count = 0
        async for event in session:
            if isinstance(event, Break):
                count += 1
                if count == 2:
                    event.accept()
            elif isinstance(event, EOF):
                await session.exit(0)

    async with memory_pair(app) as pair:
        pair.start()
        pair.send_break()  # left undecided: refused when the next event is taken
        pair.send_break()  # accepted
        pair.send_eof()
        await pair.wait_for(exited)
    breaks = [
        answer.accepted for answer in pair.view.answers if answer.request.request_type == "break"
    ]
    assert breaks == [False, True]


async def test_the_session_tells_what_the_client_asked_for() -> None:
    got: dict[str, object] = {}

    async def app(session: Session) -> None:
        got.update(
            pty=session.pty,
            env=dict(session.environment),
            program=session.program,
            user=session.username,
        )
        await session.exit(0)

    async with memory_pair(app) as pair:
        pair.start(command="ls", env={"LANG": "C.UTF-8", "SECRET": "no"}, modes=MODES)
        await pair.wait_for(exited)
    pty = got["pty"]
    assert isinstance(pty, PtyRequest)
    assert pty.modes == MODES
    assert got["env"] == {"LANG": "C.UTF-8"}  # SECRET is not in accept_env
    assert getattr(got["program"], "command", None) == "ls"
    assert got["user"] == "tester"


async def test_returning_means_status_0_and_raising_status_1() -> None:
    async def quiet(session: Session) -> None:
        await session.write(b"bye\n")

    async def broken(session: Session) -> None:
        raise RuntimeError("application bug")

    async with memory_pair(quiet) as pair:
        pair.start(pty=False)
        await pair.wait_for(exited)
    assert (bytes(pair.view.stdout), pair.view.exit_status) == (b"bye\n", 0)
    async with memory_pair(broken) as pair:
        pair.start(pty=False)
        await pair.wait_for(exited)
    assert pair.view.exit_status == 1


async def test_writes_wait_for_the_clients_window() -> None:
    """A client that stops reading stops the application; reading again resumes it."""
    total = 8 * 1024 * 1024
    finished = anyio.Event()

    async def app(session: Session) -> None:
        await session.write(b"x" * total)
        finished.set()
        await session.exit(0)

    async with memory_pair(app, client_window=65536) as pair:
        pair.hold = True
        pair.start(pty=False)
        await anyio.wait_all_tasks_blocked()
        assert not finished.is_set()  # blocked: 64 KiB window plus the core's 2 MiB buffer
        pair.release()
        await pair.wait_for(exited)
    assert finished.is_set()
    assert len(pair.view.stdout) == total
    assert pair.view.exit_status == 0


async def test_a_closed_channel_ends_receive_and_breaks_writes() -> None:
    outcome: list[str] = []

    async def app(session: Session) -> None:
        async for _ in session:
            pass
        outcome.append("end of input")
        with pytest.raises(anyio.BrokenResourceError):
            await session.write(b"late")
        outcome.append("write refused")
        await session.exit(0)  # nothing to report to: ignored

    async with memory_pair(app) as pair:
        pair.start()
        await anyio.wait_all_tasks_blocked()
        pair.close()
        await pair.wait_for(exited)
        with anyio.fail_after(5):
            while len(outcome) < 2:
                await anyio.sleep(0)
    assert outcome == ["end of input", "write refused"]
    assert pair.view.exit_status is None


async def test_subsystems_are_refused_unless_configured() -> None:
    async with memory_pair(echo) as pair:
        pair.session.request_subsystem("sftp")
        pair.pump()
        await pair.wait_for(lambda v: bool(v.answers))
    assert [a.accepted for a in pair.view.answers] == [False]
    async with memory_pair(echo, subsystems=("echo",)) as pair:
        pair.session.request_subsystem("echo")
        pair.pump()
        pair.send(b"ping")
        await pair.wait_for(lambda v: v.stdout == b"ping")
    assert [a.accepted for a in pair.view.answers] == [True]


# -- shell ---------------------------------------------------------------------------------------


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


SHELL = Shell("/bin/sh")


async def _run(pair: MemoryPair) -> None:
    await pair.wait_for(exited)


async def test_shell_exec_with_a_pty_sees_size_term_and_modes() -> None:
    before = _open_fds()
    modes = TerminalModes([(Opcode.ECHO, 0), (Opcode.VINTR, 7)])
    async with memory_pair(SHELL) as pair:
        pair.start(
            command='stty size; echo "$TERM"; stty -a; exit 7',
            size=WindowSize(cols=101, rows=33),
            term="vt220",
            modes=modes,
        )
        await _run(pair)
    out = bytes(pair.view.stdout)
    assert b"33 101\r\n" in out
    assert b"vt220\r\n" in out
    assert b"-echo " in out
    assert b"intr = ^G" in out
    assert pair.view.exit_status == 7
    assert _open_fds() <= before


async def test_shell_resize_reaches_the_program() -> None:
    async with memory_pair(SHELL) as pair:
        pair.start(command="read line; stty size", size=WindowSize(cols=80, rows=24))
        pair.resize(WindowSize(cols=120, rows=50))
        pair.send(b"go\r")
        await _run(pair)
    assert b"50 120" in pair.view.stdout
    assert pair.view.exit_status == 0


async def test_shell_signal_kills_with_exit_signal() -> None:
    async with memory_pair(SHELL) as pair:
        pair.start(pty=False, command="echo ready; exec sleep 30")
        await pair.wait_for(lambda v: b"ready" in v.stdout)
        pair.signal("TERM")
        await _run(pair)
    assert pair.view.exit_signal is not None
    assert pair.view.exit_signal.name == "TERM"
    assert pair.view.exit_status is None


async def test_shell_without_a_pty_separates_stderr_and_passes_env_and_stdin() -> None:
    before = _open_fds()
    async with memory_pair(SHELL) as pair:
        pair.start(
            pty=False,
            command='echo out; echo err >&2; echo "$LANG"; cat; exit 3',
            env={"LANG": "C.UTF-8"},
        )
        pair.send(b"from stdin\n")
        pair.send_eof()
        await _run(pair)
    assert bytes(pair.view.stdout) == b"out\nC.UTF-8\nfrom stdin\n"
    assert bytes(pair.view.stderr) == b"err\n"
    assert pair.view.exit_status == 3
    assert _open_fds() <= before


async def test_shell_client_closing_hangs_up_the_program() -> None:
    before = _open_fds()
    async with memory_pair(SHELL) as pair:
        pair.start(command="echo ready; sleep 30")
        await pair.wait_for(lambda v: b"ready" in v.stdout)
        pair.close()
        await _run(pair)
        with anyio.fail_after(10):
            while not _open_fds() <= before:
                await anyio.sleep(0.01)
    assert pair.view.exit_status is None


# -- the tutorial's example ---------------------------------------------------------------------


def _example() -> Application:
    path = Path(__file__).parent.parent / "examples" / "anyio_terminal.py"
    spec = importlib.util.spec_from_file_location("anyio_terminal", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: Application = module.show_terminal
    return app


async def test_the_tutorial_example() -> None:
    async with memory_pair(_example()) as pair:
        pair.start(term="xterm-256color", size=WindowSize(cols=80, rows=24))
        await pair.wait_for(lambda v: b"rows tall" in v.stdout)
        pair.resize(WindowSize(cols=100, rows=40))
        await pair.wait_for(lambda v: b"Now 100x40.\r\n" in v.stdout)
        pair.send(b"q")
        await pair.wait_for(exited)
    assert pair.view.stdout.startswith(
        b"Your terminal name is 'xterm-256color'.\r\n"
        b"Your terminal is 80 columns wide and 24 rows tall.\r\n"
    )
    assert pair.view.exit_status == 0
    async with memory_pair(_example()) as pair:
        pair.start(pty=False)
        await pair.wait_for(exited)
    assert bytes(pair.view.stdout) == b"You did not ask for a terminal.\n"


async def test_a_slow_application_closes_the_clients_window() -> None:
    """Input the application has not taken holds the client's window shut: the
    server buffers at most one window, and the window reopens as the application reads."""
    total = 8 * 1024 * 1024
    window = ConnectionConfig().window_size
    gate = anyio.Event()
    received = bytearray()

    async def slow(session: Session) -> None:
        await gate.wait()
        async for event in session:
            if isinstance(event, Data):
                received.extend(event.data)
            elif isinstance(event, EOF):
                break
        await session.exit(0)

    async with memory_pair(slow) as pair:
        pair.start(pty=False)
        await anyio.wait_all_tasks_blocked()
        (session,) = pair.router.sessions
        sent = 0
        while (room := pair.client.writable(pair.channel)) > 0:
            pair.send(b"x" * min(room, total - sent))
            sent += min(room, total - sent)
            assert sent < total  # the window closed long before
        assert pair.client.send_window(pair.channel) == 0
        assert session.input_buffered == window  # one window: the rest waits at the client
        gate.set()
        while sent < total:
            await pair.wait_for(lambda _: pair.client.writable(pair.channel) > 0)
            size = min(pair.client.writable(pair.channel), total - sent)
            pair.send(b"x" * size)
            sent += size
            assert session.input_buffered <= window
        pair.send_eof()
        await pair.wait_for(exited)
    assert len(received) == total
    assert pair.view.exit_status == 0


async def test_data_that_arrived_back_to_back_comes_as_one_event() -> None:
    gate = anyio.Event()
    seen: list[InputEvent] = []

    async def late(session: Session) -> None:
        await gate.wait()
        async for event in session:
            seen.append(event)
            if isinstance(event, EOF):
                await session.exit(0)

    async with memory_pair(late) as pair:
        pair.start(pty=True)
        for part in (b"one ", b"two ", b"three"):
            pair.send(part)
        pair.resize(WindowSize(cols=70, rows=20))
        pair.send(b"four")
        pair.send_eof()
        gate.set()
        await pair.wait_for(exited)
    assert seen == [
        Data(data=b"one two three"),
        WindowChange(size=WindowSize(cols=70, rows=20)),
        Data(data=b"four"),
        EOF(),
    ]


async def test_two_writers_waiting_for_the_window_both_resume() -> None:
    """stdout and stderr written from two tasks while the client is not reading."""
    size = 3 * 1024 * 1024

    async def two_pumps(session: Session) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(session.write, b"o" * size)
            tasks.start_soon(session.write_stderr, b"e" * size)
        await session.exit(0)

    async with memory_pair(two_pumps, client_window=65536) as pair:
        pair.hold = True
        pair.start(pty=False)
        await anyio.wait_all_tasks_blocked()
        pair.release()
        await pair.wait_for(exited)
    assert bytes(pair.view.stdout) == b"o" * size
    assert bytes(pair.view.stderr) == b"e" * size
    assert pair.view.exit_status == 0
