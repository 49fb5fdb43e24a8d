"""benchmarks/bench_server.py runs end to end: one cheap figure against one server.

No timing is asserted: only that the figure exists and is a plausible number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_server.py"

pytestmark = pytest.mark.skipif(not os.access("/usr/bin/ssh", os.X_OK), reason="no OpenSSH client")


def test_latency_figure_against_ptycore_anyio_asyncio(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--only", "latency",
         "--only", "ptycore-anyio-asyncio", "--runs", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["skipped"] == {}
    assert list(results["servers"]) == ["ptycore-anyio-asyncio"]
    figure = results["servers"]["ptycore-anyio-asyncio"]["latency"]
    assert figure["runs"] == 3
    assert 0 < figure["median_ms"] <= figure["max_ms"] < 30_000
    assert "Figure 2" in done.stdout
    assert "ptycore-anyio-asyncio" in done.stdout
