"""Twisted Conch in 60 Seconds: PTY Requests, rewritten on ptycore.

The original tutorial implements ``ISession.getPty(term, windowSize, modes)`` and
unpacks ``windowSize`` itself: Conch hands it over as ``(rows, cols, ...)`` while
the wire sends columns first, and a client that asks for no PTY (``ssh -T``)
makes ``openShell`` fail because ``getPty`` never ran. Here the PTY request is a
typed object with a named size, and "no PTY" is simply ``None``.

Run it, then log in with ``ssh -p 5022 localhost``::

    python3 examples/conch_tutorial.py ~/.ssh/authorized_keys [PORT]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from ptycore_twisted import SessionProtocol, load_or_create_host_key, make_factory


class ShowTerminal(SessionProtocol):
    """Tell the client what terminal it asked for, then end the session."""

    def session_started(self) -> None:
        pty = self.transport.pty
        if pty is None:
            self.transport.write(b"You did not ask for a terminal.\n")
        else:
            self.transport.write(f"Your terminal name is {pty.term!r}.\r\n".encode())
            self.transport.write(
                f"Your terminal is {pty.size.cols} columns wide "
                f"and {pty.size.rows} rows tall.\r\n".encode()
            )
        self.transport.exit(0)


def main(reactor: Any, authorized_keys: str, port: str = "5022") -> defer.Deferred[None]:
    factory = make_factory(
        ShowTerminal,
        host_keys=[load_or_create_host_key(Path("ssh_host_ed25519_key"))],
        authorized_keys=Path(authorized_keys),
        reactor=reactor,
    )
    listening = reactor.listenTCP(int(port), factory, interface="127.0.0.1")
    print(f"listening on 127.0.0.1:{listening.getHost().port}", flush=True)
    return defer.Deferred()  # serve until Ctrl-C


if __name__ == "__main__":
    task.react(main, sys.argv[1:3])
