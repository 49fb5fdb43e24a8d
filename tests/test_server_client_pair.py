"""ClientConnection and ServerConnection back to back in memory, with fixed randomness."""

from __future__ import annotations

import hashlib
import random
from importlib.metadata import version

import pytest

from ptycore import DisconnectReason, ProtocolError
from ptycore._wire import Reader, encode_string, encode_text
from ptycore.auth import (
    AuthConfig,
    AuthenticationFailed,
    AuthenticationSucceeded,
    SimpleAuthenticator,
)
from ptycore.client import ClientConfig, ClientConnection
from ptycore.connection import (
    ChannelClosed,
    ChannelDataReceived,
    ChannelOpened,
    GlobalReplyReceived,
    GlobalRequestReceived,
    SessionEvent,
)
from ptycore.requests import PtyRequest, ShellRequest, WindowSize
from ptycore.server import ConnectionClosed, Event, ServerConfig, ServerConnection
from ptycore.session import ExitStatusReceived, RequestAnswered, RequestReceived, WindowChanged
from ptycore.transport import (
    HostKey,
    KeyExchangeComplete,
    PayloadReceived,
    TransportConfig,
    UnimplementedReceived,
    verify_signature,
)

HOST_KEY = HostKey.generate()
USER_KEY = HostKey.generate()
RSA_KEY = HostKey.generate("ssh-rsa", rsa_bits=2048)
STRANGER = HostKey.generate()


def fixed_random(seed: int) -> random.Random:
    return random.Random(seed)


def make_pair(
    *,
    keys: tuple[HostKey, ...] = (),
    password: str | None = None,
    config: ServerConfig | None = None,
    client_config: ClientConfig | None = None,
    seed: int = 1,
) -> tuple[ClientConnection, ServerConnection]:
    authenticator = SimpleAuthenticator(
        passwords={"alice": "sesame"},
        authorized_keys={"alice": [USER_KEY.public_blob, RSA_KEY.public_blob]},
    )
    server = ServerConnection(
        config, authenticator, [HOST_KEY], fixed_random(seed).randbytes, now=0.0
    )
    client = ClientConnection(
        client_config,
        "alice",
        verify_host_key=lambda algorithm, blob: blob == HOST_KEY.public_blob,
        keys=keys,
        password=password,
        random=fixed_random(seed + 1).randbytes,
    )
    return client, server


