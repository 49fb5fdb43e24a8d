"""RFC 4254 connection layer over payloads: channels, windows, limits, global requests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptycore import ProtocolError
from ptycore._wire import Reader, encode_boolean, encode_string, encode_text, encode_uint32
from ptycore.connection import (
    BufferFullError,
    ChannelClosed,
    ChannelDataReceived,
    ChannelEOFReceived,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelWritable,
    Connection,
    ConnectionConfig,
    ConnectionEvent,
    GlobalRequestReceived,
    SessionEvent,
)
from ptycore.requests import ExitStatusRequest, ShellRequest
from ptycore.session import (
    ClientSession,
    LocalProtocolError,
    RequestAnswered,
    RequestReceived,
    Role,
    ServerSession,
)

WINDOW = 64 * 32768


def u32(value: int) -> bytes:
    return encode_uint32(value)


def channel_open(sender: int = 7, window: int = WINDOW, packet: int = 32768) -> bytes:
    return b"\x5a" + encode_text("session") + u32(sender) + u32(window) + u32(packet)


def channel_request(recipient: int, name: str, want_reply: bool, data: bytes = b"") -> bytes:
    return b"\x62" + u32(recipient) + encode_text(name) + encode_boolean(want_reply) + data


def data_msg(recipient: int, data: bytes) -> bytes:
    return b"\x5e" + u32(recipient) + encode_string(data)


def server_session(conn: Connection, channel_id: int) -> ServerSession:
    session = conn.session(channel_id)
    assert isinstance(session, ServerSession)
    return session


def opened_server(
    window: int = WINDOW,
    packet: int = 32768,
    max_buffered_bytes: int = WINDOW,
    *,
    auto_consume: bool = True,
) -> Connection:
    """A server with channel 0 open (peer channel 7) and a shell running."""
    config = ConnectionConfig(max_buffered_bytes=max_buffered_bytes, auto_consume=auto_consume)
    conn = Connection(Role.SERVER, config)
    assert conn.receive_payload(channel_open(7, window, packet)) == [ChannelOpened(channel_id=0)]
    # OPEN_CONFIRMATION: recipient 7, sender 0, window 0 until the program starts.
    assert conn.payloads_to_send() == [b"\x5b" + u32(7) + u32(0) + u32(0) + u32(32768)]
    (event,) = conn.receive_payload(channel_request(0, "shell", True))
    assert isinstance(event, SessionEvent)
    assert isinstance(event.event, RequestReceived)
    server_session(conn, 0).accept(event.event.handle)
    # The window opens, then SUCCESS: sshd's channel_set_fds runs before the reply.
    assert conn.payloads_to_send() == [b"\x5d" + u32(7) + u32(WINDOW), b"\x63" + u32(7)]
    return conn


def test_data_before_the_program_starts_is_refused() -> None:
    conn = Connection(Role.SERVER)
    conn.receive_payload(channel_open())
    with pytest.raises(ProtocolError):
        conn.receive_payload(data_msg(0, b"x"))


def test_data_is_delivered_and_the_window_adjusted_at_half() -> None:
    conn = opened_server()
    half = WINDOW // 2
    events: list[ConnectionEvent] = []
    for _ in range(half // 32768):
        events += conn.receive_payload(data_msg(0, b"a" * 32768))
    assert len(events) == half // 32768
    assert events[0] == ChannelDataReceived(channel_id=0, data=b"a" * 32768)
    adjusts = conn.payloads_to_send()
    assert adjusts
    assert all(p[:5] == b"\x5d" + u32(7) for p in adjusts)
    assert sum(Reader(p, 5).uint32("n") for p in adjusts) == half


def test_window_overrun_beyond_a_tenth_disconnects() -> None:
    conn = Connection(Role.SERVER, ConnectionConfig(window_size=1000))
    conn.receive_payload(channel_open())
    (event,) = conn.receive_payload(channel_request(0, "exec", True, encode_text("true")))
    assert isinstance(event, SessionEvent)
    assert isinstance(event.event, RequestReceived)
    server_session(conn, 0).accept(event.event.handle)
    conn.payloads_to_send()
    # channels.c channel_input_data: up to a tenth over the window is tolerated...
    assert conn.receive_payload(data_msg(0, b"a" * 1100))
    # ...more is not.
    conn.receive_payload(data_msg(0, b"a" * 1100))
    with pytest.raises(ProtocolError, match="window"):
        conn.receive_payload(data_msg(0, b"a" * 2300))


def test_payloads_received_together_join_their_data_per_channel_and_type() -> None:
    conn = opened_server()
    assert conn.receive_payload(channel_open(8)) == [ChannelOpened(channel_id=1)]
    (event,) = conn.receive_payload(channel_request(1, "shell", True))
    assert isinstance(event, SessionEvent)
    assert isinstance(event.event, RequestReceived)
    server_session(conn, 1).accept(event.event.handle)
    conn.payloads_to_send()
    stderr = b"\x5f" + u32(0) + u32(1) + encode_string(b"e")  # extended data, type 1
    events = conn.receive_payloads(
        [
            data_msg(0, b"a"),
            data_msg(0, b"b"),
            data_msg(1, b"c"),
            stderr,
            stderr,
            data_msg(0, b"d"),
        ]
    )
    assert events == [
        ChannelDataReceived(channel_id=0, data=b"ab"),
        ChannelDataReceived(channel_id=1, data=b"c"),
        ChannelDataReceived(channel_id=0, data=b"ee", data_type=1),
        ChannelDataReceived(channel_id=0, data=b"d"),
    ]
    # A malformed packet in a run is read on its own, and named as such.
    with pytest.raises(ProtocolError, match="data"):
        conn.receive_payloads([data_msg(0, b"f"), b"\x5e" + u32(0) + u32(5) + b"gh"])
    with pytest.raises(ProtocolError, match="data"):  # cut inside its length (fuzz_connection)
        opened_server().receive_payloads([data_msg(0, b"hello"), b"\x5e" + u32(0) + b"h"])


def test_a_run_of_data_is_held_to_the_window_packet_by_packet() -> None:
    conn = opened_server(auto_consume=False)
    packets = [data_msg(0, b"a" * 32768)] * (WINDOW // 32768)
    assert conn.receive_payloads(packets) == [
        ChannelDataReceived(channel_id=0, data=b"a" * WINDOW)
    ]
    # Nothing consumed, so nothing given back: a tenth more is tolerated, no more.
    with pytest.raises(ProtocolError, match="window"):
        conn.receive_payloads([data_msg(0, b"a" * 32768)] * 8)
    with pytest.raises(ProtocolError, match="maximum"):
        opened_server().receive_payloads([data_msg(0, b"a"), data_msg(0, b"a" * 32769)])


def test_oversized_packet_disconnects() -> None:
    conn = opened_server()
    with pytest.raises(ProtocolError, match="packet"):
        conn.receive_payload(data_msg(0, b"a" * 32769))


def test_sending_respects_window_and_maximum_packet() -> None:
    conn = opened_server(window=1000, packet=300)
    conn.send_data(0, b"x" * 2500)
    sent = conn.payloads_to_send()
    sizes = [len(Reader(p, 5).string("data")) for p in sent]
    assert sizes == [300, 300, 300, 100]
    assert conn.send_window(0) == 0
    events = conn.receive_payload(b"\x5d" + u32(0) + u32(2000))
    assert isinstance(events[0], ChannelWritable)
    sizes = [len(Reader(p, 5).string("data")) for p in conn.payloads_to_send()]
    assert sizes == [300] * 5


def test_exit_status_waits_behind_blocked_data() -> None:
    conn = opened_server(window=10, packet=300)
    conn.send_data(0, b"y" * 20)
    session = server_session(conn, 0)
    session.send_exit_status(3)
    session.send_eof()
    session.close()
    sent = conn.payloads_to_send()
    assert [p[0] for p in sent] == [0x5E]
    conn.receive_payload(b"\x5d" + u32(0) + u32(10))
    sent = conn.payloads_to_send()
    assert [p[0] for p in sent] == [0x5E, 0x62, 0x60, 0x61]
    assert sent[1] == b"\x62" + u32(7) + encode_text("exit-status") + b"\x00" + u32(3)
    assert conn.receive_payload(b"\x61" + u32(0)) == [ChannelClosed(channel_id=0)]
    assert conn.channel_ids == ()


def test_buffer_cap_refuses_more_data() -> None:
    conn = opened_server(window=0, max_buffered_bytes=100)
    assert conn.writable(0) == 100
    conn.send_data(0, b"z" * 60)
    assert conn.writable(0) == 40
    with pytest.raises(BufferFullError):
        conn.send_data(0, b"z" * 41)


def test_peer_close_drops_queued_data_and_closes_back() -> None:
    conn = opened_server(window=0)
    conn.send_data(0, b"queued")
    assert conn.receive_payload(b"\x60" + u32(0)) == [ChannelEOFReceived(channel_id=0)]
    assert conn.receive_payload(b"\x61" + u32(0)) == [ChannelClosed(channel_id=0)]
    assert conn.payloads_to_send() == [b"\x61" + u32(7)]
    assert conn.channel_ids == ()
    with pytest.raises(ProtocolError, match="nonexistent"):
        conn.receive_payload(data_msg(0, b"late"))


@pytest.mark.parametrize(
    ("channel_type", "reason"), [("direct-tcpip", 1), ("x-custom@example", 3)]
)
def test_other_channel_types_are_refused(channel_type: str, reason: int) -> None:
    conn = Connection(Role.SERVER)
    payload = b"\x5a" + encode_text(channel_type) + u32(3) + u32(100) + u32(100) + b"extra"
    assert conn.receive_payload(payload) == []
    (sent,) = conn.payloads_to_send()
    assert sent[:9] == b"\x5c" + u32(3) + u32(reason)


def test_session_limit() -> None:
    conn = Connection(Role.SERVER, ConnectionConfig(max_sessions=2))
    conn.receive_payload(channel_open(1))
    conn.receive_payload(channel_open(2))
    assert conn.receive_payload(channel_open(3)) == []
    assert conn.payloads_to_send()[-1][:9] == b"\x5c" + u32(3) + u32(1)


def test_no_more_sessions_is_honoured() -> None:
    conn = Connection(Role.SERVER)
    assert conn.receive_payload(
        b"\x50" + encode_text("no-more-sessions@openssh.com") + b"\x00"
    ) == [
        GlobalRequestReceived(name="no-more-sessions@openssh.com", want_reply=False, accepted=True)
    ]
    assert conn.payloads_to_send() == []
    with pytest.raises(ProtocolError):
        conn.receive_payload(channel_open())


def test_keepalive_and_unknown_global_requests_get_failure() -> None:
    conn = Connection(Role.SERVER)
    assert conn.receive_payload(b"\x50" + encode_text("keepalive@openssh.com") + b"\x01") == [
        GlobalRequestReceived(name="keepalive@openssh.com", want_reply=True, accepted=False)
    ]
    conn.receive_payload(b"\x50" + encode_text("x@example.com") + b"\x00")
    assert conn.payloads_to_send() == [b"\x52"]


def test_window_adjust_overflow_disconnects() -> None:
    conn = opened_server()
    with pytest.raises(ProtocolError, match="overflow"):
        conn.receive_payload(b"\x5d" + u32(0) + u32(0xFFFFFFFF))


def test_malformed_channel_message_disconnects() -> None:
    conn = opened_server()
    with pytest.raises(ProtocolError):
        conn.receive_payload(b"\x60" + u32(0) + b"junk")
    with pytest.raises(ProtocolError):
        conn.receive_payload(b"\x55")


def pump(client: Connection, server: Connection) -> tuple[list[ConnectionEvent], ...]:
    """Shuttle payloads both ways until quiet; return (client's events, server's events)."""
    events: tuple[list[ConnectionEvent], list[ConnectionEvent]] = ([], [])
    while True:
        moved = False
        for src, dst, sink in ((client, server, events[1]), (server, client, events[0])):
            for payload in src.payloads_to_send():
                moved = True
                sink.extend(dst.receive_payload(payload))
        if not moved:
            return events


def test_client_and_server_move_more_than_a_window_each_way() -> None:
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)
    channel = client.open_session()
    client_events, server_events = pump(client, server)
    assert client_events == [ChannelOpened(channel_id=0)]
    assert server_events == [ChannelOpened(channel_id=0)]
    session = client.session(channel)
    assert isinstance(session, ClientSession)
    session.request_shell()
    _, (request,) = pump(client, server)
    assert isinstance(request, SessionEvent)
    assert isinstance(request.event, RequestReceived)
    assert request.event.request == ShellRequest()
    server_session(server, 0).accept(request.event.handle)
    client_events, _ = pump(client, server)
    assert client_events[0] == ChannelWritable(channel_id=0, writable=2 * WINDOW)
    answer = client_events[1]
    assert isinstance(answer, SessionEvent)
    assert isinstance(answer.event, RequestAnswered)
    assert answer.event.accepted

    payload = bytes(range(256)) * (3 * WINDOW // 256 + 7)
    pending = {"up": payload, "down": payload[::-1]}
    received: dict[str, bytearray] = {"up": bytearray(), "down": bytearray()}
    rounds = 0
    while pending["up"] or pending["down"] or rounds == 0:
        rounds += 1
        for conn, direction in ((client, "up"), (server, "down")):
            n = min(len(pending[direction]), conn.writable(0))
            conn.send_data(0, pending[direction][:n])
            pending[direction] = pending[direction][n:]
        client_events, server_events = pump(client, server)
        for events, direction in ((server_events, "up"), (client_events, "down")):
            for event in events:
                if isinstance(event, ChannelDataReceived):
                    received[direction] += event.data
    assert bytes(received["up"]) == payload
    assert bytes(received["down"]) == payload[::-1]
    assert rounds > 1  # the windows made the senders wait


def test_client_open_failure() -> None:
    client = Connection(Role.CLIENT)
    channel = client.open_session()
    (open_payload,) = client.payloads_to_send()
    assert open_payload == b"\x5a" + encode_text("session") + u32(0) + u32(WINDOW) + u32(32768)
    failure = b"\x5c" + u32(channel) + u32(1) + encode_text("no") + encode_string(b"")
    assert client.receive_payload(failure) == [
        ChannelOpenFailed(channel_id=0, reason=1, description="no")
    ]
    assert client.channel_ids == ()


def test_client_receives_exit_status() -> None:
    client = Connection(Role.CLIENT)
    client.open_session()
    client.payloads_to_send()
    client.receive_payload(b"\x5b" + u32(0) + u32(5) + u32(100) + u32(100))
    session = client.session(0)
    assert isinstance(session, ClientSession)
    session.request_shell()
    client.payloads_to_send()
    client.receive_payload(b"\x63" + u32(0))
    events = client.receive_payload(
        channel_request(0, "exit-status", False, ExitStatusRequest(status=7).encode())
    )
    assert isinstance(events[0], SessionEvent)
    assert session.exit_status == 7


def test_writable_is_zero_after_eof_close_and_for_gone_channels() -> None:
    conn = opened_server()
    assert conn.writable(0) == 2 * WINDOW
    server_session(conn, 0).send_eof()
    assert conn.writable(0) == 0
    with pytest.raises(LocalProtocolError):
        conn.send_data(0, b"x")
    conn.receive_payload(b"\x61" + u32(0))
    assert conn.writable(0) == 0
    conn.payloads_to_send()
    assert conn.channel_ids == ()
    assert conn.writable(0) == 0
    with pytest.raises(KeyError):
        conn.send_data(0, b"x")


def test_rejected_request_and_client_side_failure_reply() -> None:
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)
    channel = client.open_session()
    pump(client, server)
    session = client.session(channel)
    assert isinstance(session, ClientSession)
    session.request_exec("false")
    _, (request,) = pump(client, server)
    assert isinstance(request, SessionEvent)
    assert isinstance(request.event, RequestReceived)
    server_session(server, 0).reject(request.event.handle)
    (answer,), _ = pump(client, server)
    assert isinstance(answer, SessionEvent)
    assert answer.event == RequestAnswered(
        handle=request.event.handle, request=request.event.request, accepted=False
    )


def test_misuse_and_peer_errors_around_opening() -> None:
    with pytest.raises(ValueError, match="only a client"):
        Connection(Role.SERVER).open_session()
    client = Connection(Role.CLIENT)
    client.open_session()
    with pytest.raises(ValueError, match="extended data"):
        client.send_data(0, b"x", 1)
    confirmation = b"\x5b" + u32(0) + u32(9) + u32(100) + u32(100)
    client.receive_payload(confirmation)
    with pytest.raises(ProtocolError, match="which is open"):
        client.receive_payload(confirmation)
    conn = opened_server()
    conn.receive_payload(b"\x61" + u32(0))
    with pytest.raises(ProtocolError):
        conn.receive_payload(b"\x61" + u32(0))  # the channel is gone after both CLOSEs
    unconfirmed = Connection(Role.CLIENT)
    unconfirmed.open_session()
    with pytest.raises(ProtocolError, match="before open"):
        unconfirmed.receive_payload(data_msg(0, b"early"))


def _manual_shell() -> Connection:
    """A server connection with a 64 KiB window that the application consumes
    itself, and channel 0 running a shell; nothing left to send."""
    conn = Connection(Role.SERVER, ConnectionConfig(window_size=65536, auto_consume=False))
    conn.receive_payload(channel_open())
    (event,) = conn.receive_payload(channel_request(0, "shell", True))
    assert isinstance(event, SessionEvent)
    assert isinstance(event.event, RequestReceived)
    server_session(conn, 0).accept(event.event.handle)
    conn.payloads_to_send()
    return conn


def test_manual_consumption_paces_the_peer() -> None:
    conn = _manual_shell()
    conn.receive_payload(data_msg(0, b"a" * 32768))
    conn.receive_payload(data_msg(0, b"a" * 32768))
    assert conn.payloads_to_send() == []  # nothing consumed: no window for the peer
    with pytest.raises(ProtocolError, match="window"):
        conn.receive_payload(data_msg(0, b"a" * 32768))
    conn = _manual_shell()
    conn.receive_payload(data_msg(0, b"a" * 30000))
    conn.receive_payload(data_msg(0, b"a" * 10000))
    with pytest.raises(ValueError, match="received"):
        conn.consume(0, 40001)
    # The window left (25536) is less than a packet, so what is consumed goes back at
    # once; then the window is wide enough again to wait.
    assert conn.consume(0, 30000) is True
    assert conn.payloads_to_send() == [b"\x5d" + u32(7) + u32(30000)]
    assert conn.consume(0, 10000) is False
    assert conn.payloads_to_send() == []
    assert conn.consume(5, 1) is False  # a channel that is gone: ignored
    with pytest.raises(ValueError, match="auto_consume"):
        opened_server().consume(0, 1)


def test_consumed_data_goes_back_in_half_windows() -> None:
    """One WINDOW_ADJUST per half window however the peer's data is consumed, not one
    per few packets: each is a packet and a wake-up on both sides."""
    conn = opened_server(auto_consume=False)
    due = []
    for _ in range(2 * WINDOW // 32768):  # two windows, consumed packet by packet
        conn.receive_payload(data_msg(0, b"a" * 32768))
        due.append(conn.consume(0, 32768))
    adjusts = conn.payloads_to_send()
    assert adjusts == [b"\x5d" + u32(7) + u32(WINDOW // 2)] * 4
    assert due.count(True) == 4
    assert due.index(True) == WINDOW // 2 // 32768 - 1


@given(
    window=st.integers(0, 100_000),
    packet=st.integers(1, 40_000),
    operations=st.lists(
        st.tuples(st.sampled_from(["send", "adjust"]), st.integers(0, 70_000)), max_size=30
    ),
)
@settings(max_examples=150, deadline=None)
def test_sending_never_exceeds_window_or_packet_size_and_keeps_order(
    window: int, packet: int, operations: list[tuple[str, int]]
) -> None:
    conn = opened_server(window=window, packet=packet, max_buffered_bytes=200_000)
    queued = bytearray()
    sent = bytearray()
    allowed = window
    counter = 0

    def drain() -> None:
        for payload in conn.payloads_to_send():
            assert payload[0] == 0x5E
            reader = Reader(payload, 5)
            data = reader.string("data")
            assert 0 < len(data) <= min(packet, 32768)
            sent.extend(data)
        assert len(sent) <= allowed

    for operation, amount in operations:
        if operation == "send":
            size = min(amount, conn.writable(0))
            chunk = bytes((counter + i) % 251 for i in range(size))
            counter += size
            conn.send_data(0, chunk)
            queued.extend(chunk)
        else:
            conn.receive_payload(b"\x5d" + u32(0) + u32(amount))
            allowed += amount
        drain()
        assert bytes(sent) == bytes(queued[: len(sent)])
    conn.receive_payload(b"\x5d" + u32(0) + u32(len(queued) + 1))
    allowed += len(queued) + 1
    drain()
    assert bytes(sent) == bytes(queued)
