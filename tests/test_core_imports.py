"""The core is sans-IO: importing it loads no networking, threading or event loop."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import ptycore

CORE = Path(ptycore.__file__).parent

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


def _cryptography_modules_the_core_imports() -> set[str]:
    """Every ``cryptography`` module named in an import statement of the core."""
    # The OpenSSL backend, which cryptography loads lazily on first use.
    modules = {"cryptography.hazmat.backends.openssl"}
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return {name for name in modules if name.partition(".")[0] == "cryptography"}


def test_importing_the_core_loads_no_io_module() -> None:
    # What cryptography itself loads (some versions load threading) is not the
    # core's doing, so the probe imports those modules first and counts only what
    # importing ptycore adds on top.
    cryptography_modules = sorted(_cryptography_modules_the_core_imports())
    assert cryptography_modules  # the core does use cryptography
    probe = (
        "import sys, json, importlib\n"
        f"for name in {cryptography_modules!r}: importlib.import_module(name)\n"
        "before = set(sys.modules)\n"
        "import ptycore, ptycore.transport\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
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