def exchange(
    client: ClientConnection, server: ServerConnection
) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until both are quiet; returns (client events, server events)."""
    client_events: list[Event] = []
    server_events: list[Event] = []
    while True:
        to_server = client.data_to_send()
        to_client = server.data_to_send()
        if not to_server and not to_client:
            return client_events, server_events
        if to_server:
            server_events += server.receive_data(to_server, now=1.0)
        if to_client:
            client_events += client.receive_data(to_client)


@pytest.mark.parametrize("key", [USER_KEY, RSA_KEY], ids=["ed25519", "rsa"])
def test_authentication_by_key(key: HostKey) -> None:
    client, server = make_pair(keys=(STRANGER, key))
    client_events, server_events = exchange(client, server)
    assert AuthenticationSucceeded(username="alice", method="publickey") in client_events
    assert AuthenticationSucceeded(username="alice", method="publickey") in server_events
    assert server.authenticated
    assert server.username == "alice"
    assert server.peer_version == client.peer_version == "SSH-2.0-ptycore_" + version("ptycore")
    assert server.get_timer() is None  # no login grace timer once logged in


def test_authentication_by_password_after_a_refused_key() -> None:
    client, server = make_pair(keys=(STRANGER,), password="sesame")
    _, server_events = exchange(client, server)
    assert AuthenticationFailed(username="alice", method="publickey") in server_events
    assert AuthenticationSucceeded(username="alice", method="password") in server_events
    assert client.authenticated


def test_the_client_gives_up_and_disconnects() -> None:
    client, server = make_pair(password="wrong")
    with pytest.raises(ProtocolError) as info:
        exchange(client, server)
    assert info.value.reason is DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE
    events = server.receive_data(client.data_to_send())
    assert events == [
        ConnectionClosed(
            reason=DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE,
            description=info.value.message,
            by_peer=True,
        )
    ]
    assert server.closed


def test_too_many_failures_disconnects() -> None:
    config = ServerConfig(auth=AuthConfig(max_tries=1))
    client, server = make_pair(keys=(STRANGER,), password="sesame", config=config)
    with pytest.raises(ProtocolError, match="Too many authentication failures"):
        exchange(client, server)
    (closed,) = client.receive_data(server.data_to_send())
    assert isinstance(closed, ConnectionClosed)
    assert closed.reason == DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE


def test_login_grace_time() -> None:
    client, server = make_pair(keys=(STRANGER,))
    assert server.get_timer() == 120.0
    assert server.handle_timer(119.0) == []
    (closed,) = server.handle_timer(120.0)
    assert isinstance(closed, ConnectionClosed)
    assert not closed.by_peer
    assert server.closed
    client_events = client.receive_data(server.data_to_send())
    assert isinstance(client_events[-1], ConnectionClosed)
    assert client_events[-1].description == "Timeout before authentication"


def logged_in_session() -> tuple[ClientConnection, ServerConnection, int]:
    client, server = make_pair(keys=(USER_KEY,))
    exchange(client, server)
    channel = client.open_session()
    client_events, server_events = exchange(client, server)
    assert ChannelOpened(channel_id=channel) in client_events
    assert ChannelOpened(channel_id=0) in server_events
    session = client.session(channel)
    session.request_pty(term="xterm-256color", size=WindowSize(cols=120, rows=40))
    session.request_shell()
    _, server_events = exchange(client, server)
    requests = [e for e in server_events if isinstance(e, SessionEvent)]
    assert [type(e.event) for e in requests] == [RequestReceived, RequestReceived]
    for event in requests:
        assert isinstance(event.event, RequestReceived)
        server.accept_request(event.channel_id, event.event.handle)
    pty_event, shell_event = (e.event for e in requests)
    assert isinstance(pty_event, RequestReceived)
    assert isinstance(pty_event.request, PtyRequest)
    assert isinstance(shell_event, RequestReceived)
    assert shell_event.request == ShellRequest()
    client_events, _ = exchange(client, server)
    answers = [e.event for e in client_events if isinstance(e, SessionEvent)]
    assert all(isinstance(a, RequestAnswered) and a.accepted for a in answers)
    assert len(answers) == 2
    pty = server.session(0).pty
    assert pty is not None
    assert pty.size == WindowSize(cols=120, rows=40)
    return client, server, channel


def test_session_with_pty_data_both_ways_and_clean_close() -> None:
    client, server, channel = logged_in_session()
    payload = random.Random(7).randbytes(5 * 1024 * 1024 + 123)
    up, down = payload, payload[::-1]
    got_up = hashlib.sha256()
    got_down = hashlib.sha256()
    rounds = 0
    while up or down or rounds == 0:
        rounds += 1
        n = min(len(up), client.writable(channel))
        client.send_data(channel, up[:n])
        up = up[n:]
        n = min(len(down), server.writable(0))
        server.send_data(0, down[:n])
        down = down[n:]
        client_events, server_events = exchange(client, server)
        for event in server_events:
            if isinstance(event, ChannelDataReceived):
                got_up.update(event.data)
        for event in client_events:
            if isinstance(event, ChannelDataReceived):
                got_down.update(event.data)
    assert rounds > 1  # more than the window and the buffer: the senders had to wait
    assert got_up.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert got_down.hexdigest() == hashlib.sha256(payload[::-1]).hexdigest()

    server.send_exit_status(0, 0xFFFFFFFF)
    server.send_eof(0)
    server.close_channel(0)
    client_events, _ = exchange(client, server)
    assert SessionEvent(channel_id=channel, event=ExitStatusReceived(status=0xFFFFFFFF)) in (
        client_events
    )
    assert ChannelClosed(channel_id=channel) in client_events
    assert client.channel_ids == ()
    assert server.channel_ids == ()

    client.disconnect()
    (closed,) = server.receive_data(client.data_to_send())
    assert closed == ConnectionClosed(
        reason=DisconnectReason.BY_APPLICATION, description="", by_peer=True
    )


def test_data_read_together_is_one_event_per_run() -> None:
    """The packets of one read that carry data on the channel become one event; a
    request between them ends the run, so the order of events stays the wire's."""
    client, server, channel = logged_in_session()
    client.send_data(channel, b"a" * 40000)  # two packets: 32768 + 7232
    client.send_data(channel, b"b")
    client.session(channel).change_window(WindowSize(cols=100, rows=30))
    client.send_data(channel, b"c")
    wire = client.data_to_send()
    events = server.receive_data(wire, now=1.0)
    assert events[0] == ChannelDataReceived(channel_id=0, data=b"a" * 40000 + b"b")
    assert isinstance(events[1], SessionEvent)
    assert isinstance(events[1].event, WindowChanged)
    assert events[1].event.size == WindowSize(cols=100, rows=30)
    assert events[2:] == [ChannelDataReceived(channel_id=0, data=b"c")]
    # Fed a byte at a time, the same data arrives packet by packet, unchanged.
    client.send_data(channel, b"d" * 100)
    pieces = [server.receive_data(bytes([byte]), now=1.0) for byte in client.data_to_send()]
    assert [e for batch in pieces for e in batch] == [
        ChannelDataReceived(channel_id=0, data=b"d" * 100)
    ]


