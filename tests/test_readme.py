"""The README's example runs, and its commands are the ones CI runs."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from ptycore_cli import parse_args

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_example_runs_and_prints_what_its_comments_say() -> None:
    (example,) = re.findall(r"```python\n(.*?)```", README, re.S)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(example, "README.md", "exec"), {})
    lines = output.getvalue().splitlines()
    assert lines[0] == "WindowSize(cols=100, rows=30, width_px=0, height_px=0)"
    assert lines[1].startswith("truncated: status needs 4 bytes, 3 left ('exit-status' request")


def test_readme_starts_with_the_serve_and_test_commands_and_ci_runs_the_test_one() -> None:
    commands = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    # The serve command installs the pip extra of the adapter that serve runs by default.
    adapter = parse_args(["serve", "--password-file", "/dev/null"]).adapter
    assert commands[0] == f"python3 -m pip install '.[{adapter}]' && ptycore serve"
    assert commands[1].endswith("&& python3 -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci
