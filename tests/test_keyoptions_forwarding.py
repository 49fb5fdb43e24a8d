"""Agent and X11 forwarding under authorized_keys options, end to end: Paramiko
against the core's blocking test server (tests/loopback.py), whose application
accepts every request the session machine asks it about. ``restrict``,
``no-agent-forwarding`` and ``no-X11-forwarding`` refuse the requests before the
application sees them, as sshd's ``session.c`` (``session_auth_agent_req``,
``session_x11_req``) does; a key without them leaves the decision to the application."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import paramiko
import paramiko.agent
import pytest

from loopback import TIMEOUT, Server, authorized_blob, paramiko_connect, running_server
from ptycore.auth import AuthResult, SimpleAuthenticator
from ptycore.connection import SessionEvent
from ptycore.keyoptions import parse_key_options
from ptycore.requests import AgentForwardRequest, X11Request
from ptycore.session import RequestReceived, RequestRefused

pytestmark = pytest.mark.network


class _WithOptions(SimpleAuthenticator):
    """alice's one key, with the options field of the current test."""

    def __init__(self, blob: bytes) -> None:
        super().__init__(authorized_keys={"alice": [blob]})
        self.options = ""

    def check_public_key(self, username: str, algorithm: str, public_blob: bytes) -> AuthResult:
        if super().check_public_key(username, algorithm, public_blob) is not True:
            return False
        return parse_key_options(self.options).restrictions


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("forwarding") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        timeout=TIMEOUT,
    )
    return path


@pytest.fixture(scope="module")
def served(key: Path) -> Iterator[tuple[Server, _WithOptions]]:
    authenticator = _WithOptions(authorized_blob(key.with_suffix(".pub").read_text()))
    with running_server(authenticator) as server:
        yield server, authenticator


def _outcomes(server: Server) -> dict[str, str]:
    """What the session machine did with each forwarding request, by request type."""
    outcomes: dict[str, str] = {}
    for event in list(server.log):
        if isinstance(event, SessionEvent) and isinstance(
            event.event, RequestReceived | RequestRefused
        ):
            request = event.event.request
            if isinstance(request, AgentForwardRequest | X11Request):
                kind = "received" if isinstance(event.event, RequestReceived) else "refused"
                outcomes[request.request_type] = kind
    return outcomes


@pytest.mark.parametrize(
    ("options", "agent", "x11"),
    [
        ("", True, True),
        ("restrict", False, False),
        ("no-agent-forwarding", False, True),
        ("no-X11-forwarding", True, False),
        ("restrict,agent-forwarding,X11-forwarding", True, True),
    ],
)
def test_paramiko_forwarding_requests_follow_the_key_options(
    served: tuple[Server, _WithOptions], key: Path, options: str, agent: bool, x11: bool
) -> None:
    server, authenticator = served
    authenticator.options = options
    del server.log[:]
    client = paramiko_connect(server.port, key_filename=str(key))
    try:
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=TIMEOUT)
        channel.settimeout(TIMEOUT)
        # auth-agent-req@openssh.com without want_reply (as Paramiko and OpenSSH send
        # it); the x11-req after it wants a reply, which comes after the agent's fate.
        paramiko.agent.AgentRequestHandler(channel)
        if x11:
            channel.request_x11(auth_cookie=b"00" * 16)
            channel.exec_command("echo forwarded")
            assert channel.makefile("rb").read() == b"forwarded\n"
            assert channel.recv_exit_status() == 0
        else:
            with pytest.raises(paramiko.SSHException):  # Paramiko closes on the FAILURE
                channel.request_x11(auth_cookie=b"00" * 16)
    finally:
        client.close()
    server.check()
    expected = {
        "auth-agent-req@openssh.com": "received" if agent else "refused",
        "x11-req": "received" if x11 else "refused",
    }
    assert _outcomes(server) == expected
