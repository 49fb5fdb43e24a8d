"""Real clients' channel requests (tests/fixtures/clients/*.json) through the codec.

Every captured payload must parse and encode back byte for byte, inside a whole
``SSH_MSG_CHANNEL_REQUEST`` too, and what the parsed requests say must match the
facts each capture recorded about itself (``expect``: TERM, size, modes, command...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ptycore import (
    AgentForwardRequest,
    BreakRequest,
    ChannelRequest,
    ChannelRequestMessage,
    EnvRequest,
    ExecRequest,
    Opcode,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    UnknownRequest,
    WindowChangeRequest,
    X11Request,
    parse_request,
)
from ptycore.requests import _PARSERS

FIXTURES = Path(__file__).parent / "fixtures" / "clients"
FILES = sorted(FIXTURES.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


CASES = [
    pytest.param(request, id=f"{path.stem}-{index}-{request['type']}")
    for path in FILES
    for index, request in enumerate(load(path)["requests"])
]


def test_fixtures_exist() -> None:
    # Without fixtures every test below would be skipped: fail instead.
    assert len(FILES) >= 10, f"expected real-client captures in {FIXTURES}"
    assert {load(path)["client"].split("_")[0] for path in FILES} >= {
        "SSH-2.0-OpenSSH",
        "SSH-2.0-paramiko",
        "SSH-2.0-AsyncSSH",
    }


@pytest.mark.parametrize("captured", CASES)
def test_real_payload_round_trips_byte_for_byte(captured: dict[str, Any]) -> None:
    payload = bytes.fromhex(captured["payload_hex"])
    request = parse_request(captured["type"], payload)
    # PuTTY also sends simple@putty.projects.tartarus.org, which is kept whole.
    assert isinstance(request, UnknownRequest) is (captured["type"] not in _PARSERS)
    assert request.request_type == captured["type"]
    assert request.encode() == payload
    assert parse_request(captured["type"].encode(), payload) == request

    message = ChannelRequestMessage(
        recipient_channel=0, want_reply=captured["want_reply"], request=request
    )
    wire = message.encode()
    assert wire.endswith(payload)
    assert ChannelRequestMessage.parse(wire) == message


NAMES = {opcode.value: opcode.name for opcode in Opcode}


def observed(requests: list[ChannelRequest]) -> dict[str, Any]:
    """The facts of ``expect``, as the parsed requests tell them."""
    facts: dict[str, Any] = {"pty": False, "env": {}, "agent": False}
    for request in requests:
        if isinstance(request, PtyRequest):
            size = request.size
            facts.update(
                pty=True,
                term=request.term,
                cols=size.cols,
                rows=size.rows,
                width_px=size.width_px,
                height_px=size.height_px,
                modes={NAMES.get(op, op): value for op, value in request.modes.items()},
            )
        elif isinstance(request, EnvRequest):
            facts["env"][request.name] = request.value
        elif isinstance(request, ShellRequest):
            facts["program"] = "shell"
        elif isinstance(request, ExecRequest):
            facts.update(program="exec", command=request.command)
        elif isinstance(request, SubsystemRequest):
            facts.update(program="subsystem", subsystem=request.name)
        elif isinstance(request, WindowChangeRequest):
            size = request.size
            full = [size.cols, size.rows, size.width_px, size.height_px]
            facts.setdefault("window_changes", []).append(full)
        elif isinstance(request, SignalRequest):
            facts.setdefault("signals", []).append(request.name)
        elif isinstance(request, BreakRequest):
            facts["break_ms"] = request.length_ms
        elif isinstance(request, AgentForwardRequest):
            facts["agent"] = True
        elif isinstance(request, X11Request):
            facts["x11"] = {
                "single_connection": request.single_connection,
                "auth_protocol": request.auth_protocol,
                "screen": request.screen,
            }
    return facts


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_parsed_requests_say_what_the_capture_recorded(path: Path) -> None:
    capture = load(path)
    requests = [
        parse_request(item["type"], bytes.fromhex(item["payload_hex"]))
        for item in capture["requests"]
    ]
    facts = observed(requests)
    expect = dict(capture["expect"])
    expect.pop("global_requests", None)  # connection-level, not in "requests"
    assert expect, "a capture with nothing to check"
    for key, recorded in expect.items():
        want, got = recorded, facts.get(key)
        if key == "modes":
            # Only the modes the capture set on purpose are recorded.
            got = {name: facts["modes"].get(name) for name in recorded}
        elif key == "env":
            # In the order the client sent them.
            want, got = list(recorded.items()), list(facts["env"].items())
        elif key == "window_changes":
            got = [full[: len(w)] for full, w in zip(got or [], recorded, strict=True)]
        assert got == want, f"{path.name}: {key}"


def test_openssh_pty_req_is_the_benchmark_payload() -> None:
    capture = load(FIXTURES / "openssh-shell-xterm-256color.json")
    (pty,) = [item for item in capture["requests"] if item["type"] == "pty-req"]
    payload = bytes.fromhex(pty["payload_hex"])
    request = parse_request("pty-req", payload)
    assert isinstance(request, PtyRequest)
    assert len(payload) == 299
    assert len(request.modes) == 52
    assert request.modes.applicable
    # What `stty sane` on a fresh Linux PTY says: ^C interrupts, 38400 baud.
    assert request.modes[Opcode.VINTR] == 3
    assert request.modes[Opcode.TTY_OP_ISPEED] == 38400
    assert list(request.modes)[:2] == [Opcode.TTY_OP_OSPEED, Opcode.TTY_OP_ISPEED]
