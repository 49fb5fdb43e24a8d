"""Authorized keys and password files, read the way ``sshd`` reads them.

Both adapters decide logins from the same files with this code: the Twisted
adapter's cred checker and the anyio adapter's :class:`~ptycore.auth.Authenticator`
look a key up with :func:`authorize_key`, which applies the line's options
(:mod:`ptycore.keyoptions`) to the client's address and the time now.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Generic, TypeVar

import bcrypt

from ptycore.keyoptions import KeyOptions, LoginRestrictions, parse_key_options

__all__ = [
    "MAX_FILE_SIZE",
    "RACY_SECONDS",
    "AuthorizedKey",
    "CredentialsFileError",
    "FileCache",
    "FileProblem",
    "authorize_key",
    "authorized_keys_by_blob",
    "parse_authorized_key",
    "password_matches",
    "read_authorized_keys",
    "read_lines",
    "read_password_file",
    "skip_options",
]

BCRYPT_PREFIXES: Final = (b"$2a$", b"$2b$", b"$2y$")
"""bcrypt's hash prefixes (OpenBSD ``bcrypt(3)``; ``$2y$`` from crypt_blowfish)."""

MAX_FILE_SIZE: Final = 1 << 20
"""Cap on an authorized keys or password file: 1 MiB. OpenSSH reads authorized keys
line by line without a total cap; a personal server's files are a few KiB."""


class CredentialsFileError(Exception):
    """An authorized keys or password file cannot be read; one line for users."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FileProblem:
    """A line that was skipped, and why (logged, never fatal: sshd does the same)."""

    line: int
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthorizedKey:
    """One key of an ``authorized_keys`` line: its type name, its public blob
    (RFC 4253 6.6, the base64-decoded second field) and the options before it."""

    key_type: str
    blob: bytes
    options: KeyOptions = field(default_factory=KeyOptions)
    line: int = 0
    """Its line in the file (from 1), once read from one."""


def read_lines(path: Path, what: str) -> list[bytes]:
    """The file's lines, at most :data:`MAX_FILE_SIZE` bytes of them."""
    try:
        with path.open("rb") as file:
            # Sized by the file rather than by the cap: read(MAX_FILE_SIZE + 1) makes a
            # 1 MiB buffer first (for each public-key check), and the heap it is cut
            # from stays spread under the memory of the sessions that follow.
            size = os.fstat(file.fileno()).st_size
            data = file.read(min(size, MAX_FILE_SIZE) + 1)
            if len(data) > size:  # grown since, or not a regular file
                data += file.read(MAX_FILE_SIZE + 1 - len(data))
    except OSError as error:
        raise CredentialsFileError(f"cannot read {what} {path}: {error.strerror}") from None
    if len(data) > MAX_FILE_SIZE:
        raise CredentialsFileError(f"cannot use {what} {path}: larger than 1 MiB")
    return data.splitlines()


def skip_options(line: bytes) -> bytes:
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


def _key_fields(line: bytes) -> AuthorizedKey | None:
    fields = line.split(None, 2)
    if len(fields) < 2:
        return None
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    # RFC 4253 6.6: the blob starts with string key-type, which must match the field.
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    if 4 + length > len(blob) or blob[4 : 4 + length] != fields[0]:
        return None
    return AuthorizedKey(key_type=fields[0].decode("ascii", "replace"), blob=blob)


def parse_authorized_key(line: bytes) -> AuthorizedKey | None:
    """``[options] keytype base64 [comment]`` as sshd's ``auth_check_authkey_line``:
    first as a bare key, then after skipping the options; ``None`` if neither.

    Raises :class:`ValueError` (sshd's reason) for a key whose options sshd calls
    "bad key options" (``auth-options.c`` ``sshauthopt_parse``).
    """
    bare = _key_fields(line)
    if bare is not None:
        return bare
    rest = skip_options(line)
    key = _key_fields(rest)
    if key is None:
        return None
    field = line[: len(line) - len(rest)].rstrip(b" \t")
    options = parse_key_options(field.decode("utf-8", "surrogateescape"))
    return AuthorizedKey(key_type=key.key_type, blob=key.blob, options=options)


