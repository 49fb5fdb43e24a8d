"""TCP settings both servers share: acknowledging the OpenSSH client's short packets.

The OpenSSH client keeps Nagle's algorithm on (TCP_NODELAY only for interactive
sessions, ``ssh.c`` ``ssh_session2_setup``), so during key exchange and
authentication its next small packet waits for our ACK of the last one, which Linux
delays by up to 40 ms when we have nothing to send back. tcp(7) ``TCP_QUICKACK``
acknowledges at once; it is not permanent, so the servers set it again after each
short read they answer with nothing (an answer carries the ACK).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Final, Protocol

__all__ = ["SHORT_READ", "acknowledge_short_read"]

SHORT_READ: Final = 64 * 1024
"""Reads shorter than this get a quick ACK. Longer ones come from a stream of full
segments, which Nagle's algorithm does not hold back."""

_TCP_QUICKACK: Final[int | None] = getattr(socket, "TCP_QUICKACK", None)
"""Linux's option; elsewhere ACKs are left to the kernel."""


class _Settable(Protocol):
    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


def acknowledge_short_read(sock: _Settable, size: int) -> None:
    """Acknowledge at once a read of ``size`` bytes from ``sock``, if it was short."""
    if _TCP_QUICKACK is not None and size < SHORT_READ:
        with contextlib.suppress(OSError):  # a socket already gone
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
