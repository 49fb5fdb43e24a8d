"""``ptycore serve``'s choice of adapter and event loop, and what it says when the
pip extra an adapter needs is missing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ptycore_cli import UsageError, parse_args
from twisted_helpers import WAIT, run_server

# Runs ``ptycore serve`` as if the package named by argv[1] were not installed:
# importing it fails as it does then, with ModuleNotFoundError naming it.
UNINSTALLED = """
import sys

class Uninstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == sys.argv[1]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Uninstalled())
from ptycore_cli import main
sys.exit(main(["serve", "--password-file", "/dev/null", "--port", "0", *sys.argv[2:]]))
"""


def test_default_is_the_anyio_adapter_on_asyncio_with_the_loop_chosen_automatically() -> None:
    config = parse_args(["serve", "--password-file", "/dev/null"])
    assert (config.adapter, config.backend, config.loop) == ("anyio", "asyncio", "auto")


@pytest.mark.parametrize("other", [("--backend", "trio"), ("--adapter", "twisted")])
def test_loop_is_only_for_the_asyncio_backend(other: tuple[str, ...]) -> None:
    with pytest.raises(UsageError, match="--loop asyncio: only for --adapter anyio --backend"):
        parse_args(["serve", "--password-file", "/dev/null", "--loop", "asyncio", *other])


@pytest.mark.parametrize(
    ("missing", "args", "extra"),
    [
        ("anyio", (), "anyio"),  # the default adapter
        ("bcrypt", (), "anyio"),
        ("trio", ("--backend", "trio"), "anyio"),
        ("twisted", ("--adapter", "twisted"), "twisted"),
        ("bcrypt", ("--adapter", "twisted"), "twisted"),
    ],
)
def test_a_missing_extra_is_named_with_its_pip_command(
    tmp_path: Path, missing: str, args: tuple[str, ...], extra: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", UNINSTALLED, missing, *args],
        capture_output=True, text=True, timeout=WAIT, cwd=tmp_path, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        1,
        f"ptycore serve: error: --adapter {extra} needs {missing}, which is not installed: "
        f"python3 -m pip install 'ptycore[{extra}]'\n",
    )


def _listening_line(lines: list[str]) -> str:
    """The banner line, read once the server has stopped: while it runs, the log
    line "listening on HOST:PORT" that run_server waits for can come first."""
    (line,) = (line for line in lines if line.startswith("ptycore serve: listening on"))
    return line


def test_the_listening_line_names_the_loop_auto_picks(tmp_path: Path) -> None:
    found = importlib.util.find_spec("uvloop") is not None
    with run_server(tmp_path, "info", adapter="anyio") as server:
        pass
    line = _listening_line(server.lines)
    loop = "asyncio with uvloop" if found else "asyncio's own loop"
    assert f"(app info, anyio on {loop}, host key SHA256:" in line


# uvloop is not a dependency; this stand-in (first on sys.path: the server's
# working directory) shows that ``--loop auto`` runs it when it is importable and
# that ``--loop asyncio`` does not.
STAND_IN_UVLOOP = """
import asyncio
import sys

def new_event_loop():
    print("stand-in uvloop: new_event_loop", file=sys.stderr, flush=True)
    return asyncio.new_event_loop()
"""


@pytest.mark.parametrize(
    ("args", "loop"),
    [
        ((), "asyncio with uvloop"),
        (("--loop", "uvloop"), "asyncio with uvloop"),
        (("--loop", "asyncio"), "asyncio's own loop"),
        (("--backend", "trio"), "trio"),
    ],
)
def test_uvloop_runs_when_importable_unless_asked_otherwise(
    tmp_path: Path, args: tuple[str, ...], loop: str
) -> None:
    (tmp_path / "uvloop.py").write_text(STAND_IN_UVLOOP)
    with run_server(tmp_path, "info", *args, adapter="anyio") as server:
        pass
    line = _listening_line(server.lines)
    assert f"(app info, anyio on {loop}, host key SHA256:" in line
    started = "stand-in uvloop: new_event_loop" in server.lines
    assert started == (loop == "asyncio with uvloop")
    assert server.lines[-1] == "ptycore serve: stopped"


def _ssh_keygen_ecdsa(path: Path, bits: int) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-b", str(bits), "-N", "", "-f", str(path)],
        check=True, timeout=WAIT,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("bits", [256, 384, 521])
@pytest.mark.parametrize("adapter", ["anyio", "twisted"])
def test_an_ecdsa_host_key_is_offered_to_the_client(
    tmp_path: Path, adapter: str, bits: int
) -> None:
    """The default host key algorithms leave out the NIST curves; an operator who
    gives an ECDSA host key (``ssh-keygen -t ecdsa -b 256|384|521``) asks for it."""
    host_key = _ssh_keygen_ecdsa(tmp_path / "ssh_host_ecdsa_key", bits)
    algorithm = f"ecdsa-sha2-nistp{bits}"
    with run_server(tmp_path, "info", "--host-key", str(host_key), adapter=adapter) as server:
        done = subprocess.run(
            [*server.ssh_args("-v", "-o", f"HostKeyAlgorithms={algorithm}"), "true"],
            capture_output=True, timeout=WAIT, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    assert done.returncode == 0, (done.stderr, server.log())
    assert b"no terminal" in done.stdout.lower()
    assert f"Server host key: {algorithm} SHA256:".encode() in done.stderr


@pytest.mark.parametrize("bits", [384, 521])
@pytest.mark.parametrize("adapter", ["anyio", "twisted"])
def test_an_ecdsa_user_key_logs_in(tmp_path: Path, adapter: str, bits: int) -> None:
    """``ssh -i`` with a P-384 or P-521 user key: signed with SHA-384 or SHA-512 by
    OpenSSH and verified by the server (RFC 5656 section 6.2.1)."""
    user_key = _ssh_keygen_ecdsa(tmp_path / "id_ecdsa", bits)
    authorized = tmp_path / "authorized_ecdsa"
    public = user_key.with_suffix(".pub").read_text()
    assert public.startswith(f"ecdsa-sha2-nistp{bits} ")
    authorized.write_text(public)
    with run_server(
        tmp_path, "info", "--authorized-keys", str(authorized), adapter=adapter
    ) as server:
        # The helper's Ed25519 key is not in this authorized_keys file: only the
        # ECDSA key can let the client in.
        done = subprocess.run(
            [*server.ssh_args("-v", "-i", str(user_key)), "true"],
            capture_output=True, timeout=WAIT, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    assert done.returncode == 0, (done.stderr, server.log())
    assert f"Server accepts key: {user_key} ECDSA".encode() in done.stderr, done.stderr
    assert b'using "publickey"' in done.stderr


@pytest.mark.parametrize(("backend", "imported"), [("trio", False), ("asyncio", True)])
def test_only_the_asyncio_backend_imports_asyncio(backend: str, *, imported: bool) -> None:
    """A trio server does without asyncio's modules (about 1.5 MiB resident)."""
    probe = (
        "import sys\n"
        "from ptycore_cli import _import_adapter, parse_args\n"
        "_import_adapter(parse_args(['serve', '--password-file', '/dev/null',"
        f" '--backend', {backend!r}]))\n"
        "print('asyncio' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    assert done.stdout.split() == [str(imported)]
