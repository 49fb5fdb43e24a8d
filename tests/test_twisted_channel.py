"""SessionChannel inside Conch's real SSHConnection, in memory: the packets it sends,
flow control both ways and the output caps, with a Clock for the reactor."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from twisted.conch.ssh import common, connection
from twisted.internet.task import Clock

from ptycore_twisted import (
    INPUT_WINDOW,
    MAX_OUTPUT_BUFFER,
    OUTPUT_HIGH_WATER,
    SessionAvatar,
    SessionChannel,
    SessionProtocol,
)

CLIENT_CHANNEL = 7


class RecordingTransport:
    """Stands where Conch's SSH transport would be: records what the connection sends."""

    def __init__(self, avatar: SessionAvatar) -> None:
        self.avatar = avatar
        self.packets: list[tuple[int, bytes]] = []
        self.disconnected: tuple[int, bytes] | None = None

    def sendPacket(self, message: int, payload: bytes) -> None:
        self.packets.append((message, payload))

    def sendDisconnect(self, reason: int, description: bytes) -> None:
        self.disconnected = (reason, description)

    def logPrefix(self) -> str:
        return "memory"

    def take(self) -> list[tuple[int, bytes]]:
        packets, self.packets = self.packets, []
        return packets


@dataclass
class Producer:
    """An IPushProducer that records what it was told."""

    calls: list[str] = field(default_factory=list)

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class Recorder(SessionProtocol):
    def __init__(self) -> None:
        self.events: list[object] = []
        self.on_start: Callable[[Recorder], None] = lambda _: None

    def session_started(self) -> None:
        self.events.append("started")
        self.on_start(self)

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def session_closed(self) -> None:
        self.events.append("closed")


@dataclass
class Harness:
    clock: Clock
    transport: RecordingTransport
    conn: connection.SSHConnection
    protocol: Recorder
    channel: SessionChannel

    def request(self, name: bytes, payload: bytes = b"", want_reply: bool = True) -> None:
        self.conn.ssh_CHANNEL_REQUEST(
            struct.pack(">L", self.channel.id) + common.NS(name) + bytes([want_reply]) + payload
        )
        self.clock.advance(0)

    def window(self, amount: int) -> None:
        self.conn.ssh_CHANNEL_WINDOW_ADJUST(struct.pack(">2L", self.channel.id, amount))


def open_session(client_window: int) -> Harness:
    clock = Clock()
    protocol = Recorder()
    avatar = SessionAvatar("tester", lambda: protocol, reactor=clock)
    transport = RecordingTransport(avatar)
    conn = connection.SSHConnection()
    conn.transport = transport  # type: ignore[assignment]
    conn.ssh_CHANNEL_OPEN(
        common.NS(b"session") + struct.pack(">3L", CLIENT_CHANNEL, client_window, 32768)
    )
    ((message, payload),) = transport.take()
    assert message == connection.MSG_CHANNEL_OPEN_CONFIRMATION
    recipient, channel_id, window, _max_packet = struct.unpack(">4L", payload)
    assert (recipient, window) == (CLIENT_CHANNEL, 0)  # no input before the program starts
    channel = conn.channels[channel_id]
    assert isinstance(channel, SessionChannel)
    return Harness(clock, transport, conn, protocol, channel)


def kinds(packets: list[tuple[int, bytes]]) -> list[int]:
    return [message for message, _ in packets]


def test_program_start_opens_the_window_after_the_reply() -> None:
    harness = open_session(client_window=1 << 20)
    harness.request(b"exec", common.NS(b"anything"))
    packets = harness.transport.take()
    assert kinds(packets) == [
        connection.MSG_CHANNEL_WINDOW_ADJUST,
        connection.MSG_CHANNEL_SUCCESS,
    ]
    assert packets[0][1] == struct.pack(">2L", CLIENT_CHANNEL, INPUT_WINDOW)
    assert harness.protocol.events == ["started"]


def test_output_waits_for_the_window_and_exit_report_waits_for_output() -> None:
    harness = open_session(client_window=10)

    def start(protocol: Recorder) -> None:
        protocol.transport.write(b"0123456789abcdef")
        protocol.transport.exit(3)

    harness.protocol.on_start = start
    harness.request(b"exec", common.NS(b"anything"))
    packets = harness.transport.take()
    sent = [payload for message, payload in packets if message == connection.MSG_CHANNEL_DATA]
    assert sent == [struct.pack(">L", CLIENT_CHANNEL) + common.NS(b"0123456789")]
    assert connection.MSG_CHANNEL_EOF not in kinds(packets)
    harness.window(100)
    later = harness.transport.take()
    assert kinds(later) == [
        connection.MSG_CHANNEL_DATA,
        connection.MSG_CHANNEL_EOF,
        connection.MSG_CHANNEL_REQUEST,
        connection.MSG_CHANNEL_CLOSE,
    ]
    assert later[2][1].endswith(common.NS(b"exit-status") + b"\x00" + struct.pack(">L", 3))


def test_producer_paused_above_high_water_and_resumed_when_drained() -> None:
    harness = open_session(client_window=0)
    producer = Producer()
    harness.protocol.on_start = lambda p: p.transport.registerProducer(producer, True)
    harness.request(b"shell")
    harness.protocol.transport.write(b"x" * OUTPUT_HIGH_WATER)
    assert producer.calls == []
    harness.protocol.transport.write(b"x")
    assert producer.calls == ["pause"]
    harness.window(OUTPUT_HIGH_WATER)
    assert producer.calls == ["pause"]  # one byte still waits
    harness.window(1)
    assert producer.calls == ["pause", "resume"]


def test_a_client_that_never_reads_loses_its_session_at_the_cap() -> None:
    harness = open_session(client_window=0)
    harness.request(b"shell")
    harness.transport.take()
    harness.protocol.transport.write(b"x" * (MAX_OUTPUT_BUFFER + 1))
    assert kinds(harness.transport.take()) == [
        connection.MSG_CHANNEL_EOF,
        connection.MSG_CHANNEL_CLOSE,
    ]
    harness.protocol.transport.write(b"ignored after close")
    assert harness.transport.take() == []


def test_paused_input_stops_refilling_the_window() -> None:
    harness = open_session(client_window=1 << 20)
    harness.request(b"shell")
    harness.transport.take()
    harness.protocol.transport.pauseProducing()
    chunk = b"y" * 32768
    for _ in range(INPUT_WINDOW // len(chunk) // 2 + 1):
        harness.conn.ssh_CHANNEL_DATA(struct.pack(">L", harness.channel.id) + common.NS(chunk))
    assert connection.MSG_CHANNEL_WINDOW_ADJUST not in kinds(harness.transport.take())
    harness.protocol.transport.resumeProducing()
    ((message, _payload),) = harness.transport.take()
    assert message == connection.MSG_CHANNEL_WINDOW_ADJUST
    assert harness.channel.localWindowLeft == INPUT_WINDOW


@pytest.mark.parametrize("want_reply", [True, False])
def test_malformed_request_disconnects_with_the_core_reason(want_reply: bool) -> None:
    harness = open_session(client_window=0)
    harness.request(b"pty-req", common.NS(b"xterm") + struct.pack(">L", 80), want_reply)
    assert harness.transport.disconnected is not None
    reason, description = harness.transport.disconnected
    assert reason == 2  # SSH_DISCONNECT_PROTOCOL_ERROR
    assert b"pty-req" in description
    assert harness.transport.take() == []  # no reply to a request that broke the protocol
