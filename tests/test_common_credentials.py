"""ptycore_common.credentials.read_lines: the whole file up to the 1 MiB cap, no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptycore_common.credentials import MAX_FILE_SIZE, CredentialsFileError, read_lines


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
