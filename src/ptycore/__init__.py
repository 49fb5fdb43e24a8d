"""ptycore: SSH session channels, sans-IO.

The core parses and encodes every session channel request of RFC 4254 into typed,
immutable objects and drives the session state machine. It never touches a socket,
a clock or a thread: adapters move the bytes.
"""

from ._errors import DisconnectReason, ProtocolError
from .modes import ModePolicy, Opcode, TerminalModes

__all__ = [
    "DisconnectReason",
    "ModePolicy",
    "Opcode",
    "ProtocolError",
    "TerminalModes",
]
