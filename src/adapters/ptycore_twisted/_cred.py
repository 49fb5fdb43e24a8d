"""Who may log in: authorized keys and password files, as Twisted cred checkers.

Both files are read again at every login attempt, as ``sshd`` does, so edits take
effect without a restart (the authorized keys only when ``stat`` says the file may
have changed, see :class:`~ptycore_common.credentials.FileCache`).
:func:`make_portal` also reads both once at start-up, so that an unreadable file
stops the server with a clear message instead of refusing every login later.

The server runs every session as the user who started it, so the login name is
only a label: any name is accepted with a key from the authorized keys file or with
the password the password file lists for that name.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twisted.conch.ssh import keys
from twisted.cred import credentials, error
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.internet import defer, threads
from twisted.logger import Logger
from zope.interface import implementer

from ptycore_common.credentials import (
    CredentialsFileError,
    FileCache,
    FileProblem,
    password_matches,
    read_authorized_keys,
    read_password_file,
)

from ._reactor import default_reactor

with warnings.catch_warnings():
    # twisted.conch.checkers imports the spwd module, deprecated since Python 3.11
    # (PEP 594); ptycore never uses shadow passwords.
    warnings.filterwarnings("ignore", "'spwd' is deprecated", DeprecationWarning)
    from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker

__all__ = [
    "AuthorizedKeysFile",
    "CredentialsFileError",
    "PasswordFile",
    "conch_keys",
    "make_portal",
]

_log = Logger(namespace="ptycore")


def conch_keys(path: Path) -> tuple[list[keys.Key], list[FileProblem]]:
    """The keys of an OpenSSH ``authorized_keys`` file as Conch keys, and the lines
    skipped, in file order: those :func:`ptycore_common.credentials.read_authorized_keys`
    skips, and the key types Conch cannot verify (``sk-*``)."""
    entries, problems = read_authorized_keys(path)
    found: list[keys.Key] = []
    for entry in entries:
        try:
            key: keys.Key = keys.Key.fromString(entry.blob, type="blob")
        except (keys.BadKeyError, ValueError) as problem:
            problems.append(FileProblem(line=entry.line, reason=f"{entry.key_type}: {problem}"))
            continue
        found.append(key)
    problems.sort(key=lambda problem: problem.line)
    return found, problems


def _conch_keys_kept(path: Path) -> tuple[tuple[keys.Key, ...], tuple[FileProblem, ...]]:
    """:func:`conch_keys`, immutable: kept and shared between attempts."""
    found, problems = conch_keys(path)
    return tuple(found), tuple(problems)


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """An :class:`~twisted.conch.checkers.IAuthorizedKeysDB` over one file, for any user."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys = FileCache(path, _conch_keys_kept)

    def getAuthorizedKeys(self, username: bytes) -> Iterable[keys.Key]:
        """The file's keys as it is now (a vanished file gives none)."""
        try:
            found, problems = self._keys.get()
        except CredentialsFileError as problem:
            _log.warn("{problem}", problem=problem)
            return []
        for skipped in problems:
            _log.warn(
                "{path} line {line} skipped: {reason}",
                path=self.path,
                line=skipped.line,
                reason=skipped.reason,
            )
        return found


@implementer(ICredentialsChecker)
class PasswordFile:
    """Check passwords against a password file (plain or bcrypt), read at each attempt.

    bcrypt is slow on purpose, so the comparison runs in the reactor's thread pool.
    """

    credentialInterfaces = (credentials.IUsernamePassword,)

    def __init__(self, path: Path, reactor: Any = None) -> None:
        self.path = path
        self._reactor = reactor

    def requestAvatarId(self, creds: Any) -> defer.Deferred[bytes]:
        """Fire with the user name, or fail with ``UnauthorizedLogin``.

        ``creds`` provides ``IUsernamePassword``.
        """
        try:
            stored = read_password_file(self.path).get(creds.username)
        except CredentialsFileError as problem:
            _log.warn("{problem}", problem=problem)
            stored = None
        if stored is None:
            return defer.fail(error.UnauthorizedLogin("unknown user"))
        username: bytes = creds.username
        password = creds.password if isinstance(creds.password, bytes) else b""

        def decide(matched: bool) -> bytes:
            if not matched:
                raise error.UnauthorizedLogin("wrong password")
            return username

        reactor = self._reactor or default_reactor()
        waiting = threads.deferToThreadPool(
            reactor, reactor.getThreadPool(), password_matches, password, stored
        )
        return waiting.addCallback(decide)


def make_portal(
    realm: Any,
    *,
    authorized_keys: Path | None = None,
    password_file: Path | None = None,
    reactor: Any = None,
) -> Portal:
    """A :class:`~twisted.cred.portal.Portal` for ``realm`` (an ``IRealm``) with the
    checkers for the files given.

    Raises :class:`CredentialsFileError` when neither file is given or one cannot
    be read now, so a server never starts in a state where nobody can log in.
    """
    checkers: list[Any] = []
    if authorized_keys is not None:
        conch_keys(authorized_keys)
        keydb: Any = AuthorizedKeysFile(authorized_keys)
        checkers.append(SSHPublicKeyChecker(keydb))
    if password_file is not None:
        read_password_file(password_file)
        checkers.append(PasswordFile(password_file, reactor))
    if not checkers:
        raise CredentialsFileError(
            "nobody could log in: give an authorized keys file or a password file"
        )
    return Portal(realm, checkers)
