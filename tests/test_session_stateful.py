"""Random sequences against both roles of the session machine (hypothesis.stateful).

Legal and illegal requests, application decisions in random order, data, EOF, exit
and close. After every step: exactly one reply per want_reply request, in request
order, none for the others; the state is one the table lists; illegal input is
refused or raises ProtocolError / LocalProtocolError, never anything else, and a
refused application call changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ptycore import ProtocolError
from ptycore._session_rules import RULES, SessionState
from ptycore.modes import TerminalModes
from ptycore.requests import (
    AgentForwardRequest,
    ChannelRequest,
    EnvRequest,
    ExecRequest,
    ExitSignalRequest,
    ExitStatusRequest,
    KeepaliveRequest,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    WindowChangeRequest,
    WindowSize,
)
from ptycore.session import (
    ClientSession,
    LocalProtocolError,
    OutgoingReply,
    OutgoingRequest,
    RequestAnswered,
    RequestReceived,
    RequestRefused,
    ServerSession,
    Session,
    SessionPolicy,
    WindowChanged,
)
from session_helpers import SAMPLES

T = TypeVar("T")

LISTED_STATES = {key[1] for key in RULES} | {SessionState.CLOSED, SessionState.ERROR}

sizes = st.builds(
    WindowSize,
    cols=st.sampled_from([0, 80, 65535, 65536, 0xFFFFFFFF]),
    rows=st.sampled_from([0, 24, 70000]),
)
requests: st.SearchStrategy[ChannelRequest] = st.one_of(
    st.sampled_from(list(SAMPLES.values())),
    st.builds(EnvRequest, name=st.sampled_from(["LANG", "LC_ALL", "PATH"]), value=st.just("x")),
    st.builds(SignalRequest, name=st.sampled_from(["INT", "TERM", "ABRT", "WINCH"])),
    st.builds(WindowChangeRequest, size=sizes),
    st.builds(
        PtyRequest,
        term=st.sampled_from(["xterm", "x" * 300]),
        size=sizes,
        modes=st.just(TerminalModes()),
    ),
    st.just(AgentForwardRequest(request_type="agent-req")),
)
# Inputs that end the interesting part of a run (protocol errors, CLOSE) are drawn
# rarely, so that most runs go deep: ``rare`` is true one time in ten.
rare = st.integers(min_value=0, max_value=9).map(lambda n: n == 9)


class _Machine(RuleBasedStateMachine):
    """What both roles' machines share: calling safely and checking replies."""

    session: Session

    def __init__(self) -> None:
        super().__init__()
        self.replied: list[int] = []  # handles of OutgoingReply items, in wire order
        self.sent_wanting: list[int] = []  # our own want_reply requests, oldest first

    def call(self, fn: Callable[[], T]) -> T | None:
        """Call; only the two typed errors may come out, with their documented effects."""
        self.drain()
        before = self.session.state
        try:
            return fn()
        except ProtocolError:
            assert self.session.state is SessionState.ERROR
        except LocalProtocolError:
            assert self.session.state is before
            assert self.session.items_to_send() == []
        return None

    def drain(self) -> None:
        for item in self.session.items_to_send():
            if isinstance(item, OutgoingReply):
                self.replied.append(item.handle)
            if isinstance(item, OutgoingRequest) and item.want_reply:
                self.sent_wanting.append(item.handle)

    @invariant()
    def state_is_listed(self) -> None:
        assert self.session.state in LISTED_STATES

    @rule(data=st.binary(max_size=8), force=rare)
    def receive_data(self, data: bytes, force: bool) -> None:
        if force or self.session.program_started:
            self.call(lambda: self.session.receive_data(data))

    @rule(force=rare)
    def receive_eof(self, force: bool) -> None:
        if force or not self.session.eof_received:
            self.call(self.session.receive_eof)

    @rule(force=rare)
    def receive_close(self, force: bool) -> None:
        if force:
            self.call(self.session.receive_close)

    @rule(success=st.booleans(), force=rare)
    def receive_reply(self, success: bool, force: bool) -> None:
        if force or self.session.awaiting_replies:
            self.answered(self.call(lambda: self.session.receive_reply(success)))

    def answered(self, event: object) -> None:
        """A RequestAnswered must answer our oldest request that wanted a reply."""
        if isinstance(event, RequestAnswered):
            assert event.handle == self.sent_wanting.pop(0)

    @rule(data=st.binary(max_size=4))
    def send_data(self, data: bytes) -> None:
        self.call(lambda: self.session.send_data(data))

    @rule()
    def send_eof(self) -> None:
        self.call(self.session.send_eof)

    @rule(force=rare)
    def close(self, force: bool) -> None:
        if force:
            self.call(self.session.close)

    @rule(want_reply=st.booleans())
    def send_keepalive(self, want_reply: bool) -> None:
        self.call(lambda: self.session.send_request(KeepaliveRequest(), want_reply=want_reply))


