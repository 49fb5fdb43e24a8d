"""Issue 5's loopback acceptance: ServerConnection in a small blocking loop, against
the real OpenSSH client, Paramiko and AsyncSSH.

* Every key exchange and cipher (with each encrypt-then-MAC for the CTR ciphers)
  that a client shares with ptycore's defaults: a login by key with a PTY and a
  shell, and a login by password running a command.
* 64 MiB each way with matching SHA-256 digests: the client sends random bytes,
  the server application hashes them and sends back 64 MiB of seeded data, while
  OpenSSH rekeys every MiB (``RekeyLimit=1M``). The default suite runs it once
  per client (AES-128-GCM); with ``PTYCORE_FULL_TRANSFERS=1`` every cipher each
  client shares with ptycore runs it.

The server logs each connection's events and any exception; every test asserts
the server saw no error.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest

from loopback import (
    EchoApp,
    Server,
    authorized_blob,
    paramiko_connect,
    paramiko_echo_shell,
    running_server,
    ssh_options,
)
from ptycore.auth import AuthenticationSucceeded, SimpleAuthenticator
from ptycore.connection import ChannelDataReceived, ChannelEOFReceived, SessionEvent
from ptycore.server import ServerConnection
from ptycore.session import RequestReceived
from ptycore.transport import CIPHERS, MACS, HostKey, KeyExchangeComplete

pytestmark = pytest.mark.network

TIMEOUT = 60.0
"""Deadline for one client run; a 64 MiB transfer on a loaded 2-core machine included."""
PASSWORD = "open sesame"
MIB = 1 << 20
TRANSFER = 64 * MIB
FULL = os.environ.get("PTYCORE_FULL_TRANSFERS") == "1"

AEAD = tuple(cipher for cipher in CIPHERS if not cipher.endswith("-ctr"))
CIPHER_MACS = [
    *((cipher, MACS[1]) for cipher in AEAD),  # the MAC offered is not used
    *((cipher, mac) for cipher in CIPHERS if cipher not in AEAD for mac in MACS),
]
TRANSFER_CIPHERS = CIPHER_MACS if FULL else [("aes128-gcm@openssh.com", MACS[1])]
HOST_KEY_ALGORITHMS = ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")


@dataclass(frozen=True)
class Case:
    """One algorithm combination a client is limited to."""

    kex: str
    cipher: str
    mac: str
    host_key: str
    user_key: str

    @property
    def negotiated_mac(self) -> str | None:
        return None if self.cipher in AEAD else self.mac

    def __str__(self) -> str:
        mac = f"+{self.mac.removeprefix('hmac-').removesuffix('@openssh.com')}"
        return f"{self.kex}/{self.cipher}{'' if self.negotiated_mac is None else mac}"


def cases(kexes: tuple[str, ...], cipher_macs: list[tuple[str, str]]) -> list[Case]:
    """Every key exchange with every cipher (and MAC); the host key algorithm and
    the user's key type turn with them, so each is met too."""
    return [
        Case(
            kex=kex,
            cipher=cipher,
            mac=mac,
            host_key=HOST_KEY_ALGORITHMS[n % 3],
            user_key=("ed25519", "rsa")[n % 2],
        )
        for n, (kex, (cipher, mac)) in enumerate(
            (kex, cipher_mac) for kex in kexes for cipher_mac in cipher_macs
        )
    ]


def password_cases(kexes: tuple[str, ...], cipher_macs: list[tuple[str, str]]) -> list[Case]:
    """Each cipher (and MAC) once, the key exchanges taking turns."""
    return [
        Case(kex=kexes[n % len(kexes)], cipher=c, mac=m, host_key="ssh-ed25519", user_key="")
        for n, (c, m) in enumerate(cipher_macs)
    ]


def source_data(size: int) -> bytes:
    """The bytes ``hash N`` sends: seeded, so the client knows what to expect."""
    return random.Random(size).randbytes(size)


