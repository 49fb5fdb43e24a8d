"""``ptycore serve --adapter anyio``: ptycore's own transport on asyncio or trio.

The same host key (kept in the user's state directory), the same authorized keys
and password files, the same applications and log lines as ``--adapter twisted``.
On asyncio, uvloop runs when it is installed (``--loop auto``), or as ``--loop``
says; the line that says the server listens names the loop.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import sys
from typing import Any

import anyio

from ptycore.connection import ConnectionConfig
from ptycore.server import ServerConfig
from ptycore.session import SessionPolicy
from ptycore.transport import HostKey, TransportConfig
from ptycore_anyio import FileAuthenticator, echo, info, serve, shell
from ptycore_common.credentials import CredentialsFileError
from ptycore_common.hostkeys import (
    HostKeyError,
    default_host_key_path,
    load_host_key,
    load_or_create_host_key,
)

from . import ServeConfig, UsageError, load_application

__all__ = ["serve_anyio"]

_BUILTIN: dict[str, Any] = {"info": info, "echo": echo, "shell": shell}

_LOOP_NAMES = {"trio": "trio", "asyncio": "asyncio's own loop", "uvloop": "asyncio with uvloop"}
"""How the line that says the server listens names each loop."""


def _event_loop(config: ServeConfig) -> str:
    """The loop to run: ``trio``, ``asyncio`` (its own loop) or ``uvloop``."""
    if config.backend == "trio":
        return "trio"
    if config.loop == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if config.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise UsageError("--loop uvloop: uvloop is not installed: python3 -m pip install uvloop")
    return config.loop


def _transport_config(key: HostKey) -> TransportConfig:
    """The default algorithms, plus the host key's own when they leave them out: an
    operator who gives an ECDSA host key asks for its ``ecdsa-sha2-nistp256``,
    ``-nistp384`` or ``-nistp521``, which the defaults omit (as sshd offers whatever
    host keys it is given)."""
    defaults = TransportConfig().host_key_algorithms
    missing = tuple(name for name in key.algorithms if name not in defaults)
    return TransportConfig(host_key_algorithms=defaults + missing)


async def _run(
    config: ServeConfig, loop: str, app: Any, key: HostKey, auth: FileAuthenticator
) -> None:
    server_config = ServerConfig(
        transport=_transport_config(key),
        connection=ConnectionConfig(session_policy=SessionPolicy(accept_env=config.accept_env)),
    )
    async with anyio.create_task_group() as tasks:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            bound = await tasks.start(
                lambda task_status: serve(
                    app,
                    host=config.host,
                    port=config.port,
                    host_keys=[key],
                    authenticator=auth,
                    config=server_config,
                    task_status=task_status,
                )
            )
            addresses = ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in bound)
            print(
                f"ptycore serve: listening on {addresses} (app {config.app}, anyio on "
                f"{_LOOP_NAMES[loop]}, host key {key.fingerprint})",
                file=sys.stderr,
                flush=True,
            )
            async for _ in signals:
                break
        tasks.cancel_scope.cancel()  # every client gets DISCONNECT BY_APPLICATION


def serve_anyio(config: ServeConfig) -> int:
    """Run the server until SIGINT or SIGTERM; return the exit status."""
    try:
        loop = _event_loop(config)
        app = _BUILTIN.get(config.app) or load_application(config.app)
        if config.host_key is not None:
            key = load_host_key(config.host_key)
        else:
            key = load_or_create_host_key(default_host_key_path())
        auth = FileAuthenticator(
            authorized_keys=config.authorized_keys, password_file=config.password_file
        )
    except UsageError as error:
        print(f"ptycore serve: error: {error}", file=sys.stderr)
        return 2
    except (HostKeyError, CredentialsFileError) as error:
        print(f"ptycore serve: error: {error}", file=sys.stderr)
        return 1
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("ptycore.anyio")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    failure: BaseException | None = None
    try:
        anyio.run(
            _run,
            config,
            loop,
            app,
            key,
            auth,
            backend=config.backend,
            # anyio's documented asyncio option ("Backend specific options" in its docs)
            backend_options={"use_uvloop": True} if loop == "uvloop" else {},
        )
    except* OSError as group:  # trio's nurseries wrap what the listener raised
        failure = group.exceptions[0]
    if failure is not None:
        reason = failure.strerror if isinstance(failure, OSError) else None
        print(
            f"ptycore serve: error: cannot listen on {config.host}:{config.port}: "
            f"{reason or failure}",
            file=sys.stderr,
        )
        return 1
    print("ptycore serve: stopped", file=sys.stderr, flush=True)
    return 0