def rekeys_after_login(events: list[Event]) -> int:
    """Key exchanges after the first, checking none came before authentication."""
    kinds = [
        "rekey" if isinstance(e, KeyExchangeComplete) and not e.initial else "login"
        for e in events
        if isinstance(e, KeyExchangeComplete | AuthenticationSucceeded)
    ]
    assert "rekey" not in kinds[: kinds.index("login")] if "login" in kinds else True
    return kinds.count("rekey")


@pytest.mark.parametrize("side", ["server", "client"])
def test_automatic_rekeys_start_when_authentication_succeeds(side: str) -> None:
    """``rekey_bytes`` on one side: none of its rekeys runs during authentication
    (OpenSSH's after_authentication), though a banner larger than the budget used it
    up; one starts as soon as the user is logged in, then one every 64 KiB of a
    1 MiB transfer each way, and the data arrives intact."""
    small = TransportConfig(rekey_bytes=64 * 1024)
    config = ServerConfig(
        transport=small if side == "server" else TransportConfig(),
        auth=AuthConfig(banner="b" * 70_000),
    )
    client_config = ClientConfig(transport=small) if side == "client" else None
    client, server = make_pair(keys=(USER_KEY,), config=config, client_config=client_config)
    client_events, server_events = exchange(client, server)
    assert AuthenticationSucceeded(username="alice", method="publickey") in client_events
    assert rekeys_after_login(client_events) == rekeys_after_login(server_events) == 1
    channel = client.open_session()
    exchange(client, server)
    client.session(channel).request_shell()
    _, server_events = exchange(client, server)
    [shell] = [e.event for e in server_events if isinstance(e, SessionEvent)]
    assert isinstance(shell, RequestReceived)
    server.accept_request(0, shell.handle)
    exchange(client, server)
    payload = random.Random(3).randbytes(1024 * 1024)
    up, down = payload, payload[::-1]
    got_up, got_down = hashlib.sha256(), hashlib.sha256()
    rekeys = 0
    while up or down:
        # 32 KiB a turn each way, as a socket loop might write.
        n = min(len(up), client.writable(channel), 32 * 1024)
        client.send_data(channel, up[:n])
        up = up[n:]
        n = min(len(down), server.writable(0), 32 * 1024)
        server.send_data(0, down[:n])
        down = down[n:]
        client_events, server_events = exchange(client, server)
        rekeys += rekeys_after_login(server_events)
        assert rekeys_after_login(client_events) == rekeys_after_login(server_events)
        for event in server_events:
            if isinstance(event, ChannelDataReceived):
                got_up.update(event.data)
        for event in client_events:
            if isinstance(event, ChannelDataReceived):
                got_down.update(event.data)
    assert got_up.digest() == hashlib.sha256(payload).digest()
    assert got_down.digest() == hashlib.sha256(payload[::-1]).digest()
    assert rekeys >= 16  # 1 MiB each way, a rekey at least every 64 KiB sent or received


def test_same_seeds_give_the_same_bytes() -> None:
    transcripts = []
    for _ in range(2):
        client, server = make_pair(keys=(USER_KEY,))
        transcripts.append((client.data_to_send(), server.data_to_send()))
    assert transcripts[0] == transcripts[1]


def test_buffers_to_send_are_data_to_send_in_pieces() -> None:
    """Both ends drain their output in pieces, each fed to the other end one piece
    at a time: the login and a session's data go through, nothing is left over."""
    client, server = make_pair(keys=(USER_KEY,))
    ends: tuple[ClientConnection | ServerConnection, ...] = (client, server)
    received: list[Event] = []
    channel = None
    for _ in range(12):
        if channel is None and client.authenticated:
            channel = client.open_session()
        for sender, receiver in ((0, 1), (1, 0)):
            buffers = ends[sender].buffers_to_send()
            assert ends[sender].data_to_send() == b""
            for piece in buffers:
                received += ends[receiver].receive_data(piece, now=1.0)
    assert server.authenticated
    assert ChannelOpened(channel_id=0) in received


def test_fed_byte_by_byte() -> None:
    client, server = make_pair(keys=(USER_KEY,))
    server_events: list[Event] = []
    while True:
        to_server = client.data_to_send()
        to_client = server.data_to_send()
        if not to_server and not to_client:
            break
        for i in range(len(to_server)):
            server_events += server.receive_data(to_server[i : i + 1])
        client.receive_data(to_client)
    assert AuthenticationSucceeded(username="alice", method="publickey") in server_events


def test_unknown_message_gets_unimplemented() -> None:
    client, server = make_pair(keys=(USER_KEY,))
    exchange(client, server)
    client._transport.send_payload(b"\xc8unknown")
    assert server.receive_data(client.data_to_send()) == []
    (event,) = client.receive_data(server.data_to_send())
    assert isinstance(event, UnimplementedReceived)


