"""``twistd ptycore``: the Twisted server as a twistd plugin, found by twistd through
the installed package and serving the real OpenSSH client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from twisted_helpers import TWISTD, WAIT, make_keys, run_server

pytestmark = pytest.mark.network


def test_twistd_lists_the_plugin() -> None:
    done = subprocess.run(
        [sys.executable, "-c", TWISTD, "--help"],
        capture_output=True, text=True, timeout=WAIT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert any(line.split()[:1] == ["ptycore"] for line in done.stdout.splitlines())


def test_twistd_ptycore_serves_openssh_and_stops_on_sigterm(tmp_path: Path) -> None:
    payload = os.urandom(1 << 16)
    with run_server(tmp_path, "echo", twistd=True) as server:
        echoed = subprocess.run(
            server.ssh_args("-T"), input=payload, capture_output=True, timeout=WAIT, check=False
        )
        terminal = subprocess.run(
            [*server.ssh_args("-tt"), "anything"],
            input=b"abc\x04", capture_output=True, timeout=WAIT, check=False,
        )  # fmt: skip
    assert (echoed.returncode, echoed.stdout) == (0, payload), echoed.stderr
    assert terminal.returncode == 0, terminal.stderr
    assert b"abc" in terminal.stdout
    assert "ptycore: app echo, host key SHA256:" in server.log()
    assert "Server Shut Down." in server.log()
    # twistd ends by the signal that stopped it, once it has shut down cleanly.
    assert server.process.returncode == -signal.SIGTERM


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--app", "nope"), "--app nope: give info, echo, shell or MODULE:ATTRIBUTE"),
        (("--host-key", "/nonexistent"), "cannot read host key /nonexistent"),
        (("--app", "no_such_module:app"), "--app no_such_module:app: cannot import"),
    ],
)
def test_a_bad_option_ends_twistd_with_one_line_before_it_listens(
    tmp_path: Path, option: tuple[str, str], message: str
) -> None:
    keys = make_keys(tmp_path / "keys")
    done = subprocess.run(
        [
            sys.executable, "-c", TWISTD, "--nodaemon", "--pidfile=", "ptycore",
            "--listen", "tcp:0:interface=127.0.0.1", "--authorized-keys",
            str(keys.authorized_keys), *option,
        ],
        capture_output=True, text=True, timeout=WAIT, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert message in done.stdout + done.stderr
    assert "starting on" not in done.stdout + done.stderr
