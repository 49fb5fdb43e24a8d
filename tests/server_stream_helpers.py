"""The server that fuzz/fuzz_server_stream.py and tests/test_server_stream.py feed
with what real clients sent, and what must hold whatever arrives.

The captured sessions in fuzz/seeds/server_stream/ decrypt only with this server, to
the byte: the same host key, random source, version string and clock. The checks
raise AssertionError themselves, so they also hold in the fuzzer under ``python -O``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ed25519

from ptycore import ProtocolError
from ptycore.auth import SimpleAuthenticator
from ptycore.connection import (
    BufferFullError,
    ChannelDataReceived,
    ChannelEOFReceived,
    SessionEvent,
)
from ptycore.server import ServerConfig, ServerConnection
from ptycore.session import LocalProtocolError, RequestReceived
from ptycore.transport import HostKey, TransportConfig

SERVER_VERSION = "SSH-2.0-fuzz_server"
HOST_KEY = HostKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
CONFIG = ServerConfig(transport=TransportConfig(version=SERVER_VERSION))
BUFFER_LIMIT = CONFIG.transport.max_packet_size + 4 + 64
"""At most one packet (and its length field and MAC) waits in the receive buffer."""


def make_server() -> ServerConnection:
    """The server the seeds were captured with; only ``u`` with password ``p`` logs in."""
    authenticator = SimpleAuthenticator(passwords={"u": "p"})
    return ServerConnection(CONFIG, authenticator, [HOST_KEY], random.Random(1).randbytes, now=0.0)


def application(server: ServerConnection, events: Sequence[object]) -> None:
    """Accept every request, echo what fits, end the channel at EOF or ``q``."""
    for event in events:
        if isinstance(event, SessionEvent) and isinstance(event.event, RequestReceived):
            server.accept_request(event.channel_id, event.event.handle)
        elif isinstance(event, ChannelDataReceived | ChannelEOFReceived):
            # Data after our EOF, a channel closed meanwhile: the application's
            # mistakes, not the receive path's.
            with contextlib.suppress(BufferFullError, LocalProtocolError, KeyError):
                data = getattr(event, "data", b"")
                server.send_data(event.channel_id, data[: server.writable(event.channel_id)])
                if b"q" in data or isinstance(event, ChannelEOFReceived):
                    server.send_exit_status(event.channel_id, 0)
                    server.send_eof(event.channel_id)
                    server.close_channel(event.channel_id)


def feed(server: ServerConnection, chunks: Sequence[bytes]) -> list[object]:
    """Each chunk in turn, the application answering in between; all events."""
    seen: list[object] = []
    for chunk in chunks:
        events = list(server.receive_data(chunk, now=1.0))
        application(server, events)
        seen += events
        server.data_to_send()
        if len(server._transport._inbuf) > BUFFER_LIMIT:
            raise AssertionError("the receive buffer holds more than one packet")
        if server.closed:
            break
    return seen


def check_outcome(chunks: Sequence[bytes]) -> None:
    """Events, or a ProtocolError with a DISCONNECT queued and the connection
    closed; nothing else; and nobody logs in without the password."""
    server = make_server()
    server.data_to_send()  # our version line: what follows an error must be the DISCONNECT
    try:
        feed(server, chunks)
    except ProtocolError:
        if not server.closed or not server.data_to_send():
            raise AssertionError("ProtocolError without a queued DISCONNECT") from None
    if server.authenticated and server.username != "u":
        raise AssertionError("logged in as a user without a password")


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def frame(reads: Sequence[bytes]) -> bytes:
    """Reads as one seed: a uint16 length before each."""
    return b"".join(len(read).to_bytes(2, "big") + read for read in reads)


def unframe(data: bytes) -> list[bytes]:
    """The reads of :func:`frame`'s output (a trailing byte is no read)."""
    reads = []
    while len(data) >= 2:
        end = 2 + int.from_bytes(data[:2], "big")
        reads.append(data[2:end])
        data = data[end:]
    return reads
