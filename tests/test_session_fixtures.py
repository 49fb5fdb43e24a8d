"""Replay the request sequences real clients sent into a server session.

The fixtures in tests/fixtures/clients/*.json were captured from real clients
(OpenSSH, Paramiko, AsyncSSH; see each file's "client" and "how"). Each sequence is
parsed with parse_request and fed to a ServerSession whose application accepts
everything plausible; every request must be answered exactly as the client expects:
one reply per want_reply request, in order, success for what a working server grants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from ptycore._session_rules import SessionState
from ptycore.requests import (
    EnvRequest,
    ExecRequest,
    PtyRequest,
    ShellRequest,
    SubsystemRequest,
    WindowChangeRequest,
    parse_request,
)
from ptycore.session import (
    OPENSSH_SIGNALS,
    OutgoingReply,
    RequestReceived,
    ServerSession,
    SessionPolicy,
    WindowChanged,
)

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "clients").glob("*.json"))

# What a client expects from a working server that grants it everything it asks for.
GRANTED = {
    "pty-req",
    "shell",
    "exec",
    "subsystem",
    "x11-req",
    "auth-agent-req@openssh.com",
    "agent-req",
    "window-change",
}
PROGRAMS = {"shell", "exec", "subsystem"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    request_type: str
    want_reply: bool
    payload: bytes


def load(path: Path) -> tuple[dict[str, object], list[Step]]:
    fixture = json.loads(path.read_text())
    steps = [
        Step(
            request_type=r["type"],
            want_reply=bool(r["want_reply"]),
            payload=bytes.fromhex(r["payload_hex"]),
        )
        for r in fixture["requests"]
    ]
    return fixture, steps


def test_fixtures_exist() -> None:
    """The replay below must not pass vacuously."""
    assert FIXTURES, "no client fixtures in tests/fixtures/clients/"
    for path in FIXTURES:
        fixture, steps = load(path)
        assert {"client", "how", "scenario", "requests"} <= set(fixture), path.name
        assert steps, f"{path.name} has no requests"


def replay(steps: list[Step], policy: SessionPolicy) -> tuple[ServerSession, list[bool]]:
    """Feed the steps, accepting every request the machine hands to the application.

    Checks each request's outcome (granted by the application or the machine, or
    refused) against what the client expects, and the replies against the outcomes
    of the requests that wanted one, in order.
    """
    server = ServerSession(policy=policy)
    outcomes: list[bool] = []
    expected: list[bool] = []
    for step in steps:
        request = parse_request(step.request_type, step.payload)
        before = server.state
        had_pty = server.pty is not None
        event = server.receive_request(request, step.want_reply)
        if isinstance(event, RequestReceived):
            server.accept(event.handle)
        outcomes.append(isinstance(event, RequestReceived | WindowChanged))
        expected.append(expect(step.request_type, request, before, had_pty, policy))
    assert outcomes == expected, (outcomes, expected)
    replies = [i.success for i in server.items_to_send() if isinstance(i, OutgoingReply)]
    assert replies == [ok for ok, step in zip(outcomes, steps, strict=True) if step.want_reply]
    return server, replies


def expect(
    request_type: str, request: object, before: SessionState, had_pty: bool, policy: SessionPolicy
) -> bool:
    """What the client expects, from what it asked and where the session stood."""
    started = before in (SessionState.RUNNING, SessionState.EXITED)
    if request_type in PROGRAMS:
        return before is SessionState.READY
    if request_type in GRANTED:
        return request_type == "window-change" or not started
    if isinstance(request, EnvRequest):
        return not started and policy.env_allowed(request.name)
    if request_type == "signal":
        return started and getattr(request, "name", None) in policy.signals
    if request_type == "break":
        return started and had_pty
    return False  # keepalive@openssh.com, vendor requests: FAILURE


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
@pytest.mark.parametrize("allow_env", [False, True], ids=["default-policy", "accept-env"])
def test_replay_client_fixture(path: Path, allow_env: bool) -> None:
    _, steps = load(path)
    policy = SessionPolicy(accept_env=("*",) if allow_env else ())
    server, replies = replay(steps, policy)
    assert len(replies) == sum(step.want_reply for step in steps)
    requests = [parse_request(s.request_type, s.payload) for s in steps]
    # Programs: the first one asked for runs.
    programs = [
        r for r in requests if isinstance(r, ShellRequest | ExecRequest | SubsystemRequest)
    ]
    if programs:
        assert server.program == programs[0]
        assert server.state is SessionState.RUNNING
    # The PTY as it stands after the window changes that followed it.
    ptys = [r for r in requests if isinstance(r, PtyRequest)]
    if ptys:
        assert server.pty is not None
        assert (server.pty.term, server.pty.modes) == (ptys[0].term, ptys[0].modes)
        changes = [r for r in requests if isinstance(r, WindowChangeRequest)]
        size = changes[-1].size if changes else ptys[0].size
        assert server.pty.size == size
    else:
        assert server.pty is None
    first_program = requests.index(programs[0]) if programs else len(requests)
    envs = {r.name: r.value for r in requests[:first_program] if isinstance(r, EnvRequest)}
    assert dict(server.environment) == (envs if allow_env else {})
    assert server.policy.signals == OPENSSH_SIGNALS
