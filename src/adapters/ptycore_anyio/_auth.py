"""Who may log in: an :class:`ptycore.auth.Authenticator` over the files sshd uses.

The same files and the same parsing as the Twisted adapter's cred checkers
(:mod:`ptycore_common.credentials`): both are read again at every attempt, as sshd
does, so edits take effect without a restart (the authorized keys only when
``stat`` says the file may have changed, see
:class:`~ptycore_common.credentials.FileCache`), and once at start-up so that an
unreadable file stops the server with a clear message. The server runs every
session as the user who started it, so the login name is only a label: any name
is accepted with an authorized key, or with the password listed for that name.

The options of an authorized key are enforced as sshd does (``from=``,
``expiry-time=``, ``no-pty``, ``restrict``, ``pty``, ``command=``): the server
binds the authenticator to each connection's address with
:meth:`FileAuthenticator.for_peer`, and a key that may log in does so with the
:class:`~ptycore.auth.LoginRestrictions` of its line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path

from ptycore.auth import Authenticator, AuthResult, PasswordPrompt
from ptycore_common.credentials import (
    CredentialsFileError,
    FileCache,
    authorize_key,
    authorized_keys_by_blob,
    password_matches,
    read_password_file,
)

__all__ = ["FileAuthenticator"]

logger = logging.getLogger("ptycore.anyio")


class FileAuthenticator(PasswordPrompt):
    """Public keys from an ``authorized_keys`` file, passwords from a password file.

    Raises :class:`~ptycore_common.credentials.CredentialsFileError` when neither
    file is given or one cannot be read now, so a server never starts in a state
    where nobody can log in. :attr:`blocking` is true with a password file:
    bcrypt is slow on purpose, and the server then runs the core's authentication
    steps in a worker thread (see :mod:`ptycore.auth`).
    """

    def __init__(
        self,
        *,
        authorized_keys: Path | None = None,
        password_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if authorized_keys is None and password_file is None:
            raise CredentialsFileError(
                "nobody could log in: give an authorized keys file or a password file"
            )
        self._authorized = None
        if authorized_keys is not None:
            self._authorized = FileCache(authorized_keys, authorized_keys_by_blob)
            self._authorized.get()
        if password_file is not None:
            read_password_file(password_file)
        self.authorized_keys = authorized_keys
        self.password_file = password_file
        self.blocking = password_file is not None
        self._clock = clock

    def for_peer(self, address: str) -> Authenticator:
        """This authenticator for one connection from ``address``, sharing the files'
        caches (:class:`~ptycore.auth.PeerAuthenticator`). Unbound, a key with
        ``from=`` never logs in."""
        return _PeerBound(self, address)

    def methods_for(self, username: str) -> Collection[str]:
        """publickey with an authorized keys file; password and keyboard-interactive
        with a password file."""
        methods = []
        if self.authorized_keys is not None:
            methods.append("publickey")
        if self.password_file is not None:
            methods += ["keyboard-interactive", "password"]
        return methods

    def check_public_key(self, username: str, algorithm: str, public_blob: bytes) -> AuthResult:
        """Whether the key is in the authorized keys file as it is now, and what its
        options let it do now from an unknown address (``auth2-pubkey.c``)."""
        return self.check_key_from(public_blob, None)

    def check_key_from(self, public_blob: bytes, peer_address: str | None) -> AuthResult:
        """:meth:`check_public_key` for a client at ``peer_address``."""
        if self._authorized is None:
            return False
        try:
            keys, problems = self._authorized.get()
        except CredentialsFileError as problem:
            logger.warning("%s", problem)
            return False
        for skipped in problems:
            logger.warning(
                "%s line %d skipped: %s", self.authorized_keys, skipped.line, skipped.reason
            )
        restrictions, refusals = authorize_key(
            keys.get(public_blob, ()),
            public_blob,
            peer_address=peer_address,
            now=self._clock(),
        )
        for refusal in refusals:
            logger.warning("%s %s", self.authorized_keys, refusal)
        return False if restrictions is None else restrictions

    def check_password(self, username: str, password: str) -> AuthResult:
        """Whether the password file lists this password (plain or bcrypt) for the user."""
        if self.password_file is None:
            return False
        try:
            entries = read_password_file(self.password_file)
        except CredentialsFileError as problem:
            logger.warning("%s", problem)
            return False
        stored = entries.get(username.encode("utf-8", "surrogateescape"))
        if stored is None:
            return False
        return password_matches(password.encode("utf-8", "surrogateescape"), stored)


class _PeerBound(PasswordPrompt):
    """A :class:`FileAuthenticator` for one connection: two slots, the files and
    their caches shared (an idle connection keeps its authenticator)."""

    __slots__ = ("_files", "peer_address")

    def __init__(self, files: FileAuthenticator, peer_address: str) -> None:
        self._files = files
        self.peer_address = peer_address

    def methods_for(self, username: str) -> Collection[str]:
        return self._files.methods_for(username)

    def check_public_key(self, username: str, algorithm: str, public_blob: bytes) -> AuthResult:
        return self._files.check_key_from(public_blob, self.peer_address)

    def check_password(self, username: str, password: str) -> AuthResult:
        return self._files.check_password(username, password)
