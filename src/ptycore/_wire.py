"""RFC 4251 section 5 data types: a bounds-checked reader and the matching encoders.

Every read names the field it is reading, so a short or malformed payload raises a
:class:`~ptycore.ProtocolError` that says which field failed and at which offset,
instead of Twisted Conch's unchecked ``getNS`` slicing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from ._errors import ProtocolError

__all__ = [
    "Reader",
    "encode_boolean",
    "encode_mpint",
    "encode_name_list",
    "encode_string",
    "encode_text",
    "encode_uint32",
    "encode_uint64",
]

UINT32_MAX = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF

_UINT32 = struct.Struct(">I")
_UINT64 = struct.Struct(">Q")
_BYTE_UINT32 = struct.Struct(">BI")


class Reader:
    """Reads RFC 4251 types from a buffer, front to back, never past its end."""

    __slots__ = ("_data", "_end", "_offset")

    def __init__(self, data: bytes | bytearray | memoryview, offset: int = 0) -> None:
        self._data = data if isinstance(data, bytes) else bytes(data)
        self._offset = offset
        self._end = len(self._data)

    @property
    def offset(self) -> int:
        """Where the next read starts, counted from the start of the buffer."""
        return self._offset

    @property
    def remaining(self) -> int:
        """How many bytes are left to read."""
        return self._end - self._offset

    def _short(self, field: str, needed: int) -> ProtocolError:
        return ProtocolError(
            f"truncated: {field} needs {needed} bytes, {self.remaining} left",
            field=field,
            offset=self._offset,
        )

    def byte(self, field: str) -> int:
        """``byte``: one octet."""
        offset = self._offset
        if offset >= self._end:
            raise self._short(field, 1)
        self._offset = offset + 1
        return self._data[offset]

    def boolean(self, field: str) -> bool:
        """``boolean``: RFC 4251 says any non-zero value is TRUE."""
        return self.byte(field) != 0

    def uint32(self, field: str) -> int:
        """``uint32``: four octets, most significant first."""
        offset = self._offset
        if offset + 4 > self._end:
            raise self._short(field, 4)
        self._offset = offset + 4
        value: int = _UINT32.unpack_from(self._data, offset)[0]
        return value

    def uint64(self, field: str) -> int:
        """``uint64``: eight octets, most significant first."""
        offset = self._offset
        if offset + 8 > self._end:
            raise self._short(field, 8)
        self._offset = offset + 8
        value: int = _UINT64.unpack_from(self._data, offset)[0]
        return value

    def string(self, field: str, max_length: int = UINT32_MAX) -> bytes:
        """``string``: a uint32 length, then that many octets.

        A length over ``max_length`` is refused before anything is copied, so a
        peer cannot make the reader hold more than the caller allows.
        """
        offset = self._offset
        if offset + 4 > self._end:
            raise self._short(field, 4)
        length: int = _UINT32.unpack_from(self._data, offset)[0]
        if length > max_length:
            raise ProtocolError(
                f"{field} is {length} bytes long, more than the limit of {max_length}",
                field=field,
                offset=offset,
            )
        start = offset + 4
        stop = start + length
        if stop > self._end:
            raise ProtocolError(
                f"truncated: {field} claims {length} bytes, {self._end - start} left",
                field=field,
                offset=offset,
            )
        self._offset = stop
        return self._data[start:stop]

    def text(self, field: str, max_length: int = UINT32_MAX) -> str:
        """A ``string`` read as UTF-8 text.

        Bytes that are not UTF-8 become lone surrogates (``surrogateescape``), so
        :func:`encode_text` gives back exactly the bytes the peer sent.
        """
        return self.string(field, max_length).decode("utf-8", "surrogateescape")

    def mpint(self, field: str, max_length: int = 16384 + 1) -> int:
        """``mpint``: a two's complement, big-endian integer in a ``string``.

        The default cap follows OpenSSH's ``SSHBUF_MAX_BIGNUM`` (16384 bytes, plus
        one for a sign byte).
        """
        return int.from_bytes(self.string(field, max_length), "big", signed=True)

    def name_list(self, field: str, max_length: int = 65536) -> tuple[str, ...]:
        """``name-list``: comma-separated, non-empty US-ASCII names in a ``string``."""
        offset = self._offset
        raw = self.string(field, max_length)
        if not raw:
            return ()
        if not raw.isascii():
            raise ProtocolError(f"{field} is not US-ASCII", field=field, offset=offset)
        names = tuple(raw.decode("ascii").split(","))
        if "" in names:
            raise ProtocolError(f"{field} has an empty name", field=field, offset=offset)
        return names

    def rest(self) -> bytes:
        """Everything that is left, consumed."""
        offset = self._offset
        self._offset = self._end
        return self._data[offset:]

    def end(self, what: str) -> None:
        """Insist that nothing is left: trailing bytes are a protocol error."""
        if self._offset != self._end:
            raise ProtocolError(
                f"{self.remaining} unexpected bytes after the end of {what}",
                offset=self._offset,
            )


def encode_uint32(value: int) -> bytes:
    """``uint32``; raises ``struct.error`` outside 0 to 2**32 - 1."""
    return _UINT32.pack(value)


def encode_uint64(value: int) -> bytes:
    """``uint64``; raises ``struct.error`` outside 0 to 2**64 - 1."""
    return _UINT64.pack(value)


def encode_boolean(value: bool) -> bytes:
    """``boolean`` as OpenSSH sends it: 1 or 0."""
    return b"\x01" if value else b"\x00"


def encode_string(value: bytes) -> bytes:
    """``string``: the length, then the octets."""
    return _UINT32.pack(len(value)) + value


def encode_text(value: str) -> bytes:
    """A ``string`` holding UTF-8 text, reversing :meth:`Reader.text` byte for byte."""
    return encode_string(value.encode("utf-8", "surrogateescape"))


def encode_mpint(value: int) -> bytes:
    """``mpint`` in its shortest form: zero is the empty string."""
    if value == 0:
        return encode_string(b"")
    length = (value + (value < 0)).bit_length() // 8 + 1
    return encode_string(value.to_bytes(length, "big", signed=True))


def encode_name_list(names: Iterable[str]) -> bytes:
    """``name-list``; refuses names that are empty, not ASCII or hold a comma."""
    names = tuple(names)
    for name in names:
        if not name or "," in name or not name.isascii():
            raise ValueError(f"not a valid name for a name-list: {name!r}")
    return encode_string(",".join(names).encode("ascii"))


def pack_byte_uint32(opcode: int, value: int) -> bytes:
    """One opcode byte and its uint32 argument, as in terminal modes."""
    return _BYTE_UINT32.pack(opcode, value)
