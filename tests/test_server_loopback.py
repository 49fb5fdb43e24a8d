"""ServerConnection over loopback sockets against real clients: OpenSSH, Paramiko, AsyncSSH.

Keys are generated at test time; every client runs with a timeout; the server
records any exception, and each test asserts there was none.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopback import (
    TIMEOUT,
    Server,
    authorized_blob,
    paramiko_connect,
    paramiko_echo_shell,
    running_server,
    ssh_options,
)
from ptycore.auth import AuthConfig, SimpleAuthenticator
from ptycore.connection import GlobalReplyReceived, GlobalRequestReceived
from ptycore.server import ServerConfig
from ptycore.transport import HostKey, KeyExchangeComplete, TransportConfig

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("keys")
    paths = {}
    for kind, extra in (("ed25519", []), ("rsa", ["-b", "2048"])):
        path = directory / f"id_{kind}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f", str(path)],
            check=True,
            timeout=TIMEOUT,
        )
        paths[kind] = path
    return paths


@pytest.fixture(scope="module")
def server(keys: dict[str, Path]) -> Iterator[Server]:
    blobs = [authorized_blob(Path(f"{p}.pub").read_text()) for p in keys.values()]
    authenticator = SimpleAuthenticator(
        passwords={"alice": PASSWORD}, authorized_keys={"alice": blobs}
    )
    config = ServerConfig(auth=AuthConfig(banner="Welcome to ptycore\r\n"))
    with running_server(authenticator, config) as srv:
        yield srv
    srv.check()


def ssh_command(server: Server, key: Path) -> list[str]:
    """The OpenSSH client, logging in to ``server`` by ``key``, ready for a command."""
    return [
        "ssh", "-F", "/dev/null", "-p", str(server.port),
        "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
        "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-i", str(key), "alice@127.0.0.1",
    ]  # fmt: skip


def ssh(
    server: Server,
    *args: str,
    key: Path | None = None,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    log_level: str = "ERROR",
) -> subprocess.CompletedProcess[bytes]:
    options = [
        *ssh_options(server.port, log_level=log_level),
        "-o",
        "ConnectTimeout=10",
    ]
    if key is not None:
        options += ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(key)]
    return subprocess.run(
        ["ssh", *options, "alice@127.0.0.1", *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_openssh_exec_by_key(server: Server, keys: dict[str, Path], kind: str) -> None:
    result = ssh(server, "echo hello from ptycore", key=keys[kind])
    assert result.stderr == b""
    assert result.stdout == b"hello from ptycore\n"
    assert result.returncode == 0


def test_openssh_exit_status(server: Server, keys: dict[str, Path]) -> None:
    assert ssh(server, "exit 42", key=keys["ed25519"]).returncode == 42


def test_openssh_stdin_to_stdout_more_than_a_window(server: Server, keys: dict[str, Path]) -> None:
    data = os.urandom(5 * 1024 * 1024)
    result = ssh(server, "cat", key=keys["ed25519"], stdin=data)
    assert result.returncode == 0
    assert result.stdout == data


def test_openssh_tty_shell(server: Server, keys: dict[str, Path]) -> None:
    result = ssh(server, "-tt", key=keys["ed25519"], stdin=b"hello\nq")
    assert result.returncode == 3
    assert b"ptycore echo shell" in result.stdout
    assert b"hello" in result.stdout
    assert b"bye" in result.stdout


def test_openssh_tty_command_gets_a_pty(server: Server, keys: dict[str, Path]) -> None:
    env = dict(os.environ, TERM="xterm-256color")
    result = ssh(server, "-tt", "pty", key=keys["ed25519"], env=env)
    assert result.returncode == 0
    assert result.stdout.startswith(b"xterm-256color ")


@pytest.mark.parametrize("method", ["password", "keyboard-interactive"])
def test_openssh_password(server: Server, tmp_path: Path, method: str) -> None:
    askpass = tmp_path / "askpass"
    prompts = tmp_path / "prompts"
    askpass.write_text(f"#!/bin/sh\necho \"$1\" >> '{prompts}'\necho '{PASSWORD}'\n")
    askpass.chmod(0o700)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    result = ssh(
        server,
        "-o",
        f"PreferredAuthentications={method}",
        "-o",
        "PubkeyAuthentication=no",
        "echo by password",
        env=env,
        log_level="INFO",
    )
    assert result.stdout == b"by password\n", result.stderr
    assert result.returncode == 0
    assert b"Welcome to ptycore" in result.stderr  # the banner
    # OpenSSH asks "alice@127.0.0.1's password: " for password, shows our prompt otherwise.
    expected = "Password: " if method == "keyboard-interactive" else "password:"
    assert expected in prompts.read_text()


def test_openssh_stderr_and_exit_signal(server: Server, keys: dict[str, Path]) -> None:
    result = ssh(server, "stderr oops", key=keys["ed25519"])
    assert result.stdout == b""
    assert result.stderr == b"oops\n"
    assert result.returncode == 1
    result = ssh(server, "kill TERM", key=keys["ed25519"])
    assert result.returncode == 255  # ssh reports a remote signal as 255


def test_openssh_survives_rekeying(server: Server, keys: dict[str, Path]) -> None:
    data = os.urandom(3 * 1024 * 1024)
    rekeys_before = server.rekeys()
    result = ssh(server, "-o", "RekeyLimit=256K", "cat", key=keys["ed25519"], stdin=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    assert server.rekeys() - rekeys_before >= 3


def test_openssh_wrong_key_is_refused(server: Server, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
        timeout=TIMEOUT,
    )
    result = ssh(server, "echo no", key=stranger)
    assert result.returncode == 255
    assert b"Permission denied" in result.stderr


def test_paramiko_by_key_and_password(server: Server, keys: dict[str, Path]) -> None:
    logins: list[dict[str, Any]] = [{"key_filename": str(keys["ed25519"])}, {"password": PASSWORD}]
    for credentials in logins:
        client = paramiko_connect(server.port, **credentials)
        try:
            _, stdout, _ = client.exec_command("echo paramiko", timeout=TIMEOUT)
            assert stdout.read() == b"paramiko\n"
            assert stdout.channel.recv_exit_status() == 0
            paramiko_echo_shell(client)
        finally:
            client.close()


def test_asyncssh_by_key_and_password(server: Server, keys: dict[str, Path]) -> None:
    asyncssh = pytest.importorskip("asyncssh")

    async def run() -> None:
        for credentials in (
            {"client_keys": [str(keys["rsa"])]},
            {"password": PASSWORD, "client_keys": None},
        ):
            async with asyncssh.connect(
                "127.0.0.1",
                server.port,
                username="alice",
                known_hosts=None,
                agent_path=None,
                **credentials,
            ) as conn:
                result = await conn.run("echo asyncssh", timeout=TIMEOUT)
                assert result.stdout == "asyncssh\n"
                assert result.exit_status == 0
                result = await conn.run("pty", term_type="xterm-256color", term_size=(132, 43))
                assert result.stdout.strip() == "xterm-256color 132x43"

    asyncio.run(asyncio.wait_for(run(), TIMEOUT * 2))


def test_paramiko_keyboard_interactive(server: Server) -> None:
    paramiko = pytest.importorskip("paramiko")
    prompts: list[tuple[str, bool]] = []

    def handler(title: str, instructions: str, fields: list[tuple[str, bool]]) -> list[str]:
        prompts.extend(fields)
        return [PASSWORD] * len(fields)

    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=TIMEOUT)
            assert transport.auth_interactive("alice", handler) == []
            channel = transport.open_session(timeout=TIMEOUT)
            channel.exec_command("echo kbdint")
            assert channel.makefile("rb").read() == b"kbdint\n"
            assert channel.recv_exit_status() == 0
        finally:
            transport.close()
    assert prompts == [("Password: ", False)]


def test_asyncssh_keyboard_interactive_and_stderr(server: Server) -> None:
    asyncssh = pytest.importorskip("asyncssh")

    async def run() -> None:
        async with asyncssh.connect(
            "127.0.0.1",
            server.port,
            username="alice",
            password=PASSWORD,
            preferred_auth="keyboard-interactive",
            known_hosts=None,
            client_keys=None,
            agent_path=None,
        ) as conn:
            result = await conn.run("stderr to stderr", timeout=TIMEOUT)
            assert result.stderr == "to stderr\n"
            assert result.exit_status == 1
            result = await conn.run("kill HUP", timeout=TIMEOUT)
            assert result.exit_signal == ("HUP", False, "killed by test", "")

    asyncio.run(asyncio.wait_for(run(), TIMEOUT * 2))


def test_openssh_learns_new_host_keys(keys: dict[str, Path], tmp_path: Path) -> None:
    """hostkeys-00 / hostkeys-prove-00 (OpenSSH PROTOCOL 2.5): UpdateHostKeys adds our RSA key."""
    rsa_host_key = HostKey.generate("ssh-rsa", rsa_bits=2048)
    blob = authorized_blob(Path(f"{keys['ed25519']}.pub").read_text())
    authenticator = SimpleAuthenticator(authorized_keys={"alice": [blob]})
    with running_server(authenticator, extra_host_keys=(rsa_host_key,)) as srv:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{srv.port} {srv.host_key.openssh_public()}\n")
        result = subprocess.run(
            [
                "ssh",
                "-F",
                "/dev/null",
                "-p",
                str(srv.port),
                "-o",
                f"UserKnownHostsFile={known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "UpdateHostKeys=yes",
                "-o",
                "HostKeyAlgorithms=ssh-ed25519,rsa-sha2-512",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                str(keys["ed25519"]),
                "alice@127.0.0.1",
                "echo rotated",
            ],
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"rotated\n"
    srv.check()
    learned = known_hosts.read_text()
    assert rsa_host_key.openssh_public() in learned
    assert srv.host_key.openssh_public() in learned


def test_openssh_keepalive_is_answered(server: Server, keys: dict[str, Path]) -> None:
    """ServerAliveInterval: the global keepalive@openssh.com gets FAILURE, which means alive."""

    def keepalives() -> int:
        return sum(
            isinstance(e, GlobalRequestReceived) and e.name == "keepalive@openssh.com"
            for e in list(server.log)
        )

    before = keepalives()
    command = [
        "ssh",
        *ssh_options(server.port),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ServerAliveInterval=1",
        "-o",
        "ServerAliveCountMax=2",
        "-i",
        str(keys["ed25519"]),
        "alice@127.0.0.1",
        "cat",
    ]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdin is not None
        process.stdin.write(b"still here\n")
        process.stdin.flush()
        deadline = time.monotonic() + TIMEOUT
        while keepalives() < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling a condition, with a deadline
        stdout, stderr = process.communicate(timeout=TIMEOUT)  # closes stdin: cat ends
    assert keepalives() >= before + 2
    assert process.returncode == 0, stderr
    assert stdout == b"still here\n"


def test_openssh_user_certificate(tmp_path: Path) -> None:
    """sshd's TrustedUserCAKeys: a certificate logs in although its key is not authorized."""
    for name in ("ca", "user"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)],
            check=True,
            timeout=TIMEOUT,
        )
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-s",
            str(tmp_path / "ca"),
            "-I",
            "loopback",
            "-n",
            "alice",
            "-V",
            "-1h:+1h",
            str(tmp_path / "user.pub"),
        ],
        check=True,
        timeout=TIMEOUT,
    )
    ca = authorized_blob((tmp_path / "ca.pub").read_text())
    authenticator = SimpleAuthenticator(trusted_user_cas=[ca], clock=time.time)
    with running_server(authenticator) as srv:
        result = ssh(srv, "echo certified", key=tmp_path / "user")  # loads user-cert.pub too
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"certified\n"
        (tmp_path / "user-cert.pub").unlink()
        assert ssh(srv, "echo plain key", key=tmp_path / "user").returncode == 255
    srv.check()


