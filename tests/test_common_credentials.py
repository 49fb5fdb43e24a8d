"""ptycore_common.credentials: read_lines reads the whole file up to the 1 MiB cap, no
more; FileCache reuses a file's parse only while the file cannot have changed;
authorize_key tries every line with the key, as sshd."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ptycore.keyoptions import UNRESTRICTED, LoginRestrictions
from ptycore_common.credentials import (
    MAX_FILE_SIZE,
    RACY_SECONDS,
    CredentialsFileError,
    FileCache,
    authorize_key,
    read_authorized_keys,
    read_lines,
)

OLD = 1_000_000_000  # 2001


def later() -> int:
    """A clock that runs ahead: every file made by a test is long settled."""
    return time.time_ns() + 10 * RACY_SECONDS * 10**9


class Counting:
    """A parse that counts how often it runs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> list[bytes]:
        self.calls += 1
        return read_lines(path, "test file")


def write(path: Path, data: bytes) -> None:
    """Write ``data`` and set the modification time to the same old time."""
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))


def test_an_unchanged_settled_file_is_parsed_once(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    write(path, b"one\n")
    parse = Counting()
    cache = FileCache(path, parse, clock=later)
    assert cache.get() == [b"one"]
    assert cache.get() == [b"one"]
    assert parse.calls == 1


def test_an_edit_of_the_same_size_with_the_same_mtime_is_seen(tmp_path: Path) -> None:
    # The change time moves even when the modification time is set back.
    path = tmp_path / "keys"
    write(path, b"one\n")
    cache = FileCache(path, Counting(), clock=later)
    assert cache.get() == [b"one"]
    first = path.stat().st_ctime_ns
    write(path, b"two\n")
    deadline = time.monotonic() + 5
    while path.stat().st_ctime_ns == first:  # the file system's clock ticks coarsely
        assert time.monotonic() < deadline, "the change time never moved"
        write(path, b"two\n")
    assert cache.get() == [b"two"]


def test_a_replaced_file_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    write(path, b"one\n")
    cache = FileCache(path, Counting(), clock=later)
    assert cache.get() == [b"one"]
    other = tmp_path / "new"
    write(other, b"two\n")
    other.replace(path)
    assert cache.get() == [b"two"]


def test_a_recently_changed_file_is_read_at_every_call(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    write(path, b"one\n")  # an old modification time, but changed (ctime) just now
    parse = Counting()
    cache = FileCache(path, parse)
    cache.get()
    cache.get()
    assert parse.calls == 2
    assert time.time() - path.stat().st_ctime < RACY_SECONDS  # the premise held


def test_a_vanished_file_raises_every_time_and_a_new_one_is_read(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    write(path, b"one\n")
    cache = FileCache(path, Counting(), clock=later)
    assert cache.get() == [b"one"]
    path.unlink()
    for _ in range(2):
        with pytest.raises(CredentialsFileError, match="cannot read test file"):
            cache.get()
    write(path, b"one\n")  # same size and times, another file
    assert cache.get() == [b"one"]


def test_reads_every_line_of_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(b"one\ntwo\n\nthree")
    assert read_lines(path, "authorized keys file") == [b"one", b"two", b"", b"three"]


def test_cap_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(b"x" * (MAX_FILE_SIZE - 1) + b"\n")
    assert read_lines(path, "authorized keys file") == [b"x" * (MAX_FILE_SIZE - 1)]
    path.write_bytes(b"x" * (MAX_FILE_SIZE + 1))
    with pytest.raises(CredentialsFileError, match="larger than 1 MiB"):
        read_lines(path, "authorized keys file")


def test_empty_file_has_no_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(b"")
    assert read_lines(path, "authorized keys file") == []


KEY = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKz1xL8uGU7LTgU2ZS6cMQyd4eUOUzEqYcPQSv5t4hgu"


def test_every_line_with_the_key_is_tried_in_order(tmp_path: Path) -> None:
    """auth2-pubkey.c check_authkeys_file: a line whose options refuse the key does
    not end the search; the first line that admits it gives its restrictions."""
    path = tmp_path / "authorized_keys"
    path.write_bytes(
        b'from="10.0.0.0/8" ' + KEY + b"\n"
        + b"frobnicate " + KEY + b"\n"
        + b'from="127.0.0.1",no-pty ' + KEY + b"\n"
        + KEY + b' a comment\n'
    )  # fmt: skip
    found, problems = read_authorized_keys(path)
    blob = found[0].blob
    assert [(p.line, p.reason) for p in problems] == [(2, "bad key options: unknown key option")]
    assert authorize_key(found, blob, peer_address="10.1.1.1", now=0) == (UNRESTRICTED, [])
    assert authorize_key(found, blob, peer_address="127.0.0.1", now=0) == (
        LoginRestrictions(pty=False),
        ["line 1: not from a permitted host (ip=127.0.0.1, required=10.0.0.0/8)"],
    )
    restrictions, refusals = authorize_key(found, blob, peer_address="192.0.2.1", now=0)
    assert restrictions == UNRESTRICTED  # the last line has no options
    assert len(refusals) == 2
    assert authorize_key(found, b"another key", peer_address="127.0.0.1", now=0) == (None, [])
