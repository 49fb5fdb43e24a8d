"""ptycore: SSH session channels, sans-IO.

The core parses and encodes every session channel request of RFC 4254 into typed,
immutable objects and drives the session state machine. It never touches a socket,
a clock or a thread: adapters move the bytes.
"""

from ._errors import DisconnectReason, ProtocolError
from .messages import (
    ChannelFailureMessage,
    ChannelRequestMessage,
    ChannelSuccessMessage,
    MessageNumber,
)
from .modes import ModePolicy, Opcode, TerminalModes
from .requests import (
    DEFAULT_LIMITS,
    STANDARD_SIGNALS,
    AgentForwardRequest,
    BreakRequest,
    ChannelRequest,
    EndOfWriteRequest,
    EnvRequest,
    ExecRequest,
    ExitSignalRequest,
    ExitStatusRequest,
    KeepaliveRequest,
    PtyRequest,
    RequestLimits,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    UnknownRequest,
    WindowChangeRequest,
    WindowSize,
    X11Request,
    XonXoffRequest,
    parse_request,
)

__all__ = [
    "DEFAULT_LIMITS",
    "STANDARD_SIGNALS",
    "AgentForwardRequest",
    "BreakRequest",
    "ChannelFailureMessage",
    "ChannelRequest",
    "ChannelRequestMessage",
    "ChannelSuccessMessage",
    "DisconnectReason",
    "EndOfWriteRequest",
    "EnvRequest",
    "ExecRequest",
    "ExitSignalRequest",
    "ExitStatusRequest",
    "KeepaliveRequest",
    "MessageNumber",
    "ModePolicy",
    "Opcode",
    "ProtocolError",
    "PtyRequest",
    "RequestLimits",
    "ShellRequest",
    "SignalRequest",
    "SubsystemRequest",
    "TerminalModes",
    "UnknownRequest",
    "WindowChangeRequest",
    "WindowSize",
    "X11Request",
    "XonXoffRequest",
    "parse_request",
]
