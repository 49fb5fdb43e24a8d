"""``ptycore serve --adapter twisted``: Conch's transport, ptycore's sessions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.keys import FingerprintFormats, Key
from twisted.internet.error import CannotListenError
from twisted.logger import LogLevel, eventAsText, globalLogBeginner

from ptycore.session import SessionPolicy
from ptycore_twisted import (
    CredentialsFileError,
    EchoProtocol,
    HostKeyError,
    InfoProtocol,
    ShellProtocol,
    default_host_key_path,
    load_host_key,
    load_or_create_host_key,
    make_factory,
)
from ptycore_twisted._reactor import default_reactor

from . import ServeConfig, UsageError, load_application

__all__ = ["build_factory", "fingerprint", "serve"]

_BY_APPLICATION = 11
"""SSH_DISCONNECT_BY_APPLICATION (RFC 4253 11.1): what ``ssh`` sends when it is done."""

_BUILTIN: dict[str, Any] = {"info": InfoProtocol, "echo": EchoProtocol, "shell": ShellProtocol}


def _observer(stream: TextIO) -> Callable[[dict[str, Any]], None]:
    """A log observer for ptycore's own lines (one per connection and per request)
    and every warning; Conch's chatter about key exchange stays out."""

    def observe(event: dict[str, Any]) -> None:
        namespace = str(event.get("log_namespace", ""))
        level = event.get("log_level", LogLevel.info)
        if event.get("code") == _BY_APPLICATION:
            return  # Conch logs every client's ordinary goodbye as an error
        if namespace == "ptycore" or level >= LogLevel.warn:
            text = eventAsText(event, includeTimestamp=True, includeSystem=False)
            stream.write(text + "\n")
            stream.flush()

    return observe


def build_factory(
    *,
    app: str,
    host_key: Path | None,
    authorized_keys: Path | None,
    password_file: Path | None,
    accept_env: tuple[str, ...],
    reactor: Any,
) -> tuple[SSHFactory, Key]:
    """The SSH factory of ``ptycore serve``'s options, and its host key (``host_key``
    loaded, or one generated once and kept). Raises :class:`UsageError`,
    :class:`HostKeyError`, :class:`CredentialsFileError` or ValueError, each with a
    message for the user."""
    application = _BUILTIN.get(app) or load_application(app)
    if host_key is not None:
        key = load_host_key(host_key)
    else:
        key = load_or_create_host_key(default_host_key_path())
    factory = make_factory(
        application,
        host_keys=[key],
        policy=SessionPolicy(accept_env=accept_env),
        authorized_keys=authorized_keys,
        password_file=password_file,
        reactor=reactor,
    )
    return factory, key


def fingerprint(key: Key) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return f"SHA256:{key.fingerprint(format=FingerprintFormats.SHA256_BASE64).rstrip('=')}"


def serve(config: ServeConfig) -> int:
    """Run the server until SIGINT or SIGTERM; return the exit status."""
    reactor = default_reactor()

    try:
        factory, key = build_factory(
            app=config.app,
            host_key=config.host_key,
            authorized_keys=config.authorized_keys,
            password_file=config.password_file,
            accept_env=config.accept_env,
            reactor=reactor,
        )
        port = reactor.listenTCP(config.port, factory, interface=config.host)
    except UsageError as error:
        print(f"ptycore serve: error: {error}", file=sys.stderr)
        return 2
    except (HostKeyError, CredentialsFileError, ValueError) as error:
        print(f"ptycore serve: error: {error}", file=sys.stderr)
        return 1
    except CannotListenError as error:
        print(
            f"ptycore serve: error: cannot listen on {config.host}:{config.port}: "
            f"{error.socketError}",
            file=sys.stderr,
        )
        return 1
    observer: Any = _observer(sys.stderr)  # an ILogObserver: any callable taking an event
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    address = port.getHost()
    print(
        f"ptycore serve: listening on {address.host}:{address.port} "
        f"(app {config.app}, host key {fingerprint(key)})",
        file=sys.stderr,
        flush=True,
    )
    reactor.run()  # SIGINT and SIGTERM stop it; open sessions are hung up on the way out
    print("ptycore serve: stopped", file=sys.stderr, flush=True)
    return 0