def read_authorized_keys(path: Path) -> tuple[list[AuthorizedKey], list[FileProblem]]:
    """The public keys in an OpenSSH ``authorized_keys`` file, and the lines skipped.

    Skipped, with the reason: lines that are not a key, keys whose options sshd
    refuses as "bad key options" (an unknown option, two ``command=``, a bad
    ``from=`` list or ``expiry-time=``...), and ``cert-authority`` lines (ptycore's
    servers take no user certificates from authorized_keys). Empty lines and ``#``
    comments are skipped silently.
    """
    found: list[AuthorizedKey] = []
    problems: list[FileProblem] = []
    for number, raw in enumerate(read_lines(path, "authorized keys file"), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            key = parse_authorized_key(line)
        except ValueError as error:
            problems.append(FileProblem(line=number, reason=f"bad key options: {error}"))
            continue
        if key is None:
            problems.append(FileProblem(line=number, reason="not a public key"))
            continue
        if key.options.cert_authority:
            reason = f"{key.key_type} key skipped: cert-authority is not supported"
            problems.append(FileProblem(line=number, reason=reason))
            continue
        found.append(replace(key, line=number))
    return found, problems


def authorized_keys_by_blob(
    path: Path,
) -> tuple[dict[bytes, tuple[AuthorizedKey, ...]], tuple[FileProblem, ...]]:
    """:func:`read_authorized_keys` with the keys grouped by blob, in file order (for
    :func:`authorize_key`), and the lines skipped: what both adapters keep in a
    :class:`FileCache` and share between attempts, never changed."""
    found, problems = read_authorized_keys(path)
    by_blob: dict[bytes, tuple[AuthorizedKey, ...]] = {}
    for key in found:
        by_blob[key.blob] = (*by_blob.get(key.blob, ()), key)
    return by_blob, tuple(problems)


def authorize_key(
    found: Iterable[AuthorizedKey], blob: bytes, *, peer_address: str | None, now: float
) -> tuple[LoginRestrictions | None, list[str]]:
    """What the key ``blob`` may do when it logs in from ``peer_address`` at Unix
    time ``now``: the restrictions of the first line with this key whose options
    let it in (sshd's ``auth2-pubkey.c`` ``check_authkeys_file`` tries every line),
    or ``None``; and why each other line with this key refused it, for the log."""
    refusals: list[str] = []
    for key in found:
        if key.blob != blob:
            continue
        refusal = key.options.refusal(peer_address=peer_address, now=now)
        if refusal is None:
            return key.options.restrictions, refusals
        refusals.append(f"line {key.line}: {refusal}")
    return None, refusals


def read_password_file(path: Path) -> dict[bytes, bytes]:
    """``user:password`` lines (Twisted's ``FilePasswordDB`` format) as a dict.

    The password is plain text or a bcrypt hash (``$2b$...``, made for example with
    ``htpasswd -nbB user password`` or ``bcrypt.hashpw``). Empty lines, ``#``
    comments and lines without a ``:`` are skipped; a repeated user keeps the last.
    """
    entries: dict[bytes, bytes] = {}
    for raw in read_lines(path, "password file"):
        line = raw.rstrip(b"\r\n")
        if not line or line.startswith(b"#") or b":" not in line:
            continue
        user, _, password = line.partition(b":")
        entries[user] = password
    return entries


T = TypeVar("T")

RACY_SECONDS: Final = 3
"""A file modified less than this many seconds before it was read is read again at
every call. File times are coarse (a clock tick on Linux, 2 s on FAT): a second
edit that soon after could leave size and times as they were. Git treats its
"racily clean" index entries the same way."""


class FileCache(Generic[T]):
    """What ``parse`` made of a file, made again whenever the file may have changed.

    sshd reads ``authorized_keys`` at every attempt, so an edit counts at once. This
    keeps that and skips the reading and parsing (a tenth of the server's CPU for a
    connection, more with Conch's key objects) while ``stat`` shows the same device,
    inode, size, modification and change times, and the file was last modified at
    least :data:`RACY_SECONDS` before it was read. ``parse`` raises
    :class:`CredentialsFileError` for a file it cannot read, every time: errors are
    never kept. ``clock`` gives the time in nanoseconds since the epoch, the file
    times' clock.
    """

    __slots__ = ("_clock", "_kept", "_parse", "path")

    def __init__(
        self, path: Path, parse: Callable[[Path], T], *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.path = path
        self._parse = parse
        self._clock = clock
        self._kept: tuple[tuple[int, ...], T] | None = None

    def get(self) -> T:
        """The parse of the file as it is now."""
        try:
            status = os.stat(self.path)
        except OSError:
            self._kept = None
            return self._parse(self.path)  # raises CredentialsFileError, or the file is back
        signature = (
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
            status.st_ctime_ns,
        )
        kept = self._kept
        if kept is not None and kept[0] == signature:
            return kept[1]
        # Stat before reading: an edit in between changes the times the next call sees.
        settled = self._clock() - max(status.st_mtime_ns, status.st_ctime_ns)
        value = self._parse(self.path)
        self._kept = (signature, value) if settled >= RACY_SECONDS * 10**9 else None
        return value


def password_matches(given: bytes, stored: bytes) -> bool:
    """Compare in constant time, or with bcrypt for a bcrypt hash (slow on purpose:
    call it off the event loop)."""
    if stored.startswith(BCRYPT_PREFIXES):
        try:
            return bcrypt.checkpw(given, stored)
        except ValueError:  # a malformed hash never matches
            return False
    return hmac.compare_digest(given, stored)
