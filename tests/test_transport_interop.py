"""The server transport against real clients over loopback: OpenSSH, Paramiko, AsyncSSH.

Authentication is not part of the transport, so each client is taken as far as the
transport goes: the key exchange, then its first encrypted message
(SERVICE_REQUEST "ssh-userauth"), which the server answers with a DISCONNECT.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import asyncssh
import paramiko
import pytest

from loopback import MLKEM_KEX, accepting, mlkem_openssh, needs_mlkem_openssh
from ptycore import DisconnectReason, ProtocolError
from ptycore.transport import (
    HOST_KEY_ALGORITHMS,
    ExtInfoReceived,
    HostKey,
    KeyExchangeComplete,
    PayloadReceived,
    Role,
    Transport,
    TransportConfig,
    TransportEvent,
)

pytestmark = pytest.mark.network

TIMEOUT = 20.0
SERVICE_REQUEST = b"\x05\x00\x00\x00\x0cssh-userauth"
Action = Callable[[Transport, TransportEvent], None]


@pytest.fixture(scope="module")
def host_keys() -> list[HostKey]:
    return [
        HostKey.generate("ssh-ed25519"),
        HostKey.generate("ssh-rsa", rsa_bits=2048),
        HostKey.generate("ecdsa-sha2-nistp256"),
        HostKey.generate("ecdsa-sha2-nistp384"),
        HostKey.generate("ecdsa-sha2-nistp521"),
    ]


def goodbye_on_service_request(transport: Transport, event: TransportEvent) -> None:
    if isinstance(event, PayloadReceived) and event.payload == SERVICE_REQUEST:
        transport.disconnect(DisconnectReason.BY_APPLICATION, "transport test done")


class Served:
    """What the server thread saw."""

    def __init__(self) -> None:
        self.events: list[TransportEvent] = []
        self.error: BaseException | None = None

    def completed(self) -> list[KeyExchangeComplete]:
        return [e for e in self.events if isinstance(e, KeyExchangeComplete)]


def _serve(listener: socket.socket, transport: Transport, action: Action, served: Served) -> None:
    try:
        conn, _ = listener.accept()
    except OSError as error:
        served.error = error
        return
    _serve_connection(conn, transport, action, served)


def _serve_connection(
    conn: socket.socket, transport: Transport, action: Action, served: Served
) -> None:
    with conn:
        conn.settimeout(TIMEOUT)
        try:
            conn.sendall(transport.data_to_send())
            while not transport.closed:
                data = conn.recv(65536)
                if not data:
                    break
                for event in transport.receive_data(data):
                    served.events.append(event)
                    action(transport, event)
                conn.sendall(transport.data_to_send())
        except ProtocolError as error:
            served.error = error
            conn.sendall(transport.data_to_send())
        except OSError as error:
            served.error = error


@contextmanager
def server(
    host_keys: list[HostKey], action: Action = goodbye_on_service_request
) -> Iterator[tuple[int, Served]]:
    """One connection served by a server Transport in a thread; yields the port."""
    transport = Transport(
        Role.SERVER, TransportConfig(host_key_algorithms=HOST_KEY_ALGORITHMS), host_keys=host_keys
    )
    served = Served()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        thread = threading.Thread(target=_serve, args=(listener, transport, action, served))
        thread.start()
        try:
            yield listener.getsockname()[1], served
        finally:
            thread.join(TIMEOUT)
    assert not thread.is_alive()


# --- OpenSSH ------------------------------------------------------------------------------

OPENSSH = [
    ("curve25519-sha256", "chacha20-poly1305@openssh.com", None, "ssh-ed25519"),
    ("curve25519-sha256@libssh.org", "chacha20-poly1305@openssh.com", None, "ssh-ed25519"),
    ("curve25519-sha256", "aes256-gcm@openssh.com", None, "ssh-ed25519"),
    ("curve25519-sha256", "aes128-gcm@openssh.com", None, "rsa-sha2-512"),
    ("curve25519-sha256", "aes256-ctr", "hmac-sha2-512-etm@openssh.com", "rsa-sha2-256"),
    ("curve25519-sha256", "aes128-ctr", "hmac-sha2-256-etm@openssh.com", "ecdsa-sha2-nistp256"),
    ("curve25519-sha256", "aes256-gcm@openssh.com", None, "ecdsa-sha2-nistp384"),
    ("curve25519-sha256", "chacha20-poly1305@openssh.com", None, "ecdsa-sha2-nistp521"),
    ("curve25519-sha256@libssh.org", "aes256-ctr", "hmac-sha2-256-etm@openssh.com", "ssh-ed25519"),
    ("curve25519-sha256@libssh.org", "aes128-ctr", "hmac-sha2-512-etm@openssh.com", "ssh-ed25519"),
]


def run_ssh(
    port: int, kex: str, cipher: str, mac: str | None, host_key: str, *, client: str = "ssh"
) -> str:
    command = [
        client,
        "-vvv",
        "-F",
        "/dev/null",
        "-p",
        str(port),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        f"KexAlgorithms={kex}",
        "-o",
        f"Ciphers={cipher}",
        "-o",
        f"MACs={mac or 'hmac-sha2-256-etm@openssh.com'}",
        "-o",
        f"HostKeyAlgorithms={host_key}",
        "127.0.0.1",
        "true",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    return result.stderr


needs_ssh = pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client")


@needs_ssh
@pytest.mark.parametrize(("kex", "cipher", "mac", "host_key"), OPENSSH)
def test_openssh_client(
    host_keys: list[HostKey], kex: str, cipher: str, mac: str | None, host_key: str
) -> None:
    with server(host_keys) as (port, served):
        log = run_ssh(port, kex, cipher, mac, host_key)
    assert served.error is None, log
    assert f"kex: algorithm: {kex}" in log
    assert f"kex: host key algorithm: {host_key}" in log
    assert f"kex: client->server cipher: {cipher} MAC: {mac or '<implicit>'}" in log
    assert f"kex: server->client cipher: {cipher} MAC: {mac or '<implicit>'}" in log
    assert "SSH2_MSG_EXT_INFO received" in log
    assert "Received disconnect from 127.0.0.1" in log
    assert "transport test done" in log
    (done,) = served.completed()
    assert done.algorithms.strict_kex
    assert done.algorithms.cipher_server_to_client == cipher
    # Strict kex restarted the client's sequence numbers at its NEWKEYS.
    assert served.events[-1] == PayloadReceived(payload=SERVICE_REQUEST, sequence_number=0)


@needs_mlkem_openssh()
@pytest.mark.parametrize(
    ("cipher", "mac", "host_key"),
    [
        ("chacha20-poly1305@openssh.com", None, "ssh-ed25519"),
        ("aes128-gcm@openssh.com", None, "ecdsa-sha2-nistp256"),
        ("aes256-ctr", "hmac-sha2-512-etm@openssh.com", "rsa-sha2-512"),
    ],
)
def test_openssh_mlkem_client(
    host_keys: list[HostKey], cipher: str, mac: str | None, host_key: str
) -> None:
    """OpenSSH's own ML-KEM (9.9 and later; its first choice since 10.0) agrees with
    ptycore's on the shared secret: the client's first encrypted message arrives."""
    client = mlkem_openssh()
    assert client is not None
    with server(host_keys) as (port, served):
        log = run_ssh(port, MLKEM_KEX, cipher, mac, host_key, client=client)
    assert served.error is None, log
    assert f"kex: algorithm: {MLKEM_KEX}" in log
    assert f"kex: host key algorithm: {host_key}" in log
    assert "transport test done" in log
    (done,) = served.completed()
    assert done.algorithms.kex == MLKEM_KEX
    assert served.events[-1] == PayloadReceived(payload=SERVICE_REQUEST, sequence_number=0)


# --- Paramiko -----------------------------------------------------------------------------

PARAMIKO = [
    ("mlkem768x25519-sha256", "aes256-gcm@openssh.com", None, "ssh-ed25519"),
    ("curve25519-sha256@libssh.org", "aes128-gcm@openssh.com", None, "rsa-sha2-512"),
    (
        "curve25519-sha256@libssh.org",
        "aes256-ctr",
        "hmac-sha2-512-etm@openssh.com",
        "rsa-sha2-256",
    ),
    (
        "mlkem768x25519-sha256",
        "aes128-ctr",
        "hmac-sha2-256-etm@openssh.com",
        "ecdsa-sha2-nistp256",
    ),
]


@pytest.mark.parametrize(("kex", "cipher", "mac", "host_key"), PARAMIKO)
def test_paramiko_client_and_its_rekey(
    host_keys: list[HostKey], kex: str, cipher: str, mac: str | None, host_key: str
) -> None:
    with server(host_keys, lambda transport, event: None) as (port, served):
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        client = paramiko.Transport(sock)
        try:
            options = client.get_security_options()
            options.kex = (kex,)
            options.ciphers = (cipher,)
            options.digests = (mac or "hmac-sha2-256-etm@openssh.com",)
            options.key_types = (host_key,)
            client.start_client(timeout=TIMEOUT)
            assert client.remote_cipher == cipher  # type: ignore[attr-defined]
            assert client.host_key_type == host_key
            # A rekey started by the client.
            client.renegotiate_keys()
        finally:
            client.close()
            sock.close()
    assert served.error is None
    assert [e.initial for e in served.completed()] == [True, False]
    assert served.completed()[0].algorithms.kex == kex


# --- AsyncSSH -----------------------------------------------------------------------------

ASYNCSSH = [
    ("mlkem768x25519-sha256", "chacha20-poly1305@openssh.com", None, "ssh-ed25519"),
    ("curve25519-sha256", "aes256-gcm@openssh.com", None, "rsa-sha2-512"),
    ("curve25519-sha256@libssh.org", "aes128-gcm@openssh.com", None, "rsa-sha2-256"),
    ("curve25519-sha256", "aes256-ctr", "hmac-sha2-512-etm@openssh.com", "ecdsa-sha2-nistp256"),
    ("mlkem768x25519-sha256", "aes128-ctr", "hmac-sha2-256-etm@openssh.com", "ssh-ed25519"),
]


async def _asyncssh_connect(port: int, kex: str, cipher: str, mac: str | None, key: str) -> None:
    async with asyncssh.connect(
        "127.0.0.1",
        port,
        username="user",
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        password="unused",
        kex_algs=[kex],
        encryption_algs=[cipher],
        mac_algs=[mac or "hmac-sha2-256-etm@openssh.com"],
        server_host_key_algs=[key],
        connect_timeout=TIMEOUT,
    ):
        pass  # pragma: no cover (the server disconnects before authentication)


@pytest.mark.parametrize(("kex", "cipher", "mac", "host_key"), ASYNCSSH)
def test_asyncssh_client(
    host_keys: list[HostKey], kex: str, cipher: str, mac: str | None, host_key: str
) -> None:
    with server(host_keys) as (port, served), pytest.raises(asyncssh.DisconnectError) as caught:
        asyncio.run(asyncio.wait_for(_asyncssh_connect(port, kex, cipher, mac, host_key), TIMEOUT))
    assert caught.value.code == DisconnectReason.BY_APPLICATION
    assert caught.value.reason.startswith("transport test done")
    assert served.error is None
    (done,) = served.completed()
    assert (done.algorithms.kex, done.algorithms.cipher_client_to_server) == (kex, cipher)
    assert done.algorithms.mac_client_to_server == mac
    assert done.algorithms.host_key == host_key


# --- the client role against real servers -------------------------------------------------


def run_client(port: int, config: TransportConfig) -> tuple[list[TransportEvent], list[bytes]]:
    """Our client up to SERVICE_ACCEPT, then a DISCONNECT; returns its events and the
    host keys it was asked to trust."""
    offered: list[bytes] = []

    def trust(algorithm: str, blob: bytes) -> bool:
        offered.append(blob)
        return True

    client = Transport(Role.CLIENT, config, verify_host_key=trust)
    events: list[TransportEvent] = []
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(client.data_to_send())
        while not client.closed:
            data = sock.recv(65536)
            if not data:
                break
            for event in client.receive_data(data):
                events.append(event)
                if isinstance(event, KeyExchangeComplete) and event.initial:
                    client.send_payload(SERVICE_REQUEST)
                if isinstance(event, PayloadReceived) and event.payload[0] == 6:
                    client.disconnect(DisconnectReason.BY_APPLICATION, "client test done")
            sock.sendall(client.data_to_send())
    return events, offered


def check_client_events(
    events: list[TransportEvent], offered: list[bytes], kex: str, cipher: str
) -> None:
    done = [e for e in events if isinstance(e, KeyExchangeComplete)]
    assert len(done) == 1
    assert (done[0].algorithms.kex, done[0].algorithms.cipher_client_to_server) == (kex, cipher)
    assert done[0].algorithms.strict_kex
    assert offered == [done[0].host_key]
    # SERVICE_ACCEPT: byte 6, string "ssh-userauth".
    assert PayloadReceived(payload=b"\x06" + SERVICE_REQUEST[1:], sequence_number=1) in events


CLIENT_CASES = [
    ("mlkem768x25519-sha256", "chacha20-poly1305@openssh.com", "ssh-ed25519"),
    ("curve25519-sha256@libssh.org", "aes256-gcm@openssh.com", "rsa-sha2-512"),
    ("curve25519-sha256@libssh.org", "aes128-ctr", "rsa-sha2-256"),
    ("curve25519-sha256@libssh.org", "aes256-gcm@openssh.com", "ecdsa-sha2-nistp384"),
    ("curve25519-sha256@libssh.org", "aes128-gcm@openssh.com", "ecdsa-sha2-nistp521"),
]


class _ClosingServer(asyncssh.SSHServer):
    """Tells the test thread when AsyncSSH has finished with the connection."""

    closed = threading.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


@pytest.mark.parametrize(("kex", "cipher", "host_key"), CLIENT_CASES)
def test_client_against_asyncssh_server(kex: str, cipher: str, host_key: str) -> None:
    loop = asyncio.new_event_loop()
    keys = [
        asyncssh.generate_private_key(name)
        for name in ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
    ]
    closed = threading.Event()
    server_class = type("Server", (_ClosingServer,), {"closed": closed})
    listener = loop.run_until_complete(
        asyncssh.create_server(
            server_class, "127.0.0.1", 0, server_host_keys=keys, login_timeout=TIMEOUT
        )
    )
    port = listener.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        config = TransportConfig(
            kex_algorithms=(kex,), ciphers=(cipher,), host_key_algorithms=(host_key,)
        )
        events, offered = run_client(port, config)
        assert closed.wait(TIMEOUT)
    finally:

        async def shut_down() -> None:
            listener.close()
            await listener.wait_closed()

        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()
    check_client_events(events, offered, kex, cipher)
    ext_info = [e for e in events if isinstance(e, ExtInfoReceived)]
    assert b"rsa-sha2-256" in ext_info[0].extensions["server-sig-algs"]


@pytest.mark.parametrize(("kex", "cipher", "host_key"), CLIENT_CASES)
def test_client_against_paramiko_server(
    host_keys: list[HostKey], kex: str, cipher: str, host_key: str
) -> None:
    if cipher.startswith("chacha20"):
        cipher = "aes128-gcm@openssh.com"  # Paramiko has no ChaCha20-Poly1305
    paramiko_keys = [
        paramiko.Ed25519Key(file_obj=io.StringIO(host_keys[0].to_openssh().decode())),
        paramiko.RSAKey(file_obj=io.StringIO(host_keys[1].to_openssh().decode())),
        *(paramiko.ECDSAKey(file_obj=io.StringIO(k.to_openssh().decode())) for k in host_keys[3:]),
    ]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        result: dict[str, tuple[list[TransportEvent], list[bytes]]] = {}

        def client() -> None:
            config = TransportConfig(
                kex_algorithms=(kex,), ciphers=(cipher,), host_key_algorithms=(host_key,)
            )
            result["out"] = run_client(port, config)

        thread = threading.Thread(target=client)
        thread.start()
        conn, _ = listener.accept()
        server = paramiko.Transport(conn)
        try:
            for key in paramiko_keys:
                server.add_server_key(key)
            # With an event, start_server does not wait: its own wait can race with
            # a client as quick as ours to hang up.
            server.start_server(threading.Event(), server=paramiko.ServerInterface())
            thread.join(TIMEOUT)
        finally:
            server.close()
            conn.close()
    events, offered = result["out"]
    check_client_events(events, offered, kex, cipher)


# --- ssh-audit ----------------------------------------------------------------------------


def serving_many(host_keys: list[HostKey]) -> AbstractContextManager[int]:
    """Serve every connection with the default configuration until the block ends."""

    def serve(conn: socket.socket) -> None:
        transport = Transport(Role.SERVER, host_keys=host_keys)
        _serve_connection(conn, transport, goodbye_on_service_request, Served())

    return accepting(serve)


@pytest.mark.skipif(shutil.which("ssh-audit") is None, reason="ssh-audit is not installed")
def test_ssh_audit_finds_no_failure(host_keys: list[HostKey]) -> None:
    # RSA at the default 3072 bits: ssh-audit warns about 2048.
    with serving_many([host_keys[0], HostKey.generate("ssh-rsa")]) as port:
        result = subprocess.run(
            ["ssh-audit", "--skip-rate-test", "-j", "-p", str(port), "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    report = json.loads(result.stdout)
    assert report["cves"] == []
    assert report["recommendations"] == {}
    notes = {
        entry["algorithm"]: entry.get("notes", {})
        for section in ("kex", "key", "enc", "mac")
        for entry in report[section]
    }
    assert "mlkem768x25519-sha256" in notes
    assert not [name for name, note in notes.items() if note.get("fail")]
    # Warnings only where current clients need the algorithm (see docs/transport.rst).
    warned = {name for name, note in notes.items() if note.get("warn")}
    assert warned <= {"curve25519-sha256", "curve25519-sha256@libssh.org"}
    assert "properly supports the strict key exchange" in " ".join(report["additional_notes"])
