"""The core is sans-IO: importing it loads no networking, threading or event loop."""

from __future__ import annotations

import json
import subprocess
import sys

import ptycore

# Modules a sans-IO core has no business loading. ``time`` is not listed: the
# standard library imports it everywhere, and loading it reads no clock.
FORBIDDEN = {
    "socket",
    "selectors",
    "ssl",
    "threading",
    "asyncio",
    "subprocess",
    "twisted",
    "anyio",
    "trio",
    "ptycore_twisted",
    "ptycore_anyio",
    "ptycore_common",
    "ptycore_cli",
}


def test_importing_the_core_loads_no_io_module() -> None:
    probe = (
        "import sys, json; before = set(sys.modules); import ptycore, ptycore.transport; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.partition(".")[0] for name in json.loads(result.stdout)}
    assert "ptycore" in loaded  # the probe really imported something
    assert loaded & FORBIDDEN == set()


def test_version_is_the_one_in_the_ssh_banner() -> None:
    assert ptycore.__version__
    assert ptycore.transport.TransportConfig().version == f"SSH-2.0-ptycore_{ptycore.__version__}"
