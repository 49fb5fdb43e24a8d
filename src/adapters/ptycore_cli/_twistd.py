"""``twistd ptycore``: the server of ``ptycore serve --adapter twisted`` as a twistd
service (the plugin is ``twisted/plugins/ptycore_serve.py``).

twistd adds what a long-running Twisted server wants and ``ptycore serve`` leaves
out: running as a daemon, pid and log files, dropping privileges (``--uid``,
``--gid``) after the port is open, and any listening endpoint: ``--listen`` takes a
strports description (``tcp:2222:interface=::``, ``systemd:domain=INET:index=0``).
The other options and their defaults are ``ptycore serve``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.application import strports
from twisted.application.internet import StreamServerEndpointService
from twisted.logger import Logger
from twisted.python import usage

from ptycore_twisted import CredentialsFileError, HostKeyError
from ptycore_twisted._reactor import default_reactor

from . import BUILTIN_APPS, DEFAULT_ACCEPT_ENV, UsageError, authorized_keys_or_default
from ._twisted import build_factory, fingerprint

__all__ = ["Options", "makeService"]

_log = Logger(namespace="ptycore")

DEFAULT_LISTEN = "tcp:2222:interface=127.0.0.1"
"""Where ``ptycore serve`` listens by default, as a strports description."""


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


class Options(usage.Options):
    """twistd's options of the ``ptycore`` plugin."""

    optParameters = [  # noqa: RUF012 (usage.Options reads these class attributes)
        ["listen", "l", DEFAULT_LISTEN, "strports description of where to listen"],
        [
            "host-key",
            "k",
            None,
            "private host key in OpenSSH format (default: one "
            "generated once and kept in $XDG_STATE_HOME/ptycore)",
        ],
        [
            "authorized-keys",
            "a",
            None,
            "public keys allowed to log in (default: ~/.ssh/authorized_keys if it exists)",
        ],
        ["password-file", "p", None, "user:password lines, the password plain or a bcrypt hash"],
        ["app", None, "info", "info, echo, shell or MODULE:ATTRIBUTE: what each session runs"],
    ]

    def opt_accept_env(self, pattern: str) -> None:
        """Environment names clients may set: * and ? patterns, repeatable (LANG LC_*)."""
        self.setdefault("accept-env", []).append(pattern)

    def postOptions(self) -> None:
        """Check the options and load what they name, so that a bad file ends twistd
        with one line before it forks, as ``ptycore serve`` does."""
        app = self["app"]
        if app not in BUILTIN_APPS and ":" not in app:
            raise usage.UsageError(f"--app {app}: give info, echo, shell or MODULE:ATTRIBUTE")
        try:
            password_file = _path(self["password-file"])
            self.factory, self.host_key = build_factory(
                app=app,
                host_key=_path(self["host-key"]),
                authorized_keys=authorized_keys_or_default(
                    _path(self["authorized-keys"]), password_file
                ),
                password_file=password_file,
                accept_env=tuple(self.get("accept-env", ())) or DEFAULT_ACCEPT_ENV,
                reactor=default_reactor(),
            )
        except (UsageError, HostKeyError, CredentialsFileError, ValueError) as error:
            raise usage.UsageError(str(error)) from None


def makeService(options: Options) -> StreamServerEndpointService:
    """The listening service: ``--listen`` serving the factory of the options."""
    _log.info(
        "ptycore: app {app}, host key {fingerprint}",
        app=options["app"],
        fingerprint=fingerprint(options.host_key),
    )
    factory: Any = options.factory  # an IProtocolFactory (zope interfaces have no types)
    return strports.service(options["listen"], factory)
