"""A minimal Twisted Conch server for ``bench_server.py``: the commands of ``bench_commands.py``.

Run as ``python3 bench_peer_conch.py HOST_KEY AUTHORIZED_KEYS``; it listens on
127.0.0.1 on a free port and prints ``listening on 127.0.0.1:PORT`` to standard
error. The session channel is a plain ``SSHChannel`` with Conch's defaults (its
128 KiB receive window included); output is written as the client's window opens,
so nothing waits in Conch's channel buffer. Log events are dropped, as a quiet
production server would.
"""

from __future__ import annotations

import getpass
import struct
import sys
from pathlib import Path
from typing import Any, cast

from bench_commands import CHUNK, READY, Command, parse
from twisted.conch import avatar, checkers
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import channel, common, factory, keys
from twisted.cred import portal
from twisted.internet import reactor as _reactor
from twisted.logger import ILogObserver, globalLogBeginner
from zope.interface import implementer

# Conch is mostly unannotated: seen through Any, as in bench_codec.py.
reactor: Any = _reactor
conch_avatar: Any = avatar
conch_channel: Any = channel
conch_checkers: Any = checkers
conch_factory: Any = factory
cred_portal: Any = portal


class BenchChannel(conch_channel.SSHChannel):  # type: ignore[misc]
    """A session channel running one benchmark command."""

    name = b"session"
    _command: Command | None = None
    _left = 0
    _chunk = bytes(CHUNK)
    _done = False

    def request_pty_req(self, data: bytes) -> bool:
        return True

    def request_shell(self, data: bytes) -> bool:
        return self._start(None)

    def request_exec(self, data: bytes) -> bool:
        command, _ = common.getNS(data)
        return self._start(command.decode("utf-8", "replace"))

    def _start(self, command: str | None) -> bool:
        if self._command is not None:
            return False
        self._command = parse(command)
        if self._command is None:
            return False
        reactor.callLater(0, self._run)  # after Conch sends the request's success reply
        return True

    def _run(self) -> None:
        command = self._command
        if command is None or self.closing:
            return
        if command.kind == "true":
            self._finish()
        elif command.kind == "idle":
            self.write(READY)
        elif command.kind == "zeros":
            self._left = command.size
            self._produce()

    def _produce(self) -> None:
        while self._left > 0 and self.remoteWindowLeft > 0 and not self.buf:
            size = min(self._left, CHUNK, self.remoteWindowLeft)
            self.write(self._chunk if size == CHUNK else self._chunk[:size])
            self._left -= size
        if self._left == 0 and not self.buf:
            self._finish()

    def addWindowBytes(self, data: int) -> None:
        super().addWindowBytes(data)
        if self._left > 0:
            self._produce()

    def dataReceived(self, data: bytes) -> None:
        """Dropped: the upload figure discards its input."""

    def eofReceived(self) -> None:
        command = self._command
        if command is not None and command.kind in ("discard", "idle"):
            self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.conn.sendRequest(self, b"exit-status", struct.pack(">L", 0))
        self.conn.sendEOF(self)
        self.loseConnection()


class User(conch_avatar.ConchUser):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.channelLookup[b"session"] = BenchChannel


@implementer(portal.IRealm)
class Realm:
    def requestAvatar(self, avatar_id: bytes, mind: object, *interfaces: object) -> Any:
        return IConchUser, User(), lambda: None


def _drop(event: object) -> None:
    """A log observer that keeps nothing."""


def main(host_key: str, authorized_keys: str) -> None:
    globalLogBeginner.beginLoggingTo([cast(ILogObserver, _drop)], redirectStandardIO=False)
    private = keys.Key.fromFile(host_key)
    allowed = [
        keys.Key.fromString(line.encode())
        for line in Path(authorized_keys).read_text().splitlines()
        if line.strip()
    ]
    database = conch_checkers.InMemorySSHKeyDB({getpass.getuser().encode(): allowed})
    server = conch_factory.SSHFactory()
    server.portal = cred_portal.Portal(Realm(), [conch_checkers.SSHPublicKeyChecker(database)])
    server.privateKeys = {private.sshType(): private}
    server.publicKeys = {private.sshType(): private.public()}
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    print(f"listening on 127.0.0.1:{port.getHost().port}", file=sys.stderr, flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
