"""RFC 4251 section 5 types: the RFC's own examples, bounds and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ptycore import DisconnectReason, ProtocolError
from ptycore._wire import (
    Reader,
    encode_boolean,
    encode_mpint,
    encode_name_list,
    encode_string,
    encode_text,
    encode_uint32,
    encode_uint64,
)

# RFC 4251 section 5, the mpint examples.
MPINT_EXAMPLES = [
    (0, "00000000"),
    (0x9A378F9B2E332A7, "0000000809a378f9b2e332a7"),
    (0x80, "000000020080"),
    (-0x1234, "00000002edcc"),
    (-0xDEADBEEF, "00000005ff21524111"),
]


@pytest.mark.parametrize(("value", "wire"), MPINT_EXAMPLES)
def test_mpint_matches_rfc_4251_examples(value: int, wire: str) -> None:
    assert encode_mpint(value).hex() == wire
    assert Reader(bytes.fromhex(wire)).mpint("e") == value


@given(st.integers(min_value=-(2**2048), max_value=2**2048))
def test_mpint_round_trip(value: int) -> None:
    reader = Reader(encode_mpint(value))
    assert reader.mpint("e") == value
    reader.end("test")


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(0, 2**64 - 1))
def test_integers_round_trip(small: int, big: int) -> None:
    reader = Reader(encode_uint32(small) + encode_uint64(big))
    assert reader.uint32("a") == small
    assert reader.uint64("b") == big
    assert reader.remaining == 0


@given(st.binary(max_size=300), st.text(max_size=50))
def test_string_and_text_round_trip(raw: bytes, text: str) -> None:
    reader = Reader(encode_string(raw) + encode_text(text))
    assert reader.string("raw") == raw
    assert reader.text("text") == text


def test_text_keeps_bytes_that_are_not_utf8() -> None:
    wire = encode_string(b"caf\xe9\xff")
    assert encode_text(Reader(wire).text("t")) == wire


def test_boolean_any_nonzero_is_true() -> None:
    reader = Reader(b"\x00\x01\x7f")
    assert [reader.boolean("b") for _ in range(3)] == [False, True, True]
    assert encode_boolean(True) + encode_boolean(False) == b"\x01\x00"


def test_name_list() -> None:
    wire = encode_name_list(["zlib", "none"])
    assert wire == b"\x00\x00\x00\x09zlib,none"
    assert Reader(wire).name_list("algorithms") == ("zlib", "none")
    assert Reader(encode_name_list([])).name_list("algorithms") == ()


@pytest.mark.parametrize("bad", ["", "a,b", "caf\u00e9"])
def test_name_list_refuses_to_encode_bad_names(bad: str) -> None:
    with pytest.raises(ValueError, match="name-list"):
        encode_name_list(["ok", bad])


@pytest.mark.parametrize("wire", [b"\x00\x00\x00\x03a,,", b"\x00\x00\x00\x01\xe9"])
def test_name_list_rejects_bad_names(wire: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        Reader(wire).name_list("kex")
    assert info.value.field == "kex"


def test_short_reads_name_the_field_and_offset() -> None:
    reader = Reader(b"\x00\x00\x00\x05abc")
    with pytest.raises(ProtocolError) as info:
        reader.string("term")
    assert info.value.field == "term"
    assert info.value.offset == 0
    assert "claims 5 bytes, 3 left" in str(info.value)
    for read in (Reader(b"").byte, Reader(b"\0" * 3).uint32, Reader(b"\0" * 7).uint64):
        with pytest.raises(ProtocolError, match="truncated"):
            read("x")


def test_string_over_the_cap_is_refused_before_copying() -> None:
    with pytest.raises(ProtocolError, match="limit of 16") as info:
        Reader(b"\xff\xff\xff\xff").string("term", max_length=16)
    assert info.value.offset == 0


def test_end_rejects_trailing_bytes_and_rest_consumes() -> None:
    reader = Reader(bytearray(b"\x01\x02\x03"))
    assert reader.byte("b") == 1
    with pytest.raises(ProtocolError, match="2 unexpected bytes") as info:
        reader.end("payload")
    assert info.value.offset == 1
    assert reader.rest() == b"\x02\x03"
    reader.end("payload")


def test_protocol_error_names_request_when_told() -> None:
    error = ProtocolError("bad", field="cols", offset=4).with_request_type("pty-req")
    assert str(error) == "bad ('pty-req' request, field 'cols', offset 4)"


def test_protocol_error_without_a_field_names_what_it_has() -> None:
    assert str(ProtocolError("bad", offset=3)) == "bad (offset 3)"
    assert str(ProtocolError("bad")) == "bad"
    assert ProtocolError("bad").reason is DisconnectReason.PROTOCOL_ERROR
