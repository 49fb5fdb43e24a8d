"""``ssh-audit`` (the ``test`` extra) against ptycore servers in their default
configuration: ``ptycore serve --adapter anyio`` as a user starts it, and a bare
:class:`~ptycore.server.ServerConnection` with ``config=None`` behind the tests'
blocking loop.

What must hold (issue 5): no failure; the Terrapin check passes (the strict kex
marker is offered and no algorithm is marked vulnerable); warnings only on the
algorithms ``docs/transport.rst`` lists, each with ssh-audit's reason quoted there.
ssh-audit runs as a user would run it, rate test (DHEat) included, and its exit
status is checked as well as its JSON report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopback import TIMEOUT, running_server
from ptycore.auth import SimpleAuthenticator

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(shutil.which("ssh-audit") is None, reason="needs ssh-audit"),
]

DOCS = Path(__file__).parent.parent / "docs" / "transport.rst"

# ssh-audit's exit statuses (ssh_audit/exitcodes.py): 0 good, 2 warnings, 3 failures.
WARNING = 2
ALGORITHM_SECTIONS = ("kex", "key", "enc", "mac")
STRICT_KEX_MARKER = "kex-strict-s-v00@openssh.com"


def audit(port: int) -> tuple[int, dict[str, Any]]:
    """ssh-audit's exit status and JSON report for 127.0.0.1:port."""
    result = subprocess.run(
        ["ssh-audit", "-j", "-p", str(port), "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        check=False,
    )
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def notes(report: dict[str, Any], level: str) -> dict[str, list[str]]:
    """Algorithm name -> ssh-audit's notes of one level (``fail``, ``warn``)."""
    return {
        entry["algorithm"]: entry["notes"][level]
        for section in ALGORITHM_SECTIONS
        for entry in report[section]
        if entry.get("notes", {}).get(level)
    }


def check_report(status: int, report: dict[str, Any]) -> None:
    assert notes(report, "fail") == {}
    assert report["cves"] == []
    assert report["recommendations"] == {}
    # Terrapin (CVE-2023-48795): ssh-audit marks chacha20-poly1305 and any CBC or
    # ETM MAC vulnerable unless the server offers the strict kex marker.
    kex_names = [entry["algorithm"] for entry in report["kex"]]
    assert STRICT_KEX_MARKER in kex_names
    every_note = json.dumps([report[section] for section in ALGORITHM_SECTIONS])
    assert "vulnerable to the Terrapin attack" not in every_note
    assert any(
        "properly supports the strict key exchange" in n for n in report["additional_notes"]
    )
    # Warnings: only the documented ones, each with ssh-audit's reason in the docs.
    warned = notes(report, "warn")
    assert set(warned) == {"curve25519-sha256", "curve25519-sha256@libssh.org"}
    documented = " ".join(DOCS.read_text().split())
    for name, reasons in warned.items():
        assert f"``{name.split('@')[0]}" in documented or name in documented
        for reason in reasons:
            assert reason in documented, f"{name}: {reason!r} is not in {DOCS.name}"
    assert status == WARNING  # warnings, and nothing worse


@pytest.fixture(params=["anyio", "twisted"])
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``ptycore serve --adapter A --port 0`` with a fresh default host key; A and the port."""
    adapter: str = request.param
    authorized = tmp_path / "authorized_keys"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "user")],
        check=True,
        timeout=TIMEOUT,
    )
    authorized.write_bytes((tmp_path / "user.pub").read_bytes())
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    command = [sys.executable, "-m", "ptycore_cli", "serve", "--adapter", adapter, "--port", "0"]
    log = tmp_path / "serve.log"
    with (
        log.open("w") as stderr,
        subprocess.Popen(
            [*command, "--authorized-keys", str(authorized)], stderr=stderr, env=env
        ) as process,
    ):
        try:
            # "ptycore serve: listening on 127.0.0.1:PORT (...)"; a file, not a pipe, so
            # the server's log lines never fill a buffer nobody reads.
            deadline = time.monotonic() + TIMEOUT
            while "ptycore serve: listening on" not in log.read_text() and process.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)  # polling a condition, with a deadline
            first = next(
                line
                for line in log.read_text().splitlines()
                if line.startswith("ptycore serve: listening on")
            )
            assert "listening on 127.0.0.1:" in first, first
            # The fingerprint it prints is the one ssh-keygen (and so ssh) shows.
            host_key = tmp_path / "state" / "ptycore" / "ssh_host_ed25519_key"
            listed = subprocess.run(
                ["ssh-keygen", "-l", "-f", str(host_key)],
                capture_output=True,
                text=True,
                check=True,
                timeout=TIMEOUT,
            ).stdout.split()[1]
            assert f"host key {listed})" in first, (listed, first)
            yield adapter, int(first.split("127.0.0.1:")[1].split()[0])
        finally:
            process.terminate()
            process.wait(TIMEOUT)
    assert (tmp_path / "state" / "ptycore" / "ssh_host_ed25519_key").is_file()


def test_ptycore_serve_default_configuration(serve: tuple[str, int]) -> None:
    adapter, port = serve
    status, report = audit(port)
    if adapter == "anyio":
        check_report(status, report)
        return
    # Twisted Conch's transport: no failure either, but Conch has no strict kex, no
    # AEAD cipher and no encrypt-then-MAC mode, which docs/serve.rst says.
    assert notes(report, "fail") == {}
    assert report["cves"] == []
    assert "vulnerable to the Terrapin attack" not in json.dumps(report)
    assert set(notes(report, "warn")) == {
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "hmac-sha2-512",
        "hmac-sha2-256",
    }
    assert report["kex"][0]["algorithm"] == "mlkem768x25519-sha256"
    assert status == WARNING


def test_server_connection_default_configuration() -> None:
    with running_server(SimpleAuthenticator(passwords={"alice": "unused"})) as server:
        status, report = audit(server.port)
    assert server.errors == []
    check_report(status, report)
    assert [entry["algorithm"] for entry in report["key"]] == ["ssh-ed25519"]