class HashApp(EchoApp):
    """EchoApp plus ``hash N``: N seeded bytes to stdout while it hashes stdin; at
    EOF the SHA-256 of stdin (hex) to stderr, then exit status 0 once all is sent."""

    def __init__(self, conn: ServerConnection) -> None:
        super().__init__(conn)
        self.hashes: dict[int, Any] = {}
        self.digests: dict[int, bytes] = {}

    def handle(self, events: list[object]) -> None:
        for event in events:
            # Hashed data is not logged: the log would hold all 64 MiB.
            if isinstance(event, ChannelDataReceived) and event.channel_id in self.hashes:
                self.hashes[event.channel_id].update(event.data)
            elif isinstance(event, ChannelEOFReceived) and event.channel_id in self.hashes:
                digest = self.hashes.pop(event.channel_id).hexdigest()
                self.digests[event.channel_id] = digest.encode() + b"\n"
                self._drain(event.channel_id)
            else:
                super().handle([event])

    def _drain(self, channel_id: int) -> None:
        """Stdout first; then the digest, when the window has room for it; then exit."""
        super()._drain(channel_id)
        channel = self.channels.get(channel_id)
        digest = self.digests.get(channel_id, b"")
        if channel and digest and not channel.pending and self.conn.writable(channel_id) >= 65:
            self.conn.send_stderr(channel_id, self.digests.pop(channel_id))
            self._finish(channel_id, 0)

    def _exec(self, channel_id: int, channel: Any, command: str) -> None:
        word, _, size = command.partition(" ")
        if word != "hash":
            super()._exec(channel_id, channel, command)
            return
        self.hashes[channel_id] = hashlib.sha256()
        self._send(channel_id, source_data(int(size)))


def check_login(server: Server, since: int, case: Case, *requests: str) -> None:
    """One connection since log entry ``since``, with the algorithms of ``case`` and
    the session ``requests`` (pty-req, shell, exec) in this order."""
    server.check()
    events = server.log[since:]
    (done,) = [e for e in events if isinstance(e, KeyExchangeComplete)]
    algorithms = done.algorithms
    assert (algorithms.kex, algorithms.host_key) == (case.kex, case.host_key)
    assert (algorithms.cipher_client_to_server, algorithms.mac_client_to_server) == (
        case.cipher,
        case.negotiated_mac,
    )
    assert algorithms.cipher_server_to_client == case.cipher
    assert algorithms.strict_kex
    (login,) = [e for e in events if isinstance(e, AuthenticationSucceeded)]
    assert login.method == ("publickey" if case.user_key else "password")
    received = [
        e.event.request.request_type
        for e in events
        if isinstance(e, SessionEvent) and isinstance(e.event, RequestReceived)
    ]
    assert [name for name in received if name in ("pty-req", "shell", "exec")] == [*requests]


@dataclass(frozen=True)
class UserKeys:
    ed25519: Path
    rsa: Path

    def get(self, kind: str) -> Path:
        return self.ed25519 if kind == "ed25519" else self.rsa


@pytest.fixture(scope="module")
def user_keys(tmp_path_factory: pytest.TempPathFactory) -> UserKeys:
    directory = tmp_path_factory.mktemp("acceptance-keys")
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "2048"])):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f", str(directory / kind)],
            check=True,
            timeout=TIMEOUT,
        )
    return UserKeys(ed25519=directory / "ed25519", rsa=directory / "rsa")


@pytest.fixture(scope="module")
def server(user_keys: UserKeys) -> Iterator[Server]:
    """ServerConnection with the default configuration, an Ed25519 and an RSA host
    key, and ``hash N`` besides EchoApp's commands."""
    blobs = [
        authorized_blob(Path(f"{path}.pub").read_text())
        for path in (user_keys.ed25519, user_keys.rsa)
    ]
    authenticator = SimpleAuthenticator(
        passwords={"alice": PASSWORD}, authorized_keys={"alice": blobs}
    )
    rsa = HostKey.generate("ssh-rsa", rsa_bits=2048)
    with running_server(authenticator, extra_host_keys=(rsa,), app=HashApp) as served:
        yield served
    served.check()


# --- OpenSSH --------------------------------------------------------------------------------


def ssh_command(server: Server, *options: str, key: Path | None) -> list[str]:
    identity = ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-i", str(key)] if key else []
    return [
        "ssh",
        *ssh_options(server.port),
        *identity,
        *options,
        "alice@127.0.0.1",
    ]