def test_connection_messages_before_authentication_disconnect() -> None:
    client, server = make_pair(password="sesame")
    while client.session_id is None:  # key exchange only
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    client._transport.send_payload(b"\x50" + encode_text("keepalive@openssh.com") + b"\x01")
    with pytest.raises(ProtocolError, match="before authentication"):
        server.receive_data(client.data_to_send())
    assert server.closed
    (closed,) = client.receive_data(server.data_to_send())
    assert isinstance(closed, ConnectionClosed)
    assert closed.reason == DisconnectReason.PROTOCOL_ERROR


def test_a_second_service_request_disconnects() -> None:
    client, server = make_pair(keys=(USER_KEY,))
    exchange(client, server)
    client._transport.send_payload(b"\x05" + encode_text("ssh-userauth"))
    with pytest.raises(ProtocolError) as info:
        server.receive_data(client.data_to_send())
    assert info.value.reason is DisconnectReason.SERVICE_NOT_AVAILABLE


def test_rejected_shell() -> None:
    client, server = make_pair(keys=(USER_KEY,))
    exchange(client, server)
    channel = client.open_session()
    exchange(client, server)
    client.session(channel).request_shell()
    _, (request,) = exchange(client, server)
    assert isinstance(request, SessionEvent)
    assert isinstance(request.event, RequestReceived)
    server.reject_request(request.channel_id, request.event.handle)
    (answer,), _ = exchange(client, server)
    assert isinstance(answer, SessionEvent)
    assert isinstance(answer.event, RequestAnswered)
    assert not answer.event.accepted
    assert not server.session(0).program_started


def test_hostkeys_prove_with_a_key_the_server_lacks_fails() -> None:
    client, server = make_pair(keys=(USER_KEY,))
    exchange(client, server)
    prove = (
        b"\x50"
        + encode_text("hostkeys-prove-00@openssh.com")
        + b"\x01"
        + encode_string(HOST_KEY.public_blob)
    )
    client._transport.send_payload(prove + encode_string(STRANGER.public_blob))
    client._transport.send_payload(prove)
    assert server.receive_data(client.data_to_send()) == []
    replies = [
        e.payload
        for e in client._transport.receive_data(server.data_to_send())
        if isinstance(e, PayloadReceived)
    ]
    assert replies[0] == b"\x52"  # REQUEST_FAILURE: one key is not ours
    signature = Reader(replies[1], 1).string("signature")
    data = (
        encode_text("hostkeys-prove-00@openssh.com")
        + encode_string(server.session_id or b"")
        + encode_string(HOST_KEY.public_blob)
    )
    assert verify_signature("ssh-ed25519", HOST_KEY.public_blob, signature, data)


def test_the_client_signs_rsa_with_what_server_sig_algs_allows() -> None:
    algorithms: list[str] = []

    class Recording(SimpleAuthenticator):
        def check_public_key(self, username: str, algorithm: str, public_blob: bytes) -> bool:
            algorithms.append(algorithm)
            return public_blob == RSA_KEY.public_blob

    transport = TransportConfig(server_sig_algs=("ssh-ed25519", "rsa-sha2-256"))
    server = ServerConnection(
        ServerConfig(transport=transport), Recording(), [HOST_KEY], fixed_random(3).randbytes
    )
    client = ClientConnection(
        None,
        "alice",
        verify_host_key=lambda algorithm, blob: True,
        keys=[RSA_KEY],
        random=fixed_random(4).randbytes,
    )
    exchange(client, server)
    assert server.authenticated
    assert algorithms == ["rsa-sha2-256"]


def test_client_alive_keepalives_and_timeout() -> None:
    config = ServerConfig(client_alive_interval=10.0, client_alive_count_max=2)
    client, server = make_pair(keys=(USER_KEY,), config=config)
    exchange(client, server)  # authenticated at now=1.0
    assert server.get_timer() == 11.0
    assert server.handle_timer(10.0) == []
    assert server.data_to_send() == b""
    assert server.handle_timer(11.0) == []
    client_events = client.receive_data(server.data_to_send())
    assert (
        GlobalRequestReceived(name="keepalive@openssh.com", want_reply=True, accepted=False)
        in client_events
    )
    server_events = server.receive_data(client.data_to_send(), now=12.0)
    assert server_events == [GlobalReplyReceived(name="keepalive@openssh.com", success=False)]
    assert server.get_timer() == 22.0  # heard from the client at 12.0
    # The client falls silent: two unanswered keepalives, then the connection is dropped.
    assert server.handle_timer(22.0) == []
    assert server.handle_timer(32.0) == []
    (closed,) = server.handle_timer(42.0)
    assert closed == ConnectionClosed(
        reason=DisconnectReason.BY_APPLICATION,
        description="Timeout, client not responding",
        by_peer=False,
    )
    assert server.closed
    assert server.get_timer() is None
