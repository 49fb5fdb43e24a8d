"""The ``ptycore`` command: ``ptycore serve`` runs an SSH server with a session app.

It runs the anyio adapter on asyncio by default (on uvloop when it is installed);
``--adapter twisted`` runs the Twisted one. Safe by default: it listens on
127.0.0.1 only, keeps a host key it generated once in the user's state directory,
and lets in the keys of ``~/.ssh/authorized_keys``. Errors in options or files end
it with one line on standard error and exit status 2 (a bad option) or 1 (a file,
the network, or an adapter whose extra is not installed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._malloc import keep_freed_memory

__all__ = [
    "BUILTIN_APPS",
    "ServeConfig",
    "UsageError",
    "authorized_keys_or_default",
    "load_application",
    "main",
    "parse_args",
]

BUILTIN_APPS = ("info", "echo", "shell")
"""The applications ``--app`` knows by name; anything with a ``:`` is MODULE:ATTRIBUTE."""

DEFAULT_ACCEPT_ENV = ("LANG", "LC_*")
"""Environment variables accepted from clients by default: Debian's and most
distributions' ``sshd_config`` ship ``AcceptEnv LANG LC_*`` (OpenSSH itself
accepts none)."""


class UsageError(Exception):
    """A bad option or file; the message is one line for the user."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeConfig:
    """The validated options of ``ptycore serve``."""

    adapter: str
    backend: str
    loop: str
    host: str
    port: int
    host_key: Path | None
    authorized_keys: Path | None
    password_file: Path | None
    app: str
    accept_env: tuple[str, ...]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptycore", description="SSH session channels, sans-IO, with servers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run an SSH server",
        description="Run an SSH server whose sessions run an application.",
    )
    serve.add_argument(
        "--adapter",
        choices=("anyio", "twisted"),
        default="anyio",
        help="anyio: ptycore's own SSH transport (pip extra [anyio]); twisted: Twisted "
        "Conch's (pip extra [twisted]) (default: anyio)",
    )
    serve.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="event loop library of the anyio adapter (default: asyncio)",
    )
    serve.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop of the asyncio backend: auto is uvloop when it is installed, "
        "else asyncio's own (default: auto)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=2222, help="TCP port (default 2222; 0 picks a free one)"
    )
    serve.add_argument(
        "--host-key",
        type=Path,
        metavar="PATH",
        help="private host key in OpenSSH format (default: one generated once and kept in "
        "$XDG_STATE_HOME/ptycore)",
    )
    serve.add_argument(
        "--authorized-keys",
        type=Path,
        metavar="PATH",
        help="public keys allowed to log in (default: ~/.ssh/authorized_keys if it exists)",
    )
    serve.add_argument(
        "--password-file",
        type=Path,
        metavar="PATH",
        help="user:password lines, the password plain or a bcrypt hash",
    )
    serve.add_argument(
        "--app",
        default="info",
        metavar="info|echo|shell|MODULE:ATTRIBUTE",
        help="what each session runs (default: info)",
    )
    serve.add_argument(
        "--accept-env",
        action="append",
        metavar="PATTERN",
        help="environment variable names clients may set (* and ?; repeatable; "
        "default: LANG LC_*)",
    )
    return parser


def parse_args(argv: Sequence[str]) -> ServeConfig:
    """Parse and validate the command line.

    argparse reports malformed options itself (usage, then one error line, exit
    status 2); what it cannot check raises :class:`UsageError`.
    """
    options = _parser().parse_args(list(argv))
    if not 0 <= options.port <= 65535:
        raise UsageError(f"--port {options.port}: not a TCP port (0-65535)")
    if options.app not in BUILTIN_APPS and ":" not in options.app:
        raise UsageError(f"--app {options.app}: give info, echo, shell or MODULE:ATTRIBUTE")
    if options.loop != "auto" and (options.adapter, options.backend) != ("anyio", "asyncio"):
        raise UsageError(f"--loop {options.loop}: only for --adapter anyio --backend asyncio")
    authorized = authorized_keys_or_default(options.authorized_keys, options.password_file)
    return ServeConfig(
        adapter=options.adapter,
        backend=options.backend,
        loop=options.loop,
        host=options.host,
        port=options.port,
        host_key=options.host_key,
        authorized_keys=authorized,
        password_file=options.password_file,
        app=options.app,
        accept_env=tuple(options.accept_env or DEFAULT_ACCEPT_ENV),
    )


def authorized_keys_or_default(given: Path | None, password_file: Path | None) -> Path | None:
    """``given``, else ``~/.ssh/authorized_keys`` when it exists; :class:`UsageError`
    when that leaves no way to log in at all."""
    if given is not None:
        return given
    default = Path.home() / ".ssh" / "authorized_keys"
    if default.exists():
        return default
    if password_file is None:
        raise UsageError(
            f"nobody could log in: {default} does not exist; add your public key "
            "to it, or give --authorized-keys or --password-file"
        )
    return None


def load_application(spec: str) -> Callable[[], Any]:
    """Import ``MODULE:ATTRIBUTE`` (the attribute may be dotted), as uvicorn does.

    The current directory is searched first, so ``--app myapp:Hello`` finds
    ``./myapp.py``.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"--app {spec}: expected MODULE:ATTRIBUTE")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"--app {spec}: cannot import {module_name}: {error}") from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise UsageError(f"--app {spec}: {module_name} has no {attribute}") from None
    if not callable(found):
        raise UsageError(f"--app {spec}: {attribute} is not callable")
    return found  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ptycore`` console script."""
    args = sys.argv[1:] if argv is None else argv
    try:
        config = parse_args(args)
    except UsageError as error:
        print(f"ptycore serve: error: {error}", file=sys.stderr)
        return 2
    try:
        serve = _import_adapter(config)
    except ModuleNotFoundError as error:
        if not error.name or error.name.startswith("ptycore"):
            raise  # ptycore's own module: a broken install, not a missing extra
        print(
            f"ptycore serve: error: --adapter {config.adapter} needs {error.name}, which is "
            f"not installed: python3 -m pip install 'ptycore[{config.adapter}]'",
            file=sys.stderr,
        )
        return 1
    keep_freed_memory()
    return serve(config)


def _import_adapter(config: ServeConfig) -> Callable[[ServeConfig], int]:
    """The adapter's ``serve``, imported only now: each needs its own pip extra, and
    a module missing from it raises :class:`ModuleNotFoundError` naming it."""
    if config.adapter == "twisted":
        from ._twisted import serve  # noqa: PLC0415 (the [twisted] extra)

        return serve
    if config.backend == "trio":
        # Before the adapter, which then does without asyncio (1.5 MiB less).
        importlib.import_module("trio")
    from ._anyio import serve_anyio  # noqa: PLC0415 (the [anyio] extra)

    # trio comes with the [anyio] extra too; without it anyio.run raises LookupError.
    importlib.import_module(config.backend)
    return serve_anyio