class ServerMachine(_Machine):
    def __init__(self) -> None:
        super().__init__()
        self.session = self.server = ServerSession(
            policy=SessionPolicy(accept_env=("LANG", "LC_*"), max_env=2)
        )
        self.wanted: list[int] = []  # want_reply request handles, in arrival order
        self.unwanted: set[int] = set()

    @initialize(agent=st.booleans(), x11=st.booleans())
    def restrict_forwarding(self, agent: bool, x11: bool) -> None:
        """Some runs forbid forwarding, as no-agent-forwarding or no-X11-forwarding do."""
        policy = dataclasses.replace(
            self.server.policy, allow_agent_forwarding=agent, allow_x11_forwarding=x11
        )
        self.session = self.server = ServerSession(policy=policy)

    def record(self, event: object) -> None:
        if isinstance(event, RequestReceived | RequestRefused | WindowChanged):
            if event.want_reply:
                self.wanted.append(event.handle)
            else:
                self.unwanted.add(event.handle)

    @rule(request=requests, want_reply=st.booleans())
    def receive_request(self, request: ChannelRequest, want_reply: bool) -> None:
        self.record(self.call(lambda: self.server.receive_request(request, want_reply)))

    @rule(request=requests, garbage=st.binary(max_size=24), force=rare, want_reply=st.booleans())
    def receive_raw(
        self, request: ChannelRequest, garbage: bytes, force: bool, want_reply: bool
    ) -> None:
        payload = garbage if force else request.encode()
        self.record(
            self.call(
                lambda: self.server.receive_channel_request(
                    request.request_type, payload, want_reply
                )
            )
        )

    @precondition(lambda self: bool(self.server.undecided))
    @rule(data=st.data(), accept=st.booleans())
    def decide(self, data: st.DataObject, accept: bool) -> None:
        handle = data.draw(st.sampled_from(self.server.undecided))
        decide = self.server.accept if accept else self.server.reject
        self.call(lambda: decide(handle))

    @rule(handle=st.integers(min_value=-1, max_value=60), accept=st.booleans())
    def decide_any(self, handle: int, accept: bool) -> None:
        decide = self.server.accept if accept else self.server.reject
        self.call(lambda: decide(handle))

    @rule(status=st.integers(min_value=0, max_value=0xFFFFFFFF))
    def send_exit_status(self, status: int) -> None:
        self.call(lambda: self.server.send_exit_status(status))
        if self.server.exit_status is not None:
            assert self.server.exit_status <= 0xFFFFFFFF

    @rule()
    def send_exit_signal(self) -> None:
        self.call(lambda: self.server.send_exit_signal("KILL"))

    @rule(data=st.binary(max_size=4))
    def send_extended_data(self, data: bytes) -> None:
        self.call(lambda: self.server.send_extended_data(data))

    @invariant()
    def replies_in_order_once_each(self) -> None:
        self.drain()
        assert self.replied == self.wanted[: len(self.replied)]
        assert not self.unwanted.intersection(self.replied)
        undecided_wanting = set(self.server.undecided) & set(self.wanted)
        if not undecided_wanting and self.server.state is not SessionState.ERROR:
            assert self.replied == self.wanted
        if self.server.state in (SessionState.CLOSING, SessionState.CLOSED):
            assert self.server.undecided == ()
            assert self.replied == self.wanted

    @invariant()
    def forwarding_only_if_allowed(self) -> None:
        policy = self.server.policy
        if not policy.allow_agent_forwarding:
            assert not self.server.agent_forwarding
        if not policy.allow_x11_forwarding:
            assert self.server.x11 is None

    @invariant()
    def program_matches_state(self) -> None:
        state = self.server.state
        if state in (SessionState.RUNNING, SessionState.EXITED):
            assert self.server.program_started
        if state in (SessionState.READY, SessionState.STARTING):
            assert not self.server.program_started
        if state is SessionState.EXITED:
            assert (self.server.exit_status is None) != (self.server.exit_signal is None)


class ClientMachine(_Machine):
    def __init__(self) -> None:
        super().__init__()
        self.session = self.client = ClientSession()
        self.replies_owed = 0  # want_reply requests received minus replies sent

    @rule(
        request=st.one_of(
            requests,
            st.builds(ExecRequest, command=st.just("true")),
            st.just(ShellRequest()),
            st.just(SubsystemRequest(name="sftp")),
        ),
        want_reply=st.booleans(),
    )
    def send_request(self, request: ChannelRequest, want_reply: bool) -> None:
        self.call(lambda: self.client.send_request(request, want_reply=want_reply))

    @rule(term=st.sampled_from(["xterm", "vt100"]), want_reply=st.booleans())
    def request_pty(self, term: str, want_reply: bool) -> None:
        size = WindowSize(cols=80, rows=24)
        self.call(lambda: self.client.request_pty(term=term, size=size, want_reply=want_reply))

    @rule(
        request=st.one_of(
            st.builds(ExitStatusRequest, status=st.integers(0, 0xFFFFFFFF)),
            st.just(ExitSignalRequest(name="TERM", core_dumped=True)),
            requests,
        ),
        want_reply=st.booleans(),
    )
    def receive_request(self, request: ChannelRequest, want_reply: bool) -> None:
        self.drain()
        before = self.client.state
        event = self.call(lambda: self.client.receive_request(request, want_reply))
        owes = want_reply and event is not None and before not in (SessionState.CLOSING,)
        self.replies_owed += int(owes)

    @rule(data_type=st.sampled_from([1, 2]), data=st.binary(max_size=4))
    def receive_extended_data(self, data_type: int, data: bytes) -> None:
        self.call(lambda: self.client.receive_extended_data(data_type, data))

    @invariant()
    def replies_match(self) -> None:
        self.drain()
        assert len(self.replied) == self.replies_owed
        assert len(set(self.replied)) == len(self.replied)
        if self.client.state is not SessionState.ERROR:
            assert self.client.awaiting_replies == len(self.sent_wanting)


_settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestServerSession = ServerMachine.TestCase
TestServerSession.settings = _settings
TestClientSession = ClientMachine.TestCase
TestClientSession.settings = _settings
