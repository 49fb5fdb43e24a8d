"""Who may log in: authorized keys and password files, as Twisted cred checkers.

Both files are read again at every login attempt, as ``sshd`` does, so edits take
effect without a restart; :func:`read_authorized_keys` and
:func:`read_password_file` are also called once at start-up so that an unreadable
file stops the server with a clear message instead of refusing every login later.

The server runs every session as the user who started it, so the login name is
only a label: any name is accepted with a key from the authorized keys file or with
the password the password file lists for that name.
"""

from __future__ import annotations

import hmac
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
from twisted.conch.ssh import keys
from twisted.cred import credentials, error
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.internet import defer, threads
from twisted.logger import Logger
from zope.interface import implementer

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
    "make_portal",
    "read_authorized_keys",
    "read_password_file",
]

_log = Logger(namespace="ptycore")

_BCRYPT_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")
"""bcrypt's hash prefixes (OpenBSD ``bcrypt(3)``; ``$2y$`` from crypt_blowfish)."""

_MAX_FILE_SIZE = 1 << 20
"""Cap on an authorized keys or password file: 1 MiB. OpenSSH reads authorized keys
line by line without a total cap; a personal server's files are a few KiB."""


class CredentialsFileError(Exception):
    """An authorized keys or password file cannot be read; one line for users."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FileProblem:
    """A line that was skipped, and why (logged, never fatal: sshd does the same)."""

    line: int
    reason: str


def _read_lines(path: Path, what: str) -> list[bytes]:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_SIZE + 1)
    except OSError as error:
        raise CredentialsFileError(f"cannot read {what} {path}: {error.strerror}") from None
    if len(data) > _MAX_FILE_SIZE:
        raise CredentialsFileError(f"cannot use {what} {path}: larger than 1 MiB")
    return data.splitlines()


def _skip_options(line: bytes) -> bytes:
    """Return ``line`` after its options field.

    sshd(8), AUTHORIZED_KEYS FILE FORMAT: options are comma-separated and contain
    no spaces except inside double quotes, where ``\\"`` is a literal quote
    (OpenSSH ``authfile.c`` ``sshkey_advance_past_options``).
    """
    quoted = False
    index = 0
    while index < len(line):
        char = line[index : index + 1]
        if not quoted and char in (b" ", b"\t"):
            break
        if char == b"\\" and quoted and line[index + 1 : index + 2] == b'"':
            index += 1
        elif char == b'"':
            quoted = not quoted
        index += 1
    return line[index:].lstrip(b" \t")


def _parse_key_line(line: bytes) -> keys.Key:
    """Parse ``[options] keytype base64 [comment]`` as sshd's ``auth_check_authkey_line``:
    first as a bare key, then after skipping the options."""
    key: keys.Key
    try:
        key = keys.Key.fromString(line)
    except (keys.BadKeyError, ValueError, IndexError):
        key = keys.Key.fromString(_skip_options(line))
    return key


def read_authorized_keys(path: Path) -> tuple[list[keys.Key], list[FileProblem]]:
    """The public keys in an OpenSSH ``authorized_keys`` file, and the lines skipped.

    Options before a key are accepted and ignored (ptycore does not implement
    ``command=``, ``from=`` and the like: a key with options grants what a key
    without them grants). Empty lines and ``#`` comments are skipped.
    """
    found: list[keys.Key] = []
    problems: list[FileProblem] = []
    for number, raw in enumerate(_read_lines(path, "authorized keys file"), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            key = _parse_key_line(line)
        except (keys.BadKeyError, ValueError, IndexError) as problem:
            problems.append(FileProblem(line=number, reason=str(problem) or "not a key"))
            continue
        if not key.isPublic():
            problems.append(FileProblem(line=number, reason="a private key"))
            continue
        found.append(key)
    return found, problems


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """An :class:`~twisted.conch.checkers.IAuthorizedKeysDB` over one file, for any user."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def getAuthorizedKeys(self, username: bytes) -> Iterable[keys.Key]:
        """Read the file again and return its keys (a vanished file gives none)."""
        try:
            found, problems = read_authorized_keys(self.path)
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


def read_password_file(path: Path) -> dict[bytes, bytes]:
    """``user:password`` lines (Twisted's ``FilePasswordDB`` format) as a dict.

    The password is plain text or a bcrypt hash (``$2b$...``, made for example with
    ``htpasswd -nbB user password`` or ``bcrypt.hashpw``). Empty lines, ``#``
    comments and lines without a ``:`` are skipped; a repeated user keeps the last.
    """
    entries: dict[bytes, bytes] = {}
    for raw in _read_lines(path, "password file"):
        line = raw.rstrip(b"\r\n")
        if not line or line.startswith(b"#") or b":" not in line:
            continue
        user, _, password = line.partition(b":")
        entries[user] = password
    return entries


def _password_matches(given: bytes, stored: bytes) -> bool:
    if stored.startswith(_BCRYPT_PREFIXES):
        try:
            return bcrypt.checkpw(given, stored)
        except ValueError:  # a malformed hash never matches
            return False
    return hmac.compare_digest(given, stored)


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
            reactor, reactor.getThreadPool(), _password_matches, password, stored
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
        read_authorized_keys(authorized_keys)
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
