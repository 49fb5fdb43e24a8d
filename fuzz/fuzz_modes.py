"""Fuzz TerminalModes.decode: any bytes give modes or a ProtocolError, nothing else.

Both policies; a decoded value re-encodes to exactly its input, and decoding the
encoding of its items gives the same items back (decode -> encode -> decode).
Run: python3 fuzz/fuzz_modes.py -atheris_runs=20000 fuzz/seeds/modes
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from ptycore import ModePolicy, ProtocolError, TerminalModes


def test_one_input(data: bytes) -> None:
    for policy in ModePolicy:
        try:
            modes = TerminalModes.decode(data, policy)
        except ProtocolError:
            continue
        if modes.encode() != data:
            raise AssertionError("a decoded value does not re-encode to its input")
        again = TerminalModes.decode(TerminalModes(modes).encode(), policy)
        if again != modes or not again.applicable:
            raise AssertionError("decode -> encode -> decode changed the modes")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
