"""Who may log in: authorized keys and password files, as Twisted cred checkers.

Both files are read again at every login attempt, as ``sshd`` does, so edits take
effect without a restart (the authorized keys only when ``stat`` says the file may
have changed, see :class:`~ptycore_common.credentials.FileCache`).
:func:`make_portal` also reads both once at start-up, so that an unreadable file
stops the server with a clear message instead of refusing every login later.

The server runs every session as the user who started it, so the login name is
only a label: any name is accepted with a key from the authorized keys file or with
the password the password file lists for that name.

A key's options are enforced as sshd does, by the same code as the anyio adapter
(:func:`ptycore_common.credentials.authorize_key`): :class:`AuthorizedKeysChecker`
learns the client's address from the credentials that ptycore's userauth service
makes (:class:`PeerSSHPrivateKey`) and hands the key's
:class:`~ptycore.auth.LoginRestrictions` to the realm on the avatar ID
(:class:`RestrictedAvatarId`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from twisted.conch import error as conch_error
from twisted.conch.ssh import keys
from twisted.cred import credentials, error
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.internet import defer, threads
from twisted.logger import Logger
from zope.interface import implementer

from ptycore.keyoptions import UNRESTRICTED, LoginRestrictions
from ptycore_common.credentials import (
    CredentialsFileError,
    FileCache,
    FileProblem,
    authorize_key,
    authorized_keys_by_blob,
    password_matches,
    read_authorized_keys,
    read_password_file,
)

from ._reactor import default_reactor

with warnings.catch_warnings():
    # twisted.conch.checkers imports the spwd module, deprecated since Python 3.11
    # (PEP 594); ptycore never uses shadow passwords.
    warnings.filterwarnings("ignore", "'spwd' is deprecated", DeprecationWarning)
    from twisted.conch.checkers import IAuthorizedKeysDB

__all__ = [
    "AuthorizedKeysChecker",
    "AuthorizedKeysFile",
    "CredentialsFileError",
    "PasswordFile",
    "PeerSSHPrivateKey",
    "RestrictedAvatarId",
    "conch_keys",
    "make_portal",
]

_log = Logger(namespace="ptycore")


def conch_keys(path: Path) -> tuple[list[keys.Key], list[FileProblem]]:
    """The keys of an OpenSSH ``authorized_keys`` file that may log in from
    anywhere with no restriction, as Conch keys (for Conch's own
    ``SSHPublicKeyChecker``, which knows no options), and the lines skipped, in
    file order: those :func:`ptycore_common.credentials.read_authorized_keys`
    skips, the key types Conch cannot verify (``sk-*``), and keys with options
    that restrict them (``from=``, ``command=``, ``no-pty``,
    ``no-agent-forwarding``, ``no-X11-forwarding``, ``restrict``,
    ``expiry-time=``), which only :class:`AuthorizedKeysChecker` enforces."""
    entries, problems = read_authorized_keys(path)
    found: list[keys.Key] = []
    for entry in entries:
        options = entry.options
        if (
            options.restrictions != UNRESTRICTED
            or options.from_patterns is not None
            or options.valid_before is not None
        ):
            reason = f"{entry.key_type} key skipped: its options need AuthorizedKeysChecker"
            problems.append(FileProblem(line=entry.line, reason=reason))
            continue
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


_Kept = TypeVar("_Kept")


def _read_now(cache: FileCache[tuple[_Kept, tuple[FileProblem, ...]]], path: Path) -> _Kept | None:
    """What ``cache`` keeps of the authorized keys file as it is now, its skipped lines
    logged; None, logged, when it cannot be read."""
    try:
        kept, problems = cache.get()
    except CredentialsFileError as problem:
        _log.warn("{problem}", problem=problem)
        return None
    for skipped in problems:
        _log.warn(
            "{path} line {line} skipped: {reason}",
            path=path,
            line=skipped.line,
            reason=skipped.reason,
        )
    return kept


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """An :class:`~twisted.conch.checkers.IAuthorizedKeysDB` over one file, for any user."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys = FileCache(path, _conch_keys_kept)

    def getAuthorizedKeys(self, username: bytes) -> Iterable[keys.Key]:
        """The file's keys as it is now (a vanished file gives none)."""
        found = _read_now(self._keys, self.path)
        return () if found is None else found


