"""What :meth:`Transport.receive_data <ptycore.transport.Transport.receive_data>` reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Algorithms",
    "DisconnectReceived",
    "ExtInfoReceived",
    "KeyExchangeComplete",
    "PayloadReceived",
    "TransportEvent",
    "UnimplementedReceived",
    "VersionReceived",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Algorithms:
    """The algorithms one key exchange negotiated (RFC 4253 section 7.1).

    ``mac_*`` is ``None`` for the AEAD ciphers, which authenticate by themselves.
    """

    kex: str
    host_key: str
    cipher_client_to_server: str
    cipher_server_to_client: str
    mac_client_to_server: str | None
    mac_server_to_client: str | None
    compression_client_to_server: str
    compression_server_to_client: str
    strict_kex: bool
    """Whether both sides asked for ``kex-strict-*-v00@openssh.com`` (Terrapin fix)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class VersionReceived:
    """The peer's identification string, without CR LF (RFC 4253 section 4.2)."""

    version: str


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyExchangeComplete:
    """Both NEWKEYS have passed: new keys are in use in both directions.

    ``initial`` is true for the first exchange, after which payloads of the upper
    layers flow; ``host_key`` is the server's public key blob that signed it.
    """

    session_id: bytes
    algorithms: Algorithms
    host_key: bytes
    initial: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class PayloadReceived:
    """A message for the layers above (number 5, 6 or 50-255), with its number byte.

    ``sequence_number`` is what :meth:`Transport.send_unimplemented
    <ptycore.transport.Transport.send_unimplemented>` needs if the layer above does
    not know the message (RFC 4253 section 11.4).
    """

    payload: bytes
    sequence_number: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtInfoReceived:
    """``SSH_MSG_EXT_INFO`` (RFC 8308 section 2.3): extension name to raw value."""

    extensions: Mapping[str, bytes]


@dataclass(frozen=True, kw_only=True, slots=True)
class UnimplementedReceived:
    """The peer did not understand our packet with this sequence number."""

    sequence_number: int


@dataclass(frozen=True, kw_only=True, slots=True)
class DisconnectReceived:
    """The peer said goodbye (RFC 4253 section 11.1). Nothing more will be read."""

    reason: int
    description: str


TransportEvent: TypeAlias = (
    VersionReceived
    | KeyExchangeComplete
    | PayloadReceived
    | ExtInfoReceived
    | UnimplementedReceived
    | DisconnectReceived
)
