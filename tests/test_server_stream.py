"""ServerConnection fed what real clients sent: the streams in fuzz/seeds/server_stream/
(written by ``python3 fuzz/fuzz_server_stream.py --write-seeds fuzz/seeds/server_stream``),
as captured and mutated, whole, byte by byte and cut anywhere.

Whatever arrives, ``receive_data`` gives events or raises ProtocolError with a
DISCONNECT queued and the connection closed, nothing else; the transport's
receive buffer never holds more than one packet; nobody logs in without the
password. The Hypothesis side of fuzz/fuzz_server_stream.py, with the same server
and checks (server_stream_helpers.py).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ptycore
from ptycore import DisconnectReason
from ptycore._wire import encode_text
from ptycore.connection import ChannelDataReceived, SessionEvent
from ptycore.server import ServerConnection
from ptycore.session import RequestReceived
from ptycore.transport import Role, Transport
from server_stream_helpers import bytewise, check_outcome, feed, make_server, unframe

SEEDS = Path(__file__).parent.parent / "fuzz" / "seeds" / "server_stream"
REMAKE = "make them again: python3 fuzz/fuzz_server_stream.py --write-seeds " + str(SEEDS)


def load_reads(path: Path) -> list[bytes]:
    """A seed as the reads to feed: mode 2 is framed by uint16 lengths."""
    mode, data = path.read_bytes()[0], path.read_bytes()[1:]
    return unframe(data) if mode == 2 else [data]


CAPTURED = {path.name: load_reads(path) for path in sorted(SEEDS.iterdir())}
SESSIONS = [name for name in CAPTURED if "session" in name and not name.endswith("-bytes")]
FLIGHTS = [name for name in CAPTURED if name.endswith("first-flight")]


def test_the_seeds_are_there() -> None:
    assert {"openssh-first-flight", "paramiko-first-flight", "asyncssh-first-flight"} <= {*FLIGHTS}
    assert len(SESSIONS) == 3


@pytest.mark.parametrize("name", SESSIONS)
@pytest.mark.parametrize("how", ["as read", "byte by byte"])
def test_captured_openssh_session_logs_in_and_runs_a_shell(name: str, how: str) -> None:
    reads = CAPTURED[name]
    server = make_server()
    events = feed(server, reads if how == "as read" else bytewise(b"".join(reads)))
    assert server.peer_version is not None
    assert server.peer_version.startswith("SSH-2.0-OpenSSH_"), REMAKE
    assert server.authenticated, f"{name} no longer logs in: {REMAKE}"
    requests = [
        e.event.request.request_type
        for e in events
        if isinstance(e, SessionEvent) and isinstance(e.event, RequestReceived)
    ]
    assert requests[0] == "pty-req"
    assert "shell" in requests
    echoed = b"".join(e.data for e in events if isinstance(e, ChannelDataReceived))
    assert echoed.startswith(b"hello")


@pytest.mark.parametrize("name", FLIGHTS)
def test_first_flights_whole_and_byte_by_byte_wait_for_the_key_exchange(name: str) -> None:
    (flight,) = CAPTURED[name]
    for chunks in ([flight], bytewise(flight)):
        server = make_server()
        feed(server, chunks)
        assert not server.closed
        assert server.peer_version == flight.split(b"\r\n")[0].decode()


Cut = tuple[str, list[int]]
cuts: st.SearchStrategy[Cut] = st.one_of(
    st.tuples(st.sampled_from(["whole", "as read", "byte by byte"]), st.just([])),
    st.tuples(st.just("at"), st.lists(st.integers(min_value=1, max_value=4000), max_size=20)),
)
mutations = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=1, exclude_max=True),
        st.sampled_from(["flip", "insert", "delete", "truncate"]),
        st.integers(min_value=0, max_value=255),
    ),
    max_size=4,
)


def mutate(data: bytes, edits: list[tuple[float, str, int]]) -> bytes:
    out = bytearray(data)
    for where, kind, value in edits:
        if not out:
            break
        at = int(where * len(out))
        if kind == "flip":
            out[at] ^= value or 1
        elif kind == "insert":
            out[at:at] = bytes([value])
        elif kind == "delete":
            del out[at]
        else:
            del out[at:]
    return bytes(out)


def cut(data: bytes, reads: list[bytes], how: Cut) -> list[bytes]:
    kind, points = how
    if kind == "whole":
        return [data]
    if kind == "byte by byte":
        return bytewise(data)
    if kind == "as read":
        offsets = [sum(len(read) for read in reads[: i + 1]) for i in range(len(reads))]
    else:
        offsets = sorted(set(points))
    bounds = [0, *(o for o in offsets if o < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(CAPTURED)), edits=mutations, how=cuts)
def test_mutated_captured_streams(
    name: str, edits: list[tuple[float, str, int]], how: Cut
) -> None:
    reads = CAPTURED[name]
    check_outcome(cut(mutate(b"".join(reads), edits), reads, how))


@settings(max_examples=200, deadline=None)
@given(
    version=st.sampled_from([b"SSH-2.0-OpenSSH_9.2p1\r\n", b"SSH-2.0-x\n", b""]),
    garbage=st.binary(max_size=600),
    bytes_at_a_time=st.booleans(),
)
def test_random_bytes(version: bytes, garbage: bytes, bytes_at_a_time: bool) -> None:
    data = version + garbage
    check_outcome(bytewise(data) if bytes_at_a_time else [data])


def _client_after_key_exchange(server: ServerConnection) -> Transport:
    client = Transport(Role.CLIENT, verify_host_key=lambda algorithm, blob: True)
    while True:
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            return client
        server.receive_data(to_server)
        client.receive_data(to_client)


@pytest.mark.parametrize(
    "payload",
    [b"\x05" + encode_text("ssh-userauth"), b"\xc8unknown message"],
    ids=["SERVICE_REQUEST", "unimplemented"],
)
def test_a_payload_and_the_disconnect_in_one_chunk(payload: bytes) -> None:
    server = make_server()
    client = _client_after_key_exchange(server)
    assert client.session_id == server.session_id is not None
    client.send_payload(payload)
    client.disconnect(DisconnectReason.BY_APPLICATION, "bye")
    events = server.receive_data(client.data_to_send(), now=1.0)
    assert server.closed
    closed = events[-1]
    assert isinstance(closed, ptycore.ConnectionClosed)
    assert closed.by_peer
    assert server.data_to_send() == b""  # nothing answered to a peer that has gone