@pytest.fixture(scope="module")
def putty_key(keys: dict[str, Path]) -> Path:
    if shutil.which("puttygen") is None:
        pytest.skip("needs puttygen")
    ppk = keys["ed25519"].with_suffix(".ppk")
    subprocess.run(
        ["puttygen", str(keys["ed25519"]), "-O", "private", "-o", str(ppk)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    return ppk


@pytest.mark.skipif(shutil.which("plink") is None, reason="needs PuTTY's plink")
def test_putty_plink(server: Server, putty_key: Path) -> None:
    """PuTTY waits for each reply before it sends more: replies must come, in order."""
    base = ["plink", "-batch", "-ssh", "-P", str(server.port), "-l", "alice"]
    base += ["-hostkey", server.host_key.fingerprint]
    env = dict(os.environ, TERM="xterm")

    def plink(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*base, *args], capture_output=True, timeout=TIMEOUT, env=env, input=b"", check=False
        )

    result = plink("-i", str(putty_key), "127.0.0.1", "echo from plink")
    assert (result.returncode, result.stdout) == (0, b"from plink\n"), result.stderr
    result = plink("-pw", PASSWORD, "127.0.0.1", "exit 4")  # keyboard-interactive
    assert result.returncode == 4, result.stderr
    result = plink("-t", "-i", str(putty_key), "127.0.0.1", "pty")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"xterm 80x24\n"


def dbclient(port: int, command: str) -> subprocess.CompletedProcess[bytes]:
    """Dropbear's client logging in as alice by password and running ``command``."""
    return subprocess.run(
        ["dbclient", "-y", "-y", "-p", str(port), "alice@127.0.0.1", command],
        capture_output=True,
        timeout=TIMEOUT,
        env=dict(os.environ, DROPBEAR_PASSWORD=PASSWORD),
        input=b"",
        check=False,
    )


@pytest.mark.skipif(shutil.which("dbclient") is None, reason="needs Dropbear's dbclient")
def test_dropbear_dbclient() -> None:
    authenticator = SimpleAuthenticator(passwords={"alice": PASSWORD})
    with running_server(authenticator) as srv:
        result = dbclient(srv.port, "echo dropbear")
    srv.check()
    assert result.stdout == b"dropbear\n", result.stderr


@pytest.mark.skipif(shutil.which("dbclient") is None, reason="needs Dropbear's dbclient")
@pytest.mark.parametrize(
    "kex",
    [
        # dbclient guesses curve25519-sha256 and ssh-ed25519 and sends its
        # KEX_ECDH_INIT with its KEXINIT (first_kex_packet_follows).
        ("curve25519-sha256", "curve25519-sha256@libssh.org"),  # right: the packet is used
        ("curve25519-sha256@libssh.org", "curve25519-sha256"),  # wrong: ignored, sent again
    ],
)
def test_dropbear_dbclient_first_kex_packet_guess(kex: tuple[str, ...]) -> None:
    """RFC 4253 section 7: dbclient's guessed packet, right and wrong (the default
    server list starts with mlkem768x25519-sha256 where available: wrong too)."""
    authenticator = SimpleAuthenticator(passwords={"alice": PASSWORD})
    config = ServerConfig(transport=TransportConfig(kex_algorithms=kex))
    with running_server(authenticator, config) as srv:
        result = dbclient(srv.port, "echo guessed")
    srv.check()
    assert result.stdout == b"guessed\n", result.stderr
    [done] = [e for e in srv.log if isinstance(e, KeyExchangeComplete)]
    assert done.algorithms.kex == "curve25519-sha256"
    assert done.algorithms.strict_kex


def test_openssh_through_rekeys_the_server_starts(keys: dict[str, Path]) -> None:
    """ServerConnection allows automatic rekeys once the user is logged in: with
    ``rekey_bytes`` of 64 KiB on the server and OpenSSH's default (1 GiB or more) on
    the client, every rekey during 4 MiB each way is the server's. A banner larger
    than the budget makes the first start right after USERAUTH_SUCCESS: the OpenSSH
    client drops a KEXINIT that comes before it."""
    blob = authorized_blob(Path(f"{keys['ed25519']}.pub").read_text())
    config = ServerConfig(
        transport=TransportConfig(rekey_bytes=64 * 1024), auth=AuthConfig(banner="b" * 70_000)
    )
    data = os.urandom(4 * 1024 * 1024)
    with running_server(SimpleAuthenticator(authorized_keys={"alice": [blob]}), config) as srv:
        result = subprocess.run(
            [*ssh_command(srv, keys["ed25519"]), "cat"],
            input=data,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    srv.check()
    assert result.returncode == 0, result.stderr[-2000:]
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()
    # One rekey at login, then one per 64 KiB sent or received under the current keys
    # (about 25 here: data moving during each exchange counts for the old keys). What
    # the server holds back during an exchange is bounded by the client's window (2 MiB),
    # so 4 MiB sent take at least two more, however the timing falls.
    assert srv.rekeys() >= 3, srv.rekeys()


def test_openssh_forwarding_is_refused(server: Server, keys: dict[str, Path]) -> None:
    """ssh -W opens a direct-tcpip channel: ADMINISTRATIVELY_PROHIBITED, as sshd without
    AllowTcpForwarding."""
    result = ssh(server, "-W", "127.0.0.1:9", key=keys["ed25519"], log_level="INFO")
    assert result.returncode == 255
    assert b"administratively prohibited" in result.stderr


def test_openssh_answers_client_alive_keepalives(keys: dict[str, Path]) -> None:
    """sshd's ClientAliveInterval: the server asks, the OpenSSH client answers."""
    blob = authorized_blob(Path(f"{keys['ed25519']}.pub").read_text())
    config = ServerConfig(client_alive_interval=0.2, client_alive_count_max=2)
    with running_server(SimpleAuthenticator(authorized_keys={"alice": [blob]}), config) as srv:

        def answers() -> int:
            return sum(isinstance(e, GlobalReplyReceived) for e in list(srv.log))

        with subprocess.Popen(
            [*ssh_command(srv, keys["ed25519"]), "cat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            deadline = time.monotonic() + TIMEOUT
            while answers() < 3 and time.monotonic() < deadline:
                time.sleep(0.05)  # polling a condition, with a deadline
            stdout, stderr = process.communicate(b"alive\n", timeout=TIMEOUT)
        assert answers() >= 3  # more than ClientAliveCountMax: each answer resets the count
        assert process.returncode == 0, stderr
        assert stdout == b"alive\n"
    srv.check()
