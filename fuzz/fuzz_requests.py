"""Fuzz parse_request for every request type, known and unknown.

The first input byte picks the type name (its low 7 bits index the dispatch table's
names plus one unknown name; its high bit picks ModePolicy.STRICT for pty-req
modes), the rest is the payload. Any payload gives a request or a ProtocolError,
nothing else; a parsed request encodes to a payload that parses to the same
request and encodes to the same bytes again.
Run: python3 fuzz/fuzz_requests.py -atheris_runs=100000 fuzz/seeds/requests
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from ptycore import DEFAULT_LIMITS, ModePolicy, ProtocolError, RequestLimits, parse_request
    from ptycore.requests import _PARSERS

NAMES = [*sorted(_PARSERS), "x-unknown@example.com"]
STRICT = RequestLimits(mode_policy=ModePolicy.STRICT)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    name = NAMES[(data[0] & 0x7F) % len(NAMES)]
    limits = STRICT if data[0] & 0x80 else DEFAULT_LIMITS
    payload = data[1:]
    try:
        request = parse_request(name, payload, limits=limits)
    except ProtocolError as error:
        if error.request_type != name or error.field is None or error.offset is None:
            raise AssertionError(f"ProtocolError without its place: {error!r}") from None
        return
    encoded = request.encode()
    again = parse_request(name, encoded, limits=limits)
    if again != request or again.encode() != encoded:
        raise AssertionError(f"parse -> encode -> parse changed {request!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
