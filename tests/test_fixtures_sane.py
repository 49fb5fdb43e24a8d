"""The captured client fixtures say what they claim, decoded here with ``struct`` alone.

These checks are independent of ptycore on purpose: the codec and session tests trust
tests/fixtures/clients/*.json, so the fixtures must not rot silently (a hand edit, a
re-capture that went wrong, a scenario that did not do what its name says).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "clients"
PATHS = sorted(FIXTURES.glob("*.json"))

PROGRAMS = ("shell", "exec", "subsystem")
BEFORE_START = ("pty-req", "env", "auth-agent-req@openssh.com", "x11-req")
AGENT = "auth-agent-req@openssh.com"

# RFC 4254 section 8 and RFC 8160: the opcodes a fixture's ``expect.modes`` may name.
OPCODES = {
    "VINTR": 1, "VQUIT": 2, "VERASE": 3, "VKILL": 4, "VEOF": 5, "VSTART": 8, "VSTOP": 9,
    "VSUSP": 10, "IXON": 38, "IXOFF": 40, "IUTF8": 42, "ISIG": 50, "ICANON": 51, "ECHO": 53,
    "OPOST": 70, "CS8": 91, "TTY_OP_ISPEED": 128, "TTY_OP_OSPEED": 129,
}  # fmt: skip

EXPECT_KEYS = {
    "pty", "term", "cols", "rows", "width_px", "height_px", "modes", "program", "command",
    "subsystem", "env", "window_changes", "break_ms", "signals", "agent", "x11",
    "global_requests",
}  # fmt: skip

CLIENT_PREFIX = {"openssh": "SSH-2.0-OpenSSH_", "paramiko": "SSH-2.0-paramiko_",
                 "asyncssh": "SSH-2.0-AsyncSSH_", "putty": "SSH-2.0-PuTTY_",
                 "dropbear": "SSH-2.0-dropbear_"}  # fmt: skip

WANTS_REPLIES = {"dropbear": False}
"""Whether a client sets want_reply on pty-req and its program request. Dropbear's
dbclient does not (cli-chansession.c sends them with want_reply 0); the others do."""


def wants_replies(path: Path) -> bool:
    return WANTS_REPLIES.get(path.stem.split("-")[0], True)


class Cursor:
    """RFC 4251 section 5 reader over one payload; every read is bounds-checked."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, count: int) -> bytes:
        end = self.offset + count
        assert end <= len(self.data), f"short payload at offset {self.offset}"
        chunk, self.offset = self.data[self.offset : end], end
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def text(self) -> str:
        return self.string().decode("utf-8")

    def done(self) -> None:
        assert self.offset == len(self.data), f"{len(self.data) - self.offset} bytes left over"


def decode_modes(data: bytes) -> list[tuple[int, int]]:
    """Opcode/argument pairs up to TTY_OP_END, which must be the last byte.

    An empty string (no TTY_OP_END at all) is what Paramiko sends.
    """
    cursor, pairs = Cursor(data), list[tuple[int, int]]()
    if not data:
        return pairs
    while (opcode := cursor.take(1)[0]) != 0:
        assert 1 <= opcode < 160, f"opcode {opcode} outside 1-159"
        pairs.append((opcode, cursor.uint32()))
    cursor.done()
    return pairs


def decode_pty(c: Cursor) -> dict[str, Any]:
    # RFC 4254 6.2: string TERM, uint32 cols, rows, width px, height px, string modes.
    term, cols, rows, width, height = c.text(), c.uint32(), c.uint32(), c.uint32(), c.uint32()
    return {"term": term, "cols": cols, "rows": rows, "width_px": width, "height_px": height,
            "modes": decode_modes(c.string())}  # fmt: skip


def decode_size(c: Cursor) -> dict[str, Any]:
    # RFC 4254 6.7: uint32 cols, rows, width px, height px.
    return {"size": [c.uint32(), c.uint32(), c.uint32(), c.uint32()]}


def decode_x11(c: Cursor) -> dict[str, Any]:
    # RFC 4254 6.3.1: boolean single connection, string auth protocol,
    # string auth cookie (hex), uint32 screen number.
    single = c.take(1)[0]
    assert single in {0, 1}
    return {"single_connection": bool(single), "auth_protocol": c.text(),
            "auth_cookie": c.text(), "screen": c.uint32()}  # fmt: skip


