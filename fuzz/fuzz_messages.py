"""Fuzz the parsers of SSH_MSG_CHANNEL_REQUEST, CHANNEL_SUCCESS and CHANNEL_FAILURE.

Any input gives a message or a ProtocolError, nothing else, and a parsed message
encodes to bytes that parse to the same message.
Run: python3 fuzz/fuzz_messages.py -atheris_runs=100000 fuzz/seeds/messages
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from ptycore import (
        ChannelFailureMessage,
        ChannelRequestMessage,
        ChannelSuccessMessage,
        ProtocolError,
    )

MESSAGES = (ChannelRequestMessage, ChannelSuccessMessage, ChannelFailureMessage)


def test_one_input(data: bytes) -> None:
    for cls in MESSAGES:
        try:
            message = cls.parse(data)
        except ProtocolError as error:
            if error.field is None or error.offset is None:
                raise AssertionError(f"ProtocolError without its place: {error!r}") from None
            continue
        encoded = message.encode()
        if cls.parse(encoded) != message:
            raise AssertionError(f"parse -> encode -> parse changed {message!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