class PeerSSHPrivateKey(credentials.SSHPrivateKey):
    """Conch's public key credentials and the client's address (``peer_address``,
    an IP address as text), made by ptycore's userauth service for ``from=``."""

    def __init__(
        self,
        username: bytes,
        algName: bytes,
        blob: bytes,
        sigData: bytes | None,
        signature: bytes | None,
        *,
        peer_address: str | None,
    ) -> None:
        super().__init__(username, algName, blob, sigData, signature)  # type: ignore[no-untyped-call]
        self.peer_address = peer_address


class RestrictedAvatarId(bytes):
    """A user name (the avatar ID) with the :class:`~ptycore.auth.LoginRestrictions`
    of the key it logged in with, for the realm (:class:`SessionRealm` applies them
    to every session). Still ``bytes``: a realm that knows nothing of it works."""

    restrictions: LoginRestrictions

    def __new__(cls, username: bytes, restrictions: LoginRestrictions) -> RestrictedAvatarId:
        made = super().__new__(cls, username)
        made.restrictions = restrictions
        return made


@implementer(ICredentialsChecker)
class AuthorizedKeysChecker:
    """Public keys from an ``authorized_keys`` file with their options enforced
    (``auth2-pubkey.c``): ``from=`` against the credentials' ``peer_address``
    (:class:`PeerSSHPrivateKey`; other credentials fail every ``from=``),
    ``expiry-time=`` against ``clock()``; the avatar ID is a
    :class:`RestrictedAvatarId`. The file is read again whenever it may have
    changed, as sshd reads it at every attempt."""

    credentialInterfaces = (credentials.ISSHPrivateKey,)

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._keys = FileCache(path, authorized_keys_by_blob)
        self._clock = clock

    def requestAvatarId(self, creds: Any) -> defer.Deferred[bytes]:
        """Fire with a :class:`RestrictedAvatarId`; fail with ``ValidPublicKey`` for
        an authorized key without a signature (Conch then sends PK_OK), else with
        ``UnauthorizedLogin``."""
        return defer.execute(self._check, creds)

    def _check(self, creds: Any) -> bytes:
        entries = _read_now(self._keys, self.path)
        if entries is None:
            raise error.UnauthorizedLogin("no authorized keys")
        blob: bytes = creds.blob
        restrictions, refusals = authorize_key(
            entries.get(blob, ()),
            blob,
            peer_address=getattr(creds, "peer_address", None),
            now=self._clock(),
        )
        for refusal in refusals:
            _log.warn("{path} {refusal}", path=self.path, refusal=refusal)
        if restrictions is None:
            raise error.UnauthorizedLogin("key not authorized")
        if not creds.signature:
            raise conch_error.ValidPublicKey()
        try:
            verified = keys.Key.fromString(blob).verify(creds.signature, creds.sigData)
        except Exception as problem:  # any error is a failed login (as Conch's checker)
            raise error.UnauthorizedLogin("error while verifying the key") from problem
        if not verified:
            raise error.UnauthorizedLogin("key signature invalid")
        return RestrictedAvatarId(creds.username, restrictions)


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
        read_authorized_keys(authorized_keys)
        checkers.append(AuthorizedKeysChecker(authorized_keys))
    if password_file is not None:
        read_password_file(password_file)
        checkers.append(PasswordFile(password_file, reactor))
    if not checkers:
        raise CredentialsFileError(
            "nobody could log in: give an authorized keys file or a password file"
        )
    return Portal(realm, checkers)