DECODERS: dict[str, Callable[[Cursor], dict[str, Any]]] = {
    "pty-req": decode_pty,
    "x11-req": decode_x11,
    "env": lambda c: {"name": c.text(), "value": c.text()},  # RFC 4254 6.4
    "shell": lambda c: {},  # RFC 4254 6.5
    "exec": lambda c: {"command": c.text()},
    "subsystem": lambda c: {"name": c.text()},
    "window-change": decode_size,
    "signal": lambda c: {"name": c.text()},  # RFC 4254 6.9
    "break": lambda c: {"length_ms": c.uint32()},  # RFC 4335 3
    AGENT: lambda c: {},  # OpenSSH PROTOCOL.agent
    "simple@putty.projects.tartarus.org": lambda c: {},  # PuTTY's "simple" mode hint
}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def decoded(document: dict[str, Any]) -> list[tuple[str, bool, dict[str, Any]]]:
    """Every request of a fixture as (type, want_reply, decoded fields)."""
    result = []
    for request in document["requests"]:
        cursor = Cursor(bytes.fromhex(request["payload_hex"]))
        fields = DECODERS[request["type"]](cursor)
        cursor.done()
        result.append((request["type"], request["want_reply"], fields))
    return result


def of_type(document: dict[str, Any], kind: str) -> list[tuple[bool, dict[str, Any]]]:
    return [(want, fields) for t, want, fields in decoded(document) if t == kind]


fixtures = pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])


def test_every_client_and_scenario_is_there() -> None:
    names = {p.stem for p in PATHS}
    for name in ("openssh-shell-xterm-256color", "openssh-no-pty", "openssh-exec",
                 "openssh-exec-tt", "openssh-subsystem-sftp", "openssh-sendenv", "openssh-break",
                 "openssh-resize", "openssh-agent", "openssh-setenv", "openssh-x11",
                 "openssh-keepalive", "putty-shell", "putty-exec", "dropbear-shell",
                 "dropbear-exec", "paramiko-shell-resize", "paramiko-exec-env",
                 "asyncssh-shell"):  # fmt: skip
        assert name in names
    readme = (FIXTURES / "README.md").read_text()
    assert [name for name in sorted(names) if f"`{name}.json`" not in readme] == []


@fixtures
def test_structure(path: Path) -> None:
    document = load(path)
    assert set(document) == {"client", "how", "scenario", "expect", "requests"}
    family = path.stem.split("-")[0]
    assert document["client"].startswith(CLIENT_PREFIX[family])
    assert re.fullmatch(r"SSH-2\.0-[\x21-\x7e]+( [\x20-\x7e]*)?", document["client"])
    assert document["how"].strip()
    assert document["scenario"].strip()
    assert set(document["expect"]) <= EXPECT_KEYS
    assert document["requests"]
    for request in document["requests"]:
        assert set(request) == {"type", "want_reply", "payload_hex"}
        assert re.fullmatch(r"[\x21-\x7e]+", request["type"])
        assert isinstance(request["want_reply"], bool)
        assert re.fullmatch(r"([0-9a-f]{2})*", request["payload_hex"])
        assert request["type"] in DECODERS, f"no decoder for {request['type']}"


@fixtures
def test_payloads_decode_exactly(path: Path) -> None:
    # Every payload decodes with no byte left over (Cursor.done in decoded()).
    assert len(decoded(load(path))) == len(load(path)["requests"])


@fixtures
def test_one_program_after_the_setup_requests(path: Path) -> None:
    document = load(path)
    types = [r["type"] for r in document["requests"]]
    starts = [i for i, t in enumerate(types) if t in PROGRAMS]
    assert len(starts) == 1
    start = starts[0]
    assert types[start] == document["expect"]["program"]
    assert document["requests"][start]["want_reply"] is wants_replies(path)
    assert all(i < start for i, t in enumerate(types) if t in BEFORE_START)


@fixtures
def test_pty(path: Path) -> None:
    document, expect = load(path), load(path)["expect"]
    ptys = of_type(document, "pty-req")
    if not expect["pty"]:
        assert ptys == []
        return
    assert len(ptys) == 1
    want_reply, pty = ptys[0]
    assert want_reply is wants_replies(path)
    for key in ("term", "cols", "rows", "width_px", "height_px"):
        if key in expect:
            assert pty[key] == expect[key], key
    modes = dict(pty["modes"])
    for name, value in expect.get("modes", {}).items():
        assert modes[OPCODES[name]] == value, name


OPENSSH = [p for p in PATHS if p.stem.startswith("openssh-")]


