"""The transport state machine: version exchange, packets, key exchange, rekeying."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from typing import TypeAlias

from .._errors import DisconnectReason
from ._config import TransportConfig
from ._events import TransportEvent
from .hostkeys import HostKey

__all__ = ["HostKeyVerifier", "Role", "Transport"]

HostKeyVerifier: TypeAlias = Callable[[str, bytes], bool]
"""``verify(host_key_algorithm, public_blob) -> bool``: the client's trust decision
(``known_hosts``). It is called during the first key exchange; a rekey must present
the same key. ``False`` disconnects with ``HOST_KEY_NOT_VERIFIABLE``."""


class Role(enum.Enum):
    """Which end of the connection this transport is."""

    CLIENT = "client"
    SERVER = "server"


class Transport:
    """One end of an SSH transport (RFC 4253), sans-IO.

    Construction queues our identification string and our first KEXINIT.
    """

    def __init__(
        self,
        role: Role,
        config: TransportConfig = TransportConfig(),
        *,
        host_keys: Sequence[HostKey] = (),
        verify_host_key: HostKeyVerifier | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``host_keys`` (server, at least one) and ``verify_host_key`` (client,
        required) are role-specific; ``random`` supplies padding, cookies and the
        ephemeral keys, so tests can fix it."""
        raise NotImplementedError

    @property
    def session_id(self) -> bytes | None:
        """The exchange hash of the first key exchange, ``None`` before it ends."""
        raise NotImplementedError

    @property
    def peer_version(self) -> str | None:
        """The peer's identification string once received."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """Whether a DISCONNECT was sent or received, or a protocol error happened."""
        raise NotImplementedError

    def receive_data(self, data: bytes, *, now: float | None = None) -> list[TransportEvent]:
        """Feed bytes from the peer; returns what happened, in order.

        ``now`` (any monotonic clock, in seconds) is needed only when
        :attr:`TransportConfig.rekey_time` is set, to time the next rekey. Raises
        :class:`~ptycore.ProtocolError` after queueing a DISCONNECT.
        """
        raise NotImplementedError

    def send_payload(self, payload: bytes) -> None:
        """Queue one message (its number byte first) for the peer.

        Only numbers 5, 6 and 50-255 are allowed here: the rest belong to the
        transport. During a key exchange the payload waits until NEWKEYS has been
        sent (RFC 4253 section 7.1). Raises ``ValueError`` on misuse and
        ``RuntimeError`` once closed.
        """
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Drain the bytes to write to the peer."""
        raise NotImplementedError

    def rekey(self) -> None:
        """Start a key exchange now, unless one is running or the first is not done."""
        raise NotImplementedError

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next run (same clock as ``now``), or ``None``."""
        raise NotImplementedError

    def handle_timer(self, now: float) -> None:
        """Start the time-based rekey if its deadline has passed."""
        raise NotImplementedError

    def disconnect(self, reason: DisconnectReason, description: str = "") -> None:
        """Queue ``SSH_MSG_DISCONNECT`` and close; later sends raise ``RuntimeError``."""
        raise NotImplementedError
