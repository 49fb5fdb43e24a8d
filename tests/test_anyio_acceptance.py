"""The Twisted adapter's acceptance checks, run unchanged against
``ptycore serve --adapter anyio`` on asyncio and on trio.

The check functions are imported from the Twisted adapter's test modules; pytest
gives them this module's fixtures, which start the anyio adapter instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import test_twisted_bad_peers as bad_peers
import test_twisted_openssh as openssh
from twisted_helpers import WAIT, Server, run_server, ssh, wait_for

pytestmark = pytest.mark.network

BACKENDS = ["asyncio", "trio"]


def _serve(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    app: str,
    shell: str,
) -> Iterator[Server]:
    backend = str(request.param)
    with run_server(
        tmp_path_factory.mktemp(f"anyio-{app}-{backend}"),
        app,
        "--backend",
        backend,
        adapter="anyio",
        env={"SHELL": shell},
    ) as running:
        yield running


@pytest.fixture(scope="module", params=BACKENDS)
def info_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(request, tmp_path_factory, "info", "/bin/sh")


@pytest.fixture(scope="module", params=BACKENDS)
def shell_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(request, tmp_path_factory, "shell", "/bin/bash")


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _serve(request, tmp_path_factory, "shell", "/bin/sh")


# The real OpenSSH client, under tmux where a terminal is needed.
test_info_interactive_shows_tmux_terminal_and_follows_resize = (
    openssh.test_info_interactive_shows_tmux_terminal_and_follows_resize
)
test_info_without_terminal = openssh.test_info_without_terminal
test_info_with_a_command_and_a_forced_terminal = (
    openssh.test_info_with_a_command_and_a_forced_terminal
)
test_info_command_without_terminal_exits_zero = (
    openssh.test_info_command_without_terminal_exits_zero
)
test_shell_applies_modes_set_with_stty_before_connecting = (
    openssh.test_shell_applies_modes_set_with_stty_before_connecting
)
test_shell_size_follows_resize_and_ctrl_c_interrupts = (
    openssh.test_shell_size_follows_resize_and_ctrl_c_interrupts
)
test_shell_exec_exit_status = openssh.test_shell_exec_exit_status
test_twenty_sessions_leave_no_child_and_no_descriptor = (
    openssh.test_twenty_sessions_leave_no_child_and_no_descriptor
)

# Peers that break the rules, driven with AsyncSSH's channel-request primitives.
test_unknown_request_with_want_reply_gets_failure = (
    bad_peers.test_unknown_request_with_want_reply_gets_failure
)
test_exec_after_shell_is_refused = bad_peers.test_exec_after_shell_is_refused
test_malformed_pty_req_disconnects_with_protocol_error = (
    bad_peers.test_malformed_pty_req_disconnects_with_protocol_error
)
test_second_pty_req_disconnects_as_openssh_does = (
    bad_peers.test_second_pty_req_disconnects_as_openssh_does
)
test_one_mebibyte_terminal_name_is_cut_off_by_the_transport = (
    bad_peers.test_one_mebibyte_terminal_name_is_cut_off_by_the_transport
)
test_long_terminal_name_gets_what_the_session_machine_decides = (
    bad_peers.test_long_terminal_name_gets_what_the_session_machine_decides
)
test_client_vanishing_mid_session_leaves_nothing_behind = (
    bad_peers.test_client_vanishing_mid_session_leaves_nothing_behind
)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly_and_hangs_up_open_sessions(
    tmp_path: Path, signal_number: int, backend: str
) -> None:
    """The Twisted check, with ``--adapter anyio``; the client is told why."""
    with run_server(
        tmp_path, "shell", "--backend", backend, adapter="anyio", env={"SHELL": "/bin/sh"}
    ) as server:
        client = subprocess.Popen(
            [*server.ssh_args("-T"), "echo started; sleep 94"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert client.stdout is not None
        assert client.stdout.readline() == b"started\n"
        wait_for(lambda: openssh.sleepers(server, b"94"), "the program to run")
        sleeper = openssh.sleepers(server, b"94")[0]
        server.process.send_signal(signal_number)
        assert server.process.wait(timeout=WAIT) == 0
        assert "ptycore serve: stopped" in server.log()
        _, stderr = client.communicate(timeout=WAIT)
        assert b"server shutting down" in stderr
        wait_for(lambda: not Path(f"/proc/{sleeper}").exists(), "the program to be hung up")


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_runs_a_module_attribute_application(tmp_path: Path, backend: str) -> None:
    """``--app MODULE:ATTRIBUTE`` with the tutorial's ``async def`` application."""
    example = Path(__file__).parent.parent / "examples" / "anyio_terminal.py"
    (tmp_path / "anyio_terminal.py").write_bytes(example.read_bytes())
    with run_server(
        tmp_path, "anyio_terminal:show_terminal", "--backend", backend, adapter="anyio"
    ) as server:
        done = ssh(server, "-tt", command="x")
        no_pty = ssh(server, "-T")
    assert "Your terminal name is" in done.stdout
    assert done.returncode == 0
    assert (no_pty.returncode, no_pty.stdout) == (0, "You did not ask for a terminal.\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_refuses_a_port_in_use_with_one_line(tmp_path: Path, backend: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"))
        done = subprocess.run(
            [
                sys.executable, "-m", "ptycore_cli", "serve", "--adapter", "anyio",
                "--backend", backend, "--port", str(port), "--password-file", "/dev/null",
            ],
            capture_output=True, text=True, timeout=WAIT, env=env, check=False,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ptycore serve: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