@pytest.mark.parametrize("path", OPENSSH, ids=[p.stem for p in OPENSSH])
def test_openssh_specifics(path: Path) -> None:
    document = load(path)
    requests = iter(document["requests"])
    first = next(requests)
    # ssh.c ssh_session2_setup: x11-req, then agent forwarding, then the pty.
    if "x11" in document["expect"]:
        assert (first["type"], first["want_reply"]) == ("x11-req", True)
        first = next(requests)
    if document["expect"].get("agent"):
        assert (first["type"], first["want_reply"]) == (AGENT, False)
        first = next(requests)
    if document["expect"]["pty"]:
        # clientloop.c client_session2_setup: pty-req first, with want_reply set, and
        # ttymodes.c tty_make_modes: OSPEED, ISPEED, then every character and flag.
        assert (first["type"], first["want_reply"]) == ("pty-req", True)
        ((_, pty),) = of_type(document, "pty-req")
        opcodes = [opcode for opcode, _ in pty["modes"]]
        assert opcodes[:2] == [129, 128]
        assert len(opcodes) == len(set(opcodes)) == 52
    for kind in ("env", "window-change", "break"):
        assert all(want is False for want, _ in of_type(document, kind))


def test_the_benchmark_payload_is_299_bytes() -> None:
    request = load(FIXTURES / "openssh-shell-xterm-256color.json")["requests"][0]
    assert request["type"] == "pty-req"
    assert len(bytes.fromhex(request["payload_hex"])) == 299


def test_stty_settings_reached_the_modes() -> None:
    # tmux panes start with iutf8 already on, so `stty iutf8` changes nothing there.
    path = FIXTURES / "openssh-shell-stty.json"
    plain = dict(of_type(load(FIXTURES / "openssh-shell-xterm-256color.json"), "pty-req")[0][1]
                 ["modes"])  # fmt: skip
    changed = dict(of_type(load(path), "pty-req")[0][1]["modes"])
    differ = {name for name, opcode in OPCODES.items() if plain[opcode] != changed[opcode]}
    assert differ == set(load(path)["expect"]["modes"]) - {"IUTF8"}


@fixtures
def test_program_arguments(path: Path) -> None:
    document, expect = load(path), load(path)["expect"]
    if "command" in expect:
        want = wants_replies(path)
        assert of_type(document, "exec") == [(want, {"command": expect["command"]})]
    if "subsystem" in expect:
        assert of_type(document, "subsystem") == [(True, {"name": expect["subsystem"]})]


@fixtures
def test_env(path: Path) -> None:
    document, expect = load(path), load(path)["expect"]
    sent = [(fields["name"], fields["value"]) for _, fields in of_type(document, "env")]
    assert sent == list(expect.get("env", {}).items())


@fixtures
def test_requests_during_the_session(path: Path) -> None:
    document, expect = load(path), load(path)["expect"]
    # An expected size of two numbers leaves the pixel sizes (tmux's own) unchecked.
    expected = expect.get("window_changes", [])
    sizes = [fields["size"] for _, fields in of_type(document, "window-change")]
    assert len(sizes) == len(expected)
    for size, wanted in zip(sizes, expected, strict=True):
        assert size[: len(wanted)] == wanted
    breaks = [fields["length_ms"] for _, fields in of_type(document, "break")]
    assert breaks == ([expect["break_ms"]] if "break_ms" in expect else [])
    signals = [fields["name"] for _, fields in of_type(document, "signal")]
    assert signals == expect.get("signals", [])
    assert len(of_type(document, AGENT)) == (1 if expect.get("agent") else 0)


@fixtures
def test_x11(path: Path) -> None:
    document, expect = load(path), load(path)["expect"]
    requests = of_type(document, "x11-req")
    if "x11" not in expect:
        assert requests == []
        return
    ((want_reply, x11),) = requests
    assert want_reply is True
    assert re.fullmatch(r"[0-9a-f]{32}", x11.pop("auth_cookie"))
    assert x11 == expect["x11"]


@fixtures
def test_keepalive_is_global(path: Path) -> None:
    # clientloop.c server_alive_check: OpenSSH's client sends keepalive@openssh.com as a
    # GLOBAL request; it never shows up among the channel requests.
    document = load(path)
    assert all(r["type"] != "keepalive@openssh.com" for r in document["requests"])
    if "global_requests" in document["expect"]:
        assert document["expect"]["global_requests"].count("keepalive@openssh.com") >= 2
