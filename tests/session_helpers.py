"""Shared builders for the session machine tests: sample requests and state setups."""

from __future__ import annotations

import contextlib

from ptycore import ProtocolError
from ptycore._session_rules import Kind, SessionState
from ptycore.modes import TerminalModes
from ptycore.requests import (
    AgentForwardRequest,
    BreakRequest,
    ChannelRequest,
    EndOfWriteRequest,
    EnvRequest,
    ExecRequest,
    ExitSignalRequest,
    ExitStatusRequest,
    KeepaliveRequest,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    UnknownRequest,
    WindowChangeRequest,
    WindowSize,
    X11Request,
    XonXoffRequest,
)
from ptycore.session import (
    ClientSession,
    OutgoingReply,
    ServerSession,
    Session,
    SessionPolicy,
)

SIZE = WindowSize(cols=80, rows=24, width_px=640, height_px=480)
PTY = PtyRequest(term="xterm-256color", size=SIZE, modes=TerminalModes([(53, 1), (128, 38400)]))

SAMPLES: dict[Kind, ChannelRequest] = {
    Kind.PTY: PTY,
    Kind.X11: X11Request(
        single_connection=False,
        auth_protocol="MIT-MAGIC-COOKIE-1",
        auth_cookie="0123456789abcdef0123456789abcdef",
        screen=0,
    ),
    Kind.ENV: EnvRequest(name="LANG", value="C.UTF-8"),
    Kind.SHELL: ShellRequest(),
    Kind.EXEC: ExecRequest(command="uname -a"),
    Kind.SUBSYSTEM: SubsystemRequest(name="sftp"),
    Kind.WINDOW_CHANGE: WindowChangeRequest(size=WindowSize(cols=132, rows=43)),
    Kind.XON_XOFF: XonXoffRequest(client_can_do=True),
    Kind.SIGNAL: SignalRequest(name="INT"),
    Kind.EXIT_STATUS: ExitStatusRequest(status=0),
    Kind.EXIT_SIGNAL: ExitSignalRequest(name="TERM", core_dumped=False),
    Kind.BREAK: BreakRequest(length_ms=1000),
    Kind.AGENT: AgentForwardRequest(),
    Kind.EOW: EndOfWriteRequest(),
    Kind.KEEPALIVE: KeepaliveRequest(),
    Kind.UNKNOWN: UnknownRequest(request_type="x-test@example.com", payload=b"\x01"),
}

PERMISSIVE = SessionPolicy(accept_env=("*",))


def reach_server(
    state: SessionState, *, pty: bool = True, awaiting: bool = False
) -> ServerSession:
    """A server session in ``state`` (a shell program, a granted PTY if ``pty``)."""
    s = ServerSession(policy=PERMISSIVE)
    if pty:
        event = s.receive_request(PTY, want_reply=True)
        s.accept(event.handle)  # type: ignore[union-attr]
    if awaiting:
        s.send_request(KeepaliveRequest(), want_reply=True)
    if state is SessionState.ERROR:
        with contextlib.suppress(ProtocolError):
            s.receive_data(b"too early")
        return s
    if state is not SessionState.READY:
        event = s.receive_request(ShellRequest(), want_reply=True)
        if state is not SessionState.STARTING:
            s.accept(event.handle)  # type: ignore[union-attr]
    if state is SessionState.EXITED:
        s.send_exit_status(0)
    if state in (SessionState.CLOSING, SessionState.CLOSED):
        s.close()
    if state is SessionState.CLOSED:
        s.receive_close()
    assert current_state(s) is state
    s.items_to_send()
    return s


def reach_client(
    state: SessionState, *, pty: bool = True, awaiting: bool = False
) -> ClientSession:
    """A client session in ``state`` (a shell sent without reply once past STARTING)."""
    c = ClientSession()
    if pty:
        c.request_pty(term="xterm", size=SIZE)
        c.receive_reply(True)
    if awaiting:
        c.send_request(KeepaliveRequest(), want_reply=True)
    if state is SessionState.ERROR:
        with contextlib.suppress(ProtocolError):
            c.receive_reply(True)  # unexpected (or, if awaiting, a second) reply
            c.receive_reply(True)
        return c
    if state is SessionState.STARTING:
        c.request_shell()
    elif state is not SessionState.READY:
        c.request_shell(want_reply=False)
    if state is SessionState.EXITED:
        c.receive_request(ExitStatusRequest(status=0), want_reply=False)
    if state in (SessionState.CLOSING, SessionState.CLOSED):
        c.close()
    if state is SessionState.CLOSED:
        c.receive_close()
    assert current_state(c) is state
    c.items_to_send()
    return c


def reply_items(session: Session) -> list[tuple[int, bool]]:
    """Drain the output and keep the replies, as (handle, success)."""
    return [
        (item.handle, item.success)
        for item in session.items_to_send()
        if isinstance(item, OutgoingReply)
    ]


def current_state(session: Session) -> SessionState:
    """The state, read through a call so that type checkers do not narrow it."""
    return session.state
