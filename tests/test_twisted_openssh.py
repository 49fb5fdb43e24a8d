"""The real OpenSSH client against `ptycore serve --adapter twisted`.

Interactive sessions run under a private tmux server at a known size, so the
terminal the client describes is a real one; non-interactive runs use ``ssh -T``
and plain commands. One server per application, shared by the module.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from twisted_helpers import (
    WAIT,
    Server,
    run_in_pane,
    run_server,
    ssh,
    tmux_session,
    wait_for,
)

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def info_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("info"), "info") as server:
        yield server


@pytest.fixture(scope="module")
def shell_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(
        tmp_path_factory.mktemp("shell"), "shell", env={"SHELL": "/bin/bash"}
    ) as server:
        yield server


def test_info_interactive_shows_tmux_terminal_and_follows_resize(
    info_server: Server, tmp_path: Path
) -> None:
    command = ["env", "TERM=tmux-256color", *info_server.ssh_args("-tt")]
    with tmux_session(tmp_path, command, cols=100, rows=30) as tmux:
        tmux.wait_screen(r"rows tall\.", "the info output")
        screen = tmux.screen()
        assert "Your terminal name is 'tmux-256color'." in screen
        assert "Your terminal is 100 columns wide and 30 rows tall." in screen
        assert re.search(r"intr = \^C;", screen), screen
        tmux.resize(120, 40)
        tmux.wait_screen(r"120 columns wide and 40 rows tall\.", "the new size")
        tmux.keys("q")
        try:
            assert tmux.wait_exit() == 0
        except AssertionError as error:
            raise AssertionError(f"{error}\nserver log:\n{info_server.log()}") from None


def test_info_without_terminal(info_server: Server) -> None:
    done = ssh(info_server, "-T")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout
        == "No terminal was requested, so there is no terminal name, size or modes to show.\n"
    )


def test_info_with_a_command_and_a_forced_terminal(info_server: Server) -> None:
    done = ssh(info_server, "-tt", command="anything")
    assert done.returncode == 0, done.stderr
    # ssh's own stdin is not a terminal: OpenSSH then sends its TERM, a 0x0 size
    # and an empty mode list (clientloop.c client_session2_setup), and says so.
    assert "Your terminal name is " in done.stdout
    assert "Your terminal is 0 columns wide and 0 rows tall.\n" in done.stdout


def test_info_command_without_terminal_exits_zero(info_server: Server) -> None:
    done = ssh(info_server, command="anything")
    assert done.returncode == 0, done.stderr
    assert "No terminal was requested" in done.stdout
    assert re.search(r"session \d+: exec accepted", info_server.log())


def test_shell_applies_modes_set_with_stty_before_connecting(
    shell_server: Server, tmp_path: Path
) -> None:
    line = " ".join(shell_server.ssh_args("-tt"))
    command = ["sh", "-c", f"stty intr ^G -ixon erase ^H; exec {line}"]
    with tmux_session(tmp_path, command, cols=100, rows=30) as tmux:
        screen = run_in_pane(tmux, "stty -a", "MODES-1")
        assert "intr = ^G" in screen
        assert "erase = ^H" in screen
        assert re.search(r"(^|\s)-ixon(\s|$)", screen, re.MULTILINE), screen
        tmux.keys("exit 0", "Enter")
        assert tmux.wait_exit() == 0


def test_shell_size_follows_resize_and_ctrl_c_interrupts(
    shell_server: Server, tmp_path: Path
) -> None:
    with tmux_session(tmp_path, shell_server.ssh_args("-tt"), cols=100, rows=30) as tmux:
        assert "30 100" in run_in_pane(tmux, "stty size", "SIZE-1")
        tmux.resize(120, 40)
        assert "40 120" in run_in_pane(tmux, "clear; stty size", "SIZE-2")
        tmux.keys("sleep 93; echo NOT-REACHED", "Enter")
        wait_for(lambda: sleepers(shell_server, b"93"), "sleep to run")
        tmux.keys("C-c")
        wait_for(lambda: not sleepers(shell_server, b"93"), "sleep to be interrupted")
        screen = run_in_pane(tmux, "echo still-here", "AFTER-3")
        assert "NOT-REACHED\n" not in screen.replace("echo NOT-REACHED", "")
        tmux.keys("exit 4", "Enter")
        assert tmux.wait_exit() == 4


def sleepers(server: Server, argument: bytes) -> list[int]:
    """Descendants of the server running ``sleep ARGUMENT``."""
    found = []
    todo = [server.pid]
    while todo:
        parent = todo.pop()
        try:
            kids = [
                int(k) for k in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            ]
        except OSError:
            continue
        todo.extend(kids)
        for kid in kids:
            try:
                if Path(f"/proc/{kid}/cmdline").read_bytes() == b"sleep\x00" + argument + b"\x00":
                    found.append(kid)
            except OSError:
                continue
    return found


def test_shell_exec_exit_status(shell_server: Server) -> None:
    assert ssh(shell_server, command="exit 7").returncode == 7
    # stdin is /dev/null: ssh sends EOF before the exec reply; cat must still see it.
    done = ssh(shell_server, command="cat; echo cat-done")
    assert (done.returncode, done.stdout) == (0, "cat-done\n")
    done = ssh(shell_server, command="echo out; echo err >&2")
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")


@pytest.mark.parametrize("size", [100_000, 300_000, 4 << 20])
def test_shell_exec_cat_passes_input_through_and_ends_at_eof(
    shell_server: Server, size: int
) -> None:
    """Input faster than ``cat`` reads it pauses the session, stdin's producer; the
    EOF after it must still close cat's stdin. It did not when the session was still
    paused at the EOF (most runs of the two smaller sizes): the pipe stayed open."""
    data = os.urandom(size)
    done = subprocess.run(
        [*shell_server.ssh_args("-T"), "cat"],
        input=data, capture_output=True, timeout=WAIT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(done.stdout).digest() == hashlib.sha256(data).digest()


def test_twenty_sessions_leave_no_child_and_no_descriptor(shell_server: Server) -> None:
    assert ssh(shell_server, "-tt", command="true").returncode == 0  # warm up lazy imports
    wait_for(shell_server.idle, "the warm-up connection to close and its child to be reaped")
    before = shell_server.fds()
    for number in range(20):
        extra = ("-tt",) if number % 2 else ("-T",)
        done = ssh(shell_server, *extra, command=f"exit {number}")
        assert done.returncode == number
    wait_for(shell_server.idle, "every connection to close and every child to be reaped")
    try:
        wait_for(lambda: shell_server.fds() == before, "descriptors back to where they were")
    except AssertionError:
        after = shell_server.fds()
        raise AssertionError(f"new: {after - before}, gone: {before - after}") from None


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly_and_hangs_up_open_sessions(
    tmp_path: Path, signal_number: int
) -> None:
    with run_server(tmp_path, "shell", env={"SHELL": "/bin/sh"}) as server:
        client = subprocess.Popen(
            [*server.ssh_args("-T"), "echo started; sleep 94"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert client.stdout is not None
        assert client.stdout.readline() == b"started\n"
        wait_for(lambda: sleepers(server, b"94"), "the program to run")
        sleeper = sleepers(server, b"94")[0]
        server.process.send_signal(signal_number)
        assert server.process.wait(timeout=WAIT) == 0
        assert "ptycore serve: stopped" in server.log()
        client.wait(timeout=WAIT)
        client.stdout.close()
        wait_for(lambda: not Path(f"/proc/{sleeper}").exists(), "the program to be hung up")
