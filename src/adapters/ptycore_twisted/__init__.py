"""ptycore for Twisted: a Conch SSH server whose session channels run on ptycore.

Conch keeps doing what it does well (the transport, user authentication with
cred's ``Portal`` and checkers, ``SSHFactory``); every channel request of a
``session`` channel goes through :class:`ptycore.ServerSession`, and applications
see typed requests (:class:`ptycore.PtyRequest` with a named
:class:`ptycore.WindowSize`, :class:`ptycore.TerminalModes`) instead of Conch's
``(rows, cols, ...)`` tuples::

    from ptycore_twisted import SessionProtocol, make_factory

    class Hello(SessionProtocol):
        def session_started(self):
            pty = self.transport.pty
            self.transport.write(b"no terminal\\r\\n" if pty is None else
                                 f"{pty.size.cols}x{pty.size.rows}\\r\\n".encode())
            self.transport.exit(0)
"""

from ._apps import EchoProtocol, InfoProtocol
from ._channel import (
    INPUT_WINDOW,
    MAX_OUTPUT_BUFFER,
    OUTPUT_HIGH_WATER,
    PushProducer,
    SessionChannel,
    SessionProtocol,
    SessionTransport,
)
from ._cred import (
    AuthorizedKeysChecker,
    AuthorizedKeysFile,
    CredentialsFileError,
    PasswordFile,
    PeerSSHPrivateKey,
    RestrictedAvatarId,
    conch_keys,
    make_portal,
)
from ._keys import HostKeyError, default_host_key_path, load_host_key, load_or_create_host_key
from ._server import (
    Application,
    PeerUserAuthServer,
    SessionAvatar,
    SessionRealm,
    make_factory,
)
from ._shell import ShellProtocol

__all__ = [
    "INPUT_WINDOW",
    "MAX_OUTPUT_BUFFER",
    "OUTPUT_HIGH_WATER",
    "Application",
    "AuthorizedKeysChecker",
    "AuthorizedKeysFile",
    "CredentialsFileError",
    "EchoProtocol",
    "HostKeyError",
    "InfoProtocol",
    "PasswordFile",
    "PeerSSHPrivateKey",
    "PeerUserAuthServer",
    "PushProducer",
    "RestrictedAvatarId",
    "SessionAvatar",
    "SessionChannel",
    "SessionProtocol",
    "SessionRealm",
    "SessionTransport",
    "ShellProtocol",
    "conch_keys",
    "default_host_key_path",
    "load_host_key",
    "load_or_create_host_key",
    "make_factory",
    "make_portal",
]
