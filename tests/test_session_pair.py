"""A client machine and a server machine wired back to back through the wire format.

Like h11's ConnectionPair: what one side produces is encoded as SSH messages, parsed
back and fed to the other side, so every scenario also exercises the encoding. The
server's application is a small scripted object that decides when told to, so
decisions can come late and out of order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ptycore import ProtocolError
from ptycore._session_rules import SessionState
from ptycore._wire import Reader
from ptycore.messages import ChannelRequestMessage
from ptycore.modes import TerminalModes
from ptycore.requests import (
    AgentForwardRequest,
    BreakRequest,
    ExecRequest,
    KeepaliveRequest,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    UnknownRequest,
    WindowChangeRequest,
    WindowSize,
    parse_request,
)
from ptycore.session import (
    ClientSession,
    CloseReceived,
    DataReceived,
    EOFReceived,
    ExitSignalReceived,
    ExitStatusReceived,
    RequestAnswered,
    RequestReceived,
    RequestRefused,
    ServerSession,
    Session,
    SessionPolicy,
    WindowChanged,
    encode_outgoing,
)
from session_helpers import current_state
from test_session_fixtures import FIXTURES, load

CLIENT_CHANNEL, SERVER_CHANNEL = 3, 7
SIZE = WindowSize(cols=80, rows=24, width_px=0, height_px=0)
MODES = TerminalModes([(128, 38400), (129, 38400), (1, 3), (53, 1), (0x2A, 1)])


def deliver(wire: bytes, to: Session, channel: int) -> object:
    """Parse one encoded message and feed it to ``to``."""
    reader = Reader(wire)
    number = reader.byte("message number")
    assert reader.uint32("recipient channel") == channel
    if number == 98:
        message = ChannelRequestMessage.parse(wire)
        assert message.recipient_channel == channel
        return to.receive_request(message.request, message.want_reply)
    if number in (99, 100):
        reader.end("reply")
        return to.receive_reply(number == 99)
    if number == 94:
        return to.receive_data(reader.string("data"))
    if number == 95:
        data_type = reader.uint32("data type")
        return to.receive_extended_data(data_type, reader.string("data"))
    reader.end("EOF or CLOSE")
    if number == 96:
        return to.receive_eof()
    assert number == 97
    return to.receive_close()


def carry(source: Session, to: Session, channel: int) -> list[object]:
    """Move everything ``source`` has queued to ``to``, one message at a time."""
    return [
        deliver(encode_outgoing(item, channel), to, channel) for item in source.items_to_send()
    ]


class Pair:
    """A ClientSession and a ServerSession talking through encoded messages."""

    def __init__(self, policy: SessionPolicy | None = None) -> None:
        self.client = ClientSession()
        self.server = ServerSession(policy=policy)
        self.server_events: list[object] = []
        self.client_events: list[object] = []

    def to_server(self) -> list[object]:
        events = carry(self.client, self.server, SERVER_CHANNEL)
        self.server_events += events
        return events

    def to_client(self) -> list[object]:
        events = carry(self.server, self.client, CLIENT_CHANNEL)
        self.client_events += events
        return events

    def decide_all(self, accept: Callable[[RequestReceived], bool] = lambda e: True) -> None:
        """The server application decides every pending request, newest first."""
        pending = [
            e
            for e in self.server_events
            if isinstance(e, RequestReceived) and e.handle in self.server.undecided
        ]
        for event in reversed(pending):
            (self.server.accept if accept(event) else self.server.reject)(event.handle)

    def answers(self) -> list[tuple[str, bool]]:
        return [
            (e.request.request_type, e.accepted)
            for e in self.client_events
            if isinstance(e, RequestAnswered)
        ]

    def finish(self, status: int = 0) -> None:
        """The program exits: exit-status, EOF, CLOSE, and the client closes back."""
        self.server.send_exit_status(status)
        self.server.send_eof()
        self.server.close()
        self.to_client()
        assert current_state(self.client) is SessionState.CLOSED
        self.to_server()
        assert current_state(self.server) is SessionState.CLOSED


def test_openssh_interactive_shell_with_resize_and_exit() -> None:
    pair = Pair()
    c = pair.client
    c.request_pty(term="xterm-256color", size=SIZE, modes=MODES)
    c.request_env("LANG", "C.UTF-8")  # refused by the default policy: no reply wanted
    c.request_shell()
    events = pair.to_server()
    assert [type(e) for e in events] == [RequestReceived, RequestRefused, RequestReceived]
    assert pair.to_client() == []  # nothing decided yet: no reply may go out
    pair.decide_all()
    pair.to_client()
    assert pair.answers() == [("pty-req", True), ("shell", True)]
    assert current_state(c) is SessionState.RUNNING
    assert pair.server.pty is not None
    assert pair.server.pty.modes == MODES
    assert pair.server.environment == {}
    c.send_data(b"ls\r")
    c.change_window(WindowSize(cols=120, rows=40))
    events = pair.to_server()
    assert events[0] == DataReceived(data=b"ls\r")
    assert isinstance(events[1], WindowChanged)
    assert pair.server.pty.size == WindowSize(cols=120, rows=40)
    assert pair.to_client() == []  # window-change wants no reply
    pair.server.send_data(b"file\r\n")
    pair.server.send_extended_data(b"warning\r\n")
    assert pair.to_client() == [
        DataReceived(data=b"file\r\n"),
        DataReceived(data=b"warning\r\n", data_type=1),
    ]
    pair.finish(0)
    assert ExitStatusReceived(status=0) in pair.client_events
    assert EOFReceived() in pair.client_events
    assert CloseReceived() in pair.client_events


def test_openssh_no_pty_exec_with_full_32_bit_status() -> None:
    pair = Pair()
    pair.client.request_exec("exit 7")
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    assert pair.answers() == [("exec", True)]
    assert pair.server.pty is None
    assert pair.server.program == ExecRequest(command="exit 7")
    pair.client.send_eof()  # `ssh host cmd < /dev/null`
    assert pair.to_server() == [EOFReceived()]
    pair.finish(0x1_0000)
    assert pair.client.exit_status == 0x1_0000


def test_openssh_tt_with_command_and_break_and_signal() -> None:
    pair = Pair()
    pair.client.request_pty(term="xterm", size=SIZE, modes=MODES)
    pair.client.request_exec("top")
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    pair.client.send_break()  # ~B: 1000 ms, no reply
    pair.client.send_signal("INT")
    events = pair.to_server()
    assert [type(e) for e in events] == [RequestReceived, RequestReceived]
    assert isinstance(events[0], RequestReceived)
    assert events[0].request == BreakRequest(length_ms=1000)
    pair.decide_all()
    assert pair.to_client() == []  # neither wanted a reply
    pair.finish(0)


def test_openssh_sftp_subsystem_refuses_signals() -> None:
    pair = Pair()
    pair.client.request_subsystem("sftp")
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    assert pair.answers() == [("subsystem", True)]
    pair.client.send_request(SignalRequest(name="TERM"), want_reply=True)
    events = pair.to_server()
    assert isinstance(events[0], RequestRefused)
    pair.to_client()
    assert pair.answers()[-1] == ("signal", False)
    pair.client.send_data(b"\x00\x00\x00\x05\x01\x00\x00\x00\x03")
    assert isinstance(pair.to_server()[0], DataReceived)
    pair.finish(0)


def test_sendenv_with_accept_env_and_agent_forwarding() -> None:
    pair = Pair(SessionPolicy(accept_env=("LANG", "LC_*")))
    c = pair.client
    c.request_agent_forwarding()
    c.request_env("LANG", "en_US.UTF-8")
    c.request_env("LC_TIME", "C")
    c.request_env("EDITOR", "vi")
    c.request_pty(term="screen", size=SIZE, modes=MODES)
    c.request_shell()
    events = pair.to_server()
    assert [type(e).__name__ for e in events] == [
        "RequestReceived",
        "RequestReceived",
        "RequestReceived",
        "RequestRefused",
        "RequestReceived",
        "RequestReceived",
    ]
    pair.decide_all()
    pair.to_client()
    assert pair.answers() == [("pty-req", True), ("shell", True)]
    assert pair.server.environment == {"LANG": "en_US.UTF-8", "LC_TIME": "C"}
    assert pair.server.agent_forwarding
    pair.finish(0)


def test_paramiko_style_requests_with_replies() -> None:
    # Paramiko's get_pty and invoke_shell both want replies; env wants none.
    pair = Pair(SessionPolicy(accept_env=("FOO",)))
    c = pair.client
    c.request_env("FOO", "bar", want_reply=True)
    c.request_exec("env")
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    assert pair.answers() == [("env", True), ("exec", True)]
    pair.finish(0)


def test_asyncssh_style_resize_signal_break_without_pty() -> None:
    pair = Pair()
    c = pair.client
    c.request_shell()
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    c.change_window(WindowSize(cols=100, rows=30))
    c.send_signal("INT")
    c.send_break(500, want_reply=True)
    events = pair.to_server()
    assert isinstance(events[0], WindowChanged)
    assert isinstance(events[1], RequestReceived)
    assert isinstance(events[2], RequestRefused)  # no PTY: RFC 4335 break fails
    pair.to_client()
    assert pair.answers()[-1] == ("break", False)
    pair.server.send_exit_signal("INT", core_dumped=False)
    pair.server.close()
    pair.to_client()
    assert ExitSignalReceived(name="INT", core_dumped=False, message="", language="") in (
        pair.client_events
    )
    pair.to_server()


def test_late_out_of_order_decisions_reach_the_client_in_order() -> None:
    pair = Pair(SessionPolicy(accept_env=("*",)))
    c = pair.client
    c.request_pty(term="xterm", size=SIZE, modes=MODES)
    c.request_env("A", "1", want_reply=True)
    c.send_request(
        UnknownRequest(request_type="putty-winadj@putty.projects.tartarus.org", payload=b""),
        want_reply=True,
    )
    c.request_exec("make")
    events = pair.to_server()
    pty, env, _unknown, exec_ = events
    assert isinstance(pty, RequestReceived)
    assert isinstance(env, RequestReceived)
    assert isinstance(exec_, RequestReceived)
    pair.server.accept(exec_.handle)
    pair.server.reject(env.handle)
    assert pair.to_client() == []
    pair.server.accept(pty.handle)
    pair.to_client()
    assert pair.answers() == [
        ("pty-req", True),
        ("env", False),
        ("putty-winadj@putty.projects.tartarus.org", False),
        ("exec", True),
    ]
    assert c.pty is not None
    assert c.environment == {}
    pair.finish(0)


def test_server_keepalive_is_answered_by_the_client() -> None:
    pair = Pair()
    pair.client.request_shell()
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    handle = pair.server.send_request(KeepaliveRequest(), want_reply=True)
    events = pair.to_client()
    assert isinstance(events[0], RequestRefused)  # OpenSSH's client answers FAILURE
    events = pair.to_server()
    assert events == [RequestAnswered(handle=handle, request=KeepaliveRequest(), accepted=False)]
    pair.finish(0)


def test_client_closes_first() -> None:
    pair = Pair()
    pair.client.request_shell()
    pair.to_server()
    pair.client.close()
    events = pair.to_server()
    assert events == [CloseReceived()]
    assert current_state(pair.server) is SessionState.CLOSED
    pair.to_client()  # FAILURE for the undecided shell, then our CLOSE
    assert pair.answers() == [("shell", False)]
    assert current_state(pair.client) is SessionState.CLOSED


def test_bad_peer_second_pty_and_exec_after_shell() -> None:
    pair = Pair()
    pair.client.request_pty(term="xterm", size=SIZE, modes=MODES)
    pair.client.request_shell()
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    # exec after shell: refused, the session goes on
    refused = pair.server.receive_request(ExecRequest(command="id"), want_reply=True)
    assert isinstance(refused, RequestRefused)
    pty = PtyRequest(term="xterm", size=SIZE, modes=TerminalModes())
    # a second pty-req once the program runs is refused too (session.c: not LARVAL)
    assert isinstance(pair.server.receive_request(pty, want_reply=True), RequestRefused)
    before = Pair()
    before.client.request_pty(term="xterm", size=SIZE, modes=MODES)
    before.to_server()
    before.decide_all()
    with pytest.raises(ProtocolError, match="already have a pty"):
        before.server.receive_request(pty, want_reply=True)


@pytest.mark.parametrize(
    "program", [ShellRequest(), ExecRequest(command="true"), SubsystemRequest(name="sftp")]
)
def test_rejected_program_then_another(program: ShellRequest) -> None:
    pair = Pair()
    pair.client.send_request(program, want_reply=True)
    pair.to_server()
    pair.decide_all(accept=lambda e: False)
    pair.to_client()
    assert current_state(pair.client) is SessionState.READY
    pair.client.request_shell()
    pair.to_server()
    pair.decide_all()
    pair.to_client()
    assert current_state(pair.client) is pair.server.state is SessionState.RUNNING
    pair.finish(0)


def test_agent_forwarding_request_names() -> None:
    for name in ("auth-agent-req@openssh.com", "agent-req"):
        pair = Pair()
        pair.client.send_request(AgentForwardRequest(request_type=name), want_reply=True)
        pair.to_server()
        pair.decide_all()
        pair.to_client()
        assert pair.answers() == [(name, True)]
        assert pair.server.agent_forwarding


def test_window_change_sizes_survive_the_wire() -> None:
    pair = Pair()
    pair.client.request_pty(term="xterm", size=SIZE, modes=MODES)
    pair.to_server()
    pair.decide_all()
    pair.client.send_request(
        WindowChangeRequest(size=WindowSize(cols=70000, rows=1, width_px=1, height_px=2))
    )
    (event,) = pair.to_server()
    assert isinstance(event, WindowChanged)
    assert event.clamped
    assert event.size == WindowSize(cols=65535, rows=1, width_px=1, height_px=2)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_real_client_sequences_through_the_pair(path: Path) -> None:
    """The captured sequences, sent by a ClientSession and answered through the wire."""
    _, steps = load(path)
    assert steps
    pair = Pair(SessionPolicy(accept_env=("LANG", "LC_*")))
    wanted = []
    for step in steps:
        request = parse_request(step.request_type, step.payload)
        handle = pair.client.send_request(request, want_reply=step.want_reply)
        if step.want_reply:
            wanted.append(handle)
        pair.to_server()
        pair.decide_all()
        pair.to_client()
    answered = [e for e in pair.client_events if isinstance(e, RequestAnswered)]
    assert [e.handle for e in answered] == wanted
    assert all(e.accepted for e in answered), answered
    assert current_state(pair.client) is current_state(pair.server) is SessionState.RUNNING
    assert pair.client.program == pair.server.program
    assert (pair.client.pty is None) == (pair.server.pty is None)
    pair.finish(0)
