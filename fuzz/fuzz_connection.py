"""Fuzz the connection layer: channel messages into a server and a client Connection.

The input is split into payloads (each a uint16 length, then the bytes). A server
sees them after a well-formed session open and shell request; a client after it
opened a session. Any input gives events or a ProtocolError, nothing else, even
while the application keeps queueing data as fast as the caps allow. The same
payloads given to ``receive_payloads`` at once must give the same outcome and the
same events, data runs joined.
Run: python3 fuzz/fuzz_connection.py -atheris_runs=20000 fuzz/seeds/connection
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from ptycore import ProtocolError
    from ptycore._wire import encode_boolean, encode_text, encode_uint32
    from ptycore.connection import (
        BufferFullError,
        ChannelDataReceived,
        Connection,
        ConnectionConfig,
        ConnectionEvent,
        SessionEvent,
    )
    from ptycore.session import LocalProtocolError, RequestReceived, Role, ServerSession

OPEN = b"\x5a" + encode_text("session") + encode_uint32(0) + encode_uint32(1000)
OPEN += encode_uint32(100)
SHELL = b"\x62" + encode_uint32(0) + encode_text("shell") + encode_boolean(True)
CONFIG = ConnectionConfig(window_size=4096, max_buffered_bytes=4096)


def _payloads(data: bytes) -> list[bytes]:
    out = []
    while len(data) >= 2:
        length = int.from_bytes(data[:2], "big")
        out.append(data[2 : 2 + length])
        data = data[2 + length :]
    return out


def _feed(conn: Connection, payloads: list[bytes], server: bool) -> None:
    for payload in payloads:
        for event in conn.receive_payload(payload):
            # Accept what the application is asked, and answer data with data.
            if (
                server
                and isinstance(event, SessionEvent)
                and isinstance(event.event, RequestReceived)
            ):
                session = conn.session(event.channel_id)
                if isinstance(session, ServerSession):
                    session.accept(event.event.handle)
        for channel_id in conn.channel_ids:
            with contextlib.suppress(BufferFullError, LocalProtocolError):
                conn.send_data(channel_id, b"x" * 100)
        conn.payloads_to_send()


def _joined(events: list[ConnectionEvent]) -> list[object]:
    """Events with each run of data on one channel and type as one (bytes, key)."""
    out: list[object] = []
    for event in events:
        if isinstance(event, ChannelDataReceived):
            key = (event.channel_id, event.data_type)
            if out and isinstance(out[-1], tuple) and out[-1][0] == key:
                out[-1] = (key, out[-1][1] + event.data)
                continue
            out.append((key, event.data))
        else:
            out.append(event)
    return out


def _outcome(payloads: list[bytes], *, together: bool) -> object:
    conn = Connection(Role.SERVER, CONFIG)
    (_, request) = [*conn.receive_payload(OPEN), *conn.receive_payload(SHELL)]
    if isinstance(request, SessionEvent) and isinstance(request.event, RequestReceived):
        session = conn.session(0)
        if isinstance(session, ServerSession):
            session.accept(request.event.handle)
    conn.payloads_to_send()
    events: list[ConnectionEvent] = []
    try:
        if together:
            events = conn.receive_payloads(payloads)
        else:
            for payload in payloads:
                events += conn.receive_payload(payload)
    except ProtocolError:
        return ProtocolError
    return _joined(events)


def test_one_input(data: bytes) -> None:
    payloads = _payloads(data)
    if _outcome(payloads, together=True) != _outcome(payloads, together=False):
        raise AssertionError("receive_payloads differs from receive_payload one by one")
    server = Connection(Role.SERVER, CONFIG)
    with contextlib.suppress(ProtocolError):
        _feed(server, [OPEN, SHELL, *payloads], server=True)
    client = Connection(Role.CLIENT, CONFIG)
    client.open_session()
    with contextlib.suppress(ProtocolError):
        _feed(client, payloads, server=False)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
