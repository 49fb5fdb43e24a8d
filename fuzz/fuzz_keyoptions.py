"""Fuzz authorized_keys options: any text gives KeyOptions or a ValueError.

The input's first byte, when below 0x80, splits it: the rest up to that many
bytes is a ``from=`` pattern list and the remainder a peer address for
``match_from`` (a bool or a ValueError); the whole input, decoded as sshd reads a
line (UTF-8 with surrogate escapes), is an options field for
``parse_key_options``. A parsed field's decision (``refusal``) never raises, its
``restrictions`` are what its ``pty`` and ``command`` say, and a field whose
``from=`` parsed matches any address without an error.
Run: python3 fuzz/fuzz_keyoptions.py -atheris_runs=20000 fuzz/seeds/keyoptions
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from ptycore.keyoptions import KeyOptions, match_from, parse_key_options

ADDRESSES = ("127.0.0.1", "10.1.2.3", "::1", "2001:db8::7", "::ffff:192.0.2.1")


def test_one_input(data: bytes) -> None:
    if data and data[0] < 0x80:
        cut = 1 + data[0]
        patterns = data[1:cut].decode("utf-8", "surrogateescape")
        address = data[cut:].decode("utf-8", "surrogateescape")
        try:
            result = match_from(patterns, address)
        except ValueError:
            pass
        else:
            if not isinstance(result, bool):
                raise AssertionError("match_from gave something other than a bool")
    text = data.decode("utf-8", "surrogateescape")
    try:
        options = parse_key_options(text)
    except ValueError:
        return
    if not isinstance(options, KeyOptions):
        raise AssertionError("parse_key_options gave something other than KeyOptions")
    restrictions = options.restrictions
    if (restrictions.pty, restrictions.command) != (options.pty, options.command):
        raise AssertionError("restrictions differ from the options")
    for peer in (*ADDRESSES, None):
        reason = options.refusal(peer_address=peer, now=1.7e9)
        if reason is not None and not isinstance(reason, str):
            raise AssertionError("refusal gave something other than a reason")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