def check_transfer(stdout: bytes, stderr: bytes, sent_digest: str, size: int) -> None:
    assert len(stdout) == size
    assert hashlib.sha256(stdout).digest() == hashlib.sha256(source_data(size)).digest()
    assert stderr.decode().split()[-1] == sent_digest


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
@pytest.mark.parametrize(("cipher", "mac"), TRANSFER_CIPHERS)
def test_openssh_64_mib_each_way_with_rekeys(
    server: Server, user_keys: UserKeys, cipher: str, mac: str
) -> None:
    data = os.urandom(TRANSFER)
    before = len(server.key_exchanges())
    options = ("-T", "-c", cipher, "-m", mac, "-o", "RekeyLimit=1M")
    result = subprocess.run(
        [*ssh_command(server, *options, key=user_keys.ed25519), f"hash {TRANSFER}"],
        input=data,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    check_transfer(result.stdout, result.stderr, hashlib.sha256(data).hexdigest(), TRANSFER)
    exchanges = server.key_exchanges()[before:]
    # One each way per MiB: OpenSSH counts both directions against the limit.
    assert sum(not e.initial for e in exchanges) >= 64
    assert {e.algorithms.cipher_client_to_server for e in exchanges} == {cipher}
    assert {e.algorithms.mac_client_to_server for e in exchanges} == {
        None if cipher in AEAD else mac
    }
    server.check()


OPENSSH_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")  # 9.2: no ML-KEM yet


def openssh_options(case: Case) -> tuple[str, ...]:
    return (
        "-o",
        f"KexAlgorithms={case.kex}",
        "-o",
        f"Ciphers={case.cipher}",
        "-o",
        f"MACs={case.mac}",
        "-o",
        f"HostKeyAlgorithms={case.host_key}",
    )


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
@pytest.mark.parametrize("case", cases(OPENSSH_KEX, CIPHER_MACS), ids=str)
def test_openssh_key_pty_shell(server: Server, user_keys: UserKeys, case: Case) -> None:
    since = len(server.log)
    result = subprocess.run(
        ssh_command(server, "-tt", *openssh_options(case), key=user_keys.get(case.user_key)),
        input=b"hello\nq",
        capture_output=True,
        timeout=TIMEOUT,
        env=dict(os.environ, TERM="xterm-256color"),
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert b"ptycore echo shell" in result.stdout
    assert b"hello" in result.stdout
    check_login(server, since, case, "pty-req", "shell")


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
@pytest.mark.parametrize("case", password_cases(OPENSSH_KEX, CIPHER_MACS), ids=str)
def test_openssh_password(server: Server, tmp_path: Path, case: Case) -> None:
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    askpass.chmod(0o700)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    since = len(server.log)
    options = ("-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no")
    result = subprocess.run(
        [*ssh_command(server, *options, *openssh_options(case), key=None), "echo by password"],
        capture_output=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"by password\n"
    check_login(server, since, case, "exec")


# --- Paramiko -------------------------------------------------------------------------------

PARAMIKO_KEX = ("mlkem768x25519-sha256", "curve25519-sha256@libssh.org")
PARAMIKO_CIPHERS = [(c, m) for c, m in CIPHER_MACS if not c.startswith("chacha20")]


def paramiko_client(server: Server, case: Case, **credentials: Any) -> paramiko.SSHClient:
    """A logged-in Paramiko client that can only pick the algorithms of ``case``."""
    transport: Any = paramiko.Transport  # its algorithm lists are not in the stubs
    return paramiko_connect(
        server.port,
        timeout=TIMEOUT,
        disabled_algorithms={
            "kex": [name for name in transport._preferred_kex if name != case.kex],
            "ciphers": [name for name in transport._preferred_ciphers if name != case.cipher],
            "macs": [name for name in transport._preferred_macs if name != case.mac],
            "keys": [name for name in transport._preferred_keys if name != case.host_key],
        },
        **credentials,
    )


def paramiko_hash(client: paramiko.SSHClient, data: bytes) -> tuple[bytes, bytes]:
    """Run ``hash`` over Paramiko: send ``data`` from a thread, read stdout; (out, err)."""
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session(timeout=TIMEOUT)
    channel.settimeout(TIMEOUT)
    channel.exec_command(f"hash {len(data)}")

    def send() -> None:
        # In small pieces: Paramiko's sendall copies what is left after each packet.
        for start in range(0, len(data), 1 << 15):
            channel.sendall(data[start : start + (1 << 15)])
        channel.shutdown_write()

    sender = threading.Thread(target=send)
    sender.start()
    received = bytearray()
    while chunk := channel.recv(1 << 20):
        received += chunk
    sender.join(TIMEOUT)
    stderr = channel.makefile_stderr("rb").read()
    assert channel.recv_exit_status() == 0
    return bytes(received), stderr


@pytest.mark.parametrize(("cipher", "mac"), [c for c in TRANSFER_CIPHERS if c in PARAMIKO_CIPHERS])
def test_paramiko_64_mib_each_way(
    server: Server, user_keys: UserKeys, cipher: str, mac: str
) -> None:
    data = os.urandom(TRANSFER)
    case = Case(kex=PARAMIKO_KEX[0], cipher=cipher, mac=mac, host_key="ssh-ed25519", user_key="")
    client = paramiko_client(server, case, key_filename=str(user_keys.ed25519))
    try:
        stdout, stderr = paramiko_hash(client, data)
    finally:
        client.close()
    check_transfer(stdout, stderr, hashlib.sha256(data).hexdigest(), TRANSFER)
    server.check()


@pytest.mark.parametrize("case", cases(PARAMIKO_KEX, PARAMIKO_CIPHERS), ids=str)
def test_paramiko_key_pty_shell(server: Server, user_keys: UserKeys, case: Case) -> None:
    since = len(server.log)
    client = paramiko_client(server, case, key_filename=str(user_keys.get(case.user_key)))
    try:
        paramiko_echo_shell(client)
    finally:
        client.close()
    check_login(server, since, case, "pty-req", "shell")


@pytest.mark.parametrize("case", password_cases(PARAMIKO_KEX, PARAMIKO_CIPHERS), ids=str)
def test_paramiko_password(server: Server, case: Case) -> None:
    since = len(server.log)
    client = paramiko_client(server, case, password=PASSWORD)
    try:
        _, stdout, _ = client.exec_command("echo by password", timeout=TIMEOUT)
        assert stdout.read() == b"by password\n"
        assert stdout.channel.recv_exit_status() == 0
    finally:
        client.close()
    check_login(server, since, case, "exec")


# --- AsyncSSH -------------------------------------------------------------------------------


async def asyncssh_hash(conn: asyncssh.SSHClientConnection, data: bytes) -> tuple[bytes, bytes]:
    async with conn.create_process(f"hash {len(data)}", encoding=None) as process:

        async def send() -> None:
            process.stdin.write(data)
            await process.stdin.drain()
            process.stdin.write_eof()

        sender = asyncio.create_task(send())
        stdout = await process.stdout.read()
        stderr = await process.stderr.read()
        await sender
        done = await process.wait()
    assert done.exit_status == 0
    return stdout, stderr


ASYNCSSH_KEX = ("mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org")


def asyncssh_connect(server: Server, case: Case, **options: Any) -> Any:
    """``asyncssh.connect`` limited to the algorithms of ``case``."""
    return asyncssh.connect(
        "127.0.0.1",
        server.port,
        username="alice",
        known_hosts=None,
        agent_path=None,
        kex_algs=[case.kex],
        encryption_algs=[case.cipher],
        mac_algs=[case.mac],
        server_host_key_algs=[case.host_key],
        connect_timeout=TIMEOUT,
        **options,
    )


@pytest.mark.parametrize("case", cases(ASYNCSSH_KEX, CIPHER_MACS), ids=str)
def test_asyncssh_key_pty_shell(server: Server, user_keys: UserKeys, case: Case) -> None:
    since = len(server.log)

    async def run() -> tuple[str, object]:
        key = str(user_keys.get(case.user_key))
        async with asyncssh_connect(server, case, client_keys=[key]) as conn:
            process = await conn.create_process(term_type="xterm", term_size=(100, 30))
            greeting = await process.stdout.readuntil("ptycore echo shell")
            process.stdin.write("abc q")
            rest = await process.stdout.read()
            done = await process.wait()
            return greeting + rest, done.exit_status

    output, status = asyncio.run(asyncio.wait_for(run(), TIMEOUT))
    assert "abc" in output
    assert "bye" in output
    assert status == 3
    check_login(server, since, case, "pty-req", "shell")


@pytest.mark.parametrize("case", password_cases(ASYNCSSH_KEX, CIPHER_MACS), ids=str)
def test_asyncssh_password(server: Server, case: Case) -> None:
    since = len(server.log)

    async def run() -> Any:
        async with asyncssh_connect(
            server, case, password=PASSWORD, client_keys=None, preferred_auth="password"
        ) as conn:
            return await conn.run("echo by password", timeout=TIMEOUT)

    result = asyncio.run(asyncio.wait_for(run(), TIMEOUT))
    assert (result.stdout, result.exit_status) == ("by password\n", 0)
    check_login(server, since, case, "exec")


@pytest.mark.parametrize(("cipher", "mac"), TRANSFER_CIPHERS)
def test_asyncssh_64_mib_each_way_with_its_own_rekeys(
    server: Server, user_keys: UserKeys, cipher: str, mac: str
) -> None:
    """AsyncSSH's ``rekey_bytes``: the client starts a key exchange every 8 MiB."""
    data = os.urandom(TRANSFER)
    before = len(server.key_exchanges())

    async def run() -> tuple[bytes, bytes]:
        case = Case(
            kex=ASYNCSSH_KEX[0], cipher=cipher, mac=mac, host_key="ssh-ed25519", user_key=""
        )
        async with asyncssh_connect(
            server, case, client_keys=[str(user_keys.ed25519)], rekey_bytes=8 * MIB
        ) as conn:
            return await asyncssh_hash(conn, data)

    stdout, stderr = asyncio.run(asyncio.wait_for(run(), TIMEOUT))
    check_transfer(stdout, stderr, hashlib.sha256(data).hexdigest(), TRANSFER)
    assert sum(not e.initial for e in server.key_exchanges()[before:]) >= 8
    server.check()
