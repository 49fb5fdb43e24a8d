"""ptycore_anyio's server against real clients (OpenSSH, AsyncSSH, Paramiko) on
127.0.0.1, on asyncio and on trio, with keys generated at test time."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import asyncssh
import bcrypt
import paramiko
import pytest

from loopback import MLKEM_KEX, asyncssh_resize, mlkem_openssh, needs_mlkem_openssh
from ptycore.auth import AuthConfig
from ptycore.client import ClientConfig, ClientConnection
from ptycore.connection import ChannelClosed, ChannelDataReceived, ChannelOpened, ConnectionConfig
from ptycore.requests import ExecRequest
from ptycore.server import ServerConfig
from ptycore.session import SessionPolicy
from ptycore.transport import DisconnectReceived, HostKey, Role, Transport
from ptycore_anyio import (
    EOF,
    Application,
    Data,
    FileAuthenticator,
    ServerLimits,
    Session,
    Shell,
    echo,
    info,
    serve,
)
from ptycore_anyio._server import drop_sent
from ptycore_common.info import NO_TERMINAL

pytestmark = [pytest.mark.anyio, pytest.mark.network]

T = TypeVar("T")

WAIT = 20.0
"""Deadline for any one client run; generous for a loaded 2-core machine."""

SHELL = Shell("/bin/sh")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass(frozen=True)
class Keys:
    client: Path
    authorized_keys: Path
    passwords: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("anyio-keys")
    client = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(client)],
        check=True,
        timeout=WAIT,
    )
    authorized = directory / "authorized_keys"
    # Options about forwarding change nothing here: the key stays usable.
    authorized.write_bytes(
        b'no-port-forwarding,permitopen="x:1" ' + client.with_suffix(".pub").read_bytes()
    )
    passwords = directory / "passwords"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4))
    passwords.write_bytes(b"alice:" + hashed + b"\nbob:plain\n")
    return Keys(client=client, authorized_keys=authorized, passwords=passwords)


@dataclass
class Running:
    port: int
    bound: list[tuple[str, int]]
    host_key: HostKey
    keys: Keys
    stop: Callable[[], None]


@asynccontextmanager
async def running(
    app: Application,
    keys: Keys,
    *,
    host: str | list[str] = "127.0.0.1",
    limits: ServerLimits | None = None,
    config: ServerConfig | None = None,
    passwords: bool = False,
) -> AsyncIterator[Running]:
    host_key = HostKey.generate()
    authenticator = FileAuthenticator(
        authorized_keys=keys.authorized_keys, password_file=keys.passwords if passwords else None
    )
    if config is None:
        policy = SessionPolicy(accept_env=("LANG", "PTYCORE_*"))
        config = ServerConfig(connection=ConnectionConfig(session_policy=policy))
    scope = anyio.CancelScope()  # the server's own: stopping it leaves the test running

    async def run_server(*, task_status: anyio.abc.TaskStatus[list[tuple[str, int]]]) -> None:
        with scope:
            await serve(
                app,
                host=host,
                port=0,
                host_keys=[host_key],
                authenticator=authenticator,
                config=config,
                limits=limits,
                task_status=task_status,
            )

    async with anyio.create_task_group() as tasks:
        bound = await tasks.start(run_server)
        yield Running(
            port=bound[0][1], bound=bound, host_key=host_key, keys=keys, stop=scope.cancel
        )
        tasks.cancel_scope.cancel()


def ssh_command(
    server: Running,
    *options: str,
    command: str | None,
    host: str = "127.0.0.1",
    client: str = "ssh",
) -> list[str]:
    return [
        client,
        "-p",
        str(server.port),
        "-i",
        str(server.keys.client),
        "-o",
        "BatchMode=yes",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "IdentitiesOnly=yes",
        "-F",
        "/dev/null",
        *options,
        f"tester@{host}",
        *([] if command is None else [command]),
    ]


async def ssh(
    server: Running,
    *options: str,
    command: str | None = None,
    stdin: bytes = b"",
    host: str = "127.0.0.1",
    client: str = "ssh",
) -> subprocess.CompletedProcess[bytes]:
    """Run the OpenSSH client to the end (TERM set, for -tt)."""
    env = dict(os.environ, TERM="xterm-256color")
    with anyio.fail_after(WAIT):
        return await anyio.run_process(
            ssh_command(server, *options, command=command, host=host, client=client),
            input=stdin,
            check=False,
            env=env,
        )


def in_asyncio(coroutine: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """Run an asyncio client (AsyncSSH) in a worker thread: works under either backend."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine(), WAIT)

    return anyio.to_thread.run_sync(asyncio.run, bounded())


async def asyncssh_connect(server: Running, **options: Any) -> asyncssh.SSHClientConnection:
    options.setdefault("client_keys", [str(server.keys.client)])
    return await asyncssh.connect(
        "127.0.0.1", server.port, username="tester", known_hosts=None, agent_path=None, **options
    )


# -- OpenSSH ------------------------------------------------------------------------------------


async def test_openssh_info_exec_with_and_without_a_pty(keys: Keys) -> None:
    async with running(info, keys) as server:
        with_pty = await ssh(server, "-tt", command="anything")
        without = await ssh(server, "-T")
        plain = await ssh(server, command="anything")
    assert with_pty.returncode == 0
    assert b"Your terminal name is 'xterm-256color'.\r\n" in with_pty.stdout
    assert b"columns wide and" in with_pty.stdout
    assert (without.returncode, without.stdout) == (0, NO_TERMINAL.encode())
    assert (plain.returncode, plain.stdout) == (0, NO_TERMINAL.encode())


async def test_a_forced_command_is_the_program_the_application_sees(
    keys: Keys, tmp_path: Path
) -> None:
    """``command=`` replaces the client's exec (and shell) with an exec of the forced
    command; the client's command is kept as ``original_command``."""
    restricted = tmp_path / "authorized_keys"
    public = keys.client.with_suffix(".pub").read_bytes()
    restricted.write_bytes(b'command="only \\"this\\"",no-pty ' + public)

    async def app(session: Session) -> None:
        program = session.program
        assert isinstance(program, ExecRequest)
        await session.write(f"{program.command}|{session.original_command}\n".encode())
        await session.exit(0)

    async with running(app, replace(keys, authorized_keys=restricted)) as server:
        execed = await ssh(server, command="anything at all")
        shell = await ssh(server, "-T")
    assert (execed.returncode, execed.stdout) == (0, b'only "this"|anything at all\n')
    assert (shell.returncode, shell.stdout) == (0, b'only "this"|None\n')


async def test_openssh_echo_moves_a_mebibyte_both_ways(keys: Keys) -> None:
    data = os.urandom(1 << 20)
    async with running(echo, keys) as server:
        done = await ssh(server, "-T", stdin=data)
    assert done.returncode == 0
    assert hashlib.sha256(done.stdout).digest() == hashlib.sha256(data).digest()


async def test_openssh_shell_exit_status_stderr_and_pty(keys: Keys) -> None:
    async with running(SHELL, keys) as server:
        status = await ssh(server, command="echo out; echo err >&2; exit 7")
        tty = await ssh(server, "-tt", command="stty size; tty")
    assert (status.returncode, status.stdout, status.stderr) == (7, b"out\n", b"err\n")
    assert tty.returncode == 0
    assert re.search(rb"/dev/pts/\d+", tty.stdout), tty.stdout


async def test_openssh_shell_exec_cat_passes_input_through_and_ends_at_eof(keys: Keys) -> None:
    """Input faster than ``cat`` reads it, then EOF: cat's stdin is closed once what
    is buffered for it is written (the Twisted adapter's shell once kept it open)."""
    inputs = [os.urandom(size) for size in (100_000, 300_000, 4 << 20)]
    async with running(SHELL, keys) as server:
        done = [await ssh(server, "-T", command="cat", stdin=data) for data in inputs]
    for data, result in zip(inputs, done, strict=True):
        assert result.returncode == 0, result.stderr
        assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()


async def test_listens_on_ipv4_and_ipv6_on_one_port(keys: Keys) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    async with running(info, keys, host=["127.0.0.1", "::1"]) as server:
        families = {":" in address for address, _ in server.bound}
        six = await ssh(server, "-6", "-T", host="::1")
        four = await ssh(server, "-4", "-T", host="127.0.0.1")
    assert families == {True, False}
    assert len({port for _, port in server.bound}) == 1
    assert (six.returncode, four.returncode) == (0, 0)
    assert six.stdout == four.stdout == NO_TERMINAL.encode()


# -- AsyncSSH and Paramiko --------------------------------------------------------------------


async def test_asyncssh_size_modes_env_resize_and_status(keys: Keys) -> None:
    async def client() -> tuple[str, str, str, int | None]:
        conn = await asyncssh_connect(server)
        async with conn:
            result = await conn.run(
                'stty -a; echo "LANG=$LANG X=$PTYCORE_X Y=$NOT_ACCEPTED TERM=$TERM"; exit 3',
                term_type="vt220",
                term_size=(91, 33),
                term_modes={asyncssh.PTY_VINTR: 0x07, asyncssh.PTY_ECHO: 0},
                env={"LANG": "C.UTF-8", "PTYCORE_X": "x y", "NOT_ACCEPTED": "no"},
            )
            first, second = await asyncssh_resize(conn)
        return str(result.stdout), first, second, result.exit_status

    async with running(SHELL, keys) as server:
        out, first, second, status = await in_asyncio(client)
    assert status == 3
    assert "rows 33; columns 91" in out
    assert "intr = ^G" in out
    assert re.search(r"(^|\s)-echo(\s|$)", out), out
    assert "LANG=C.UTF-8 X=x y Y= TERM=vt220" in out
    assert (first.strip(), second.strip()) == ("24 80", "50 132")


async def test_asyncssh_signals_and_exit_signal(keys: Keys) -> None:
    async def client() -> tuple[Any, Any]:
        conn = await asyncssh_connect(server)
        async with conn:
            killed = await conn.run("kill -TERM $$")
            process = await conn.create_process("echo started; exec sleep 60")
            await process.stdout.readline()
            process.send_signal("INT")
            interrupted = await process.wait()
        return killed.exit_signal, interrupted.exit_signal

    async with running(SHELL, keys) as server:
        killed, interrupted = await in_asyncio(client)
    assert killed[:2] == ("TERM", False)
    assert interrupted[:2] == ("INT", False)


async def test_asyncssh_password_and_keyboard_interactive_logins(keys: Keys) -> None:
    async def client() -> list[str]:
        outputs = []
        for options in (
            {"username": "alice", "password": "s3cret", "preferred_auth": "password"},
            {"username": "bob", "password": "plain", "preferred_auth": "keyboard-interactive"},
        ):
            conn = await asyncssh.connect(
                "127.0.0.1",
                server.port,
                known_hosts=None,
                agent_path=None,
                client_keys=None,
                **options,
            )
            async with conn:
                outputs.append(str((await conn.run("x")).stdout))
        try:
            await asyncssh.connect(
                "127.0.0.1",
                server.port,
                username="alice",
                password="wrong",
                known_hosts=None,
                agent_path=None,
                client_keys=None,
                preferred_auth="password",
            )
        except asyncssh.PermissionDenied:
            outputs.append("denied")
        return outputs

    async with running(info, keys, passwords=True) as server:
        outputs = await in_asyncio(client)
    assert outputs == [NO_TERMINAL, NO_TERMINAL, "denied"]


async def test_paramiko_pty_env_and_exit_status(keys: Keys) -> None:
    def client() -> tuple[bytes, int]:
        with paramiko.SSHClient() as ssh_client:
            ssh_client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            ssh_client.connect(
                "127.0.0.1",
                port=server.port,
                username="tester",
                key_filename=str(keys.client),
                allow_agent=False,
                look_for_keys=False,
                timeout=WAIT,
            )
            channel = ssh_client.get_transport().open_session(timeout=WAIT)  # type: ignore[union-attr]
            channel.settimeout(WAIT)
            channel.get_pty(term="vt100", width=77, height=22)
            channel.update_environment({"LANG": "C.UTF-8"})
            channel.exec_command('stty size; echo "$LANG $TERM"; exit 5')
            output = b""
            while chunk := channel.recv(4096):
                output += chunk
            return output, channel.recv_exit_status()

    async with running(SHELL, keys) as server:
        output, status = await anyio.to_thread.run_sync(client)
    assert status == 5
    assert b"22 77\r\n" in output
    assert b"C.UTF-8 vt100\r\n" in output


# -- limits, bad peers, shutdown ----------------------------------------------------------------


async def test_max_startups_drops_the_extra_unauthenticated_connection(keys: Keys) -> None:
    limits = ServerLimits(max_startups=(1, 100, 1))
    async with running(info, keys, limits=limits) as server:
        with anyio.fail_after(WAIT):
            first = await anyio.connect_tcp("127.0.0.1", server.port)
            async with first:
                banner = await first.receive()
                second = await anyio.connect_tcp("127.0.0.1", server.port)
                async with second:
                    dropped = await second.receive()
            # The first one is gone: its startup slot is free again.
            after = await ssh(server, "-T")
    assert banner.startswith(b"SSH-2.0-")
    assert dropped == b"Exceeded MaxStartups\r\n"
    assert after.returncode == 0


async def test_a_bad_peer_is_disconnected_and_others_are_served(keys: Keys) -> None:
    async with running(info, keys) as server:
        with anyio.fail_after(WAIT):
            bad = await anyio.connect_tcp("127.0.0.1", server.port)
            async with bad:
                await bad.send(b"SSH-2.0-bad\r\n" + b"\x00\x00\x00\x05garbage" * 4)
                received = b""
                try:
                    while True:
                        received += await bad.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
        good = await ssh(server, "-T")
    assert received.startswith(b"SSH-2.0-")
    assert good.returncode == 0


async def test_login_grace_time_disconnects_an_idle_client(keys: Keys) -> None:
    config = ServerConfig(auth=AuthConfig(login_grace_time=0.2))
    async with running(info, keys, config=config) as server:
        with anyio.fail_after(WAIT):
            idle = await anyio.connect_tcp("127.0.0.1", server.port)
            async with idle:
                received = b""
                try:
                    while True:
                        received += await idle.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
    assert received.startswith(b"SSH-2.0-")  # then the connection ended by itself


async def test_login_grace_time_counts_across_the_handshake(keys: Keys) -> None:
    # A client that sends its version and KEXINIT, then stalls: the grace time, which
    # covers every read before the login, ends it with a DISCONNECT that says why.
    config = ServerConfig(auth=AuthConfig(login_grace_time=0.3))
    client = Transport(Role.CLIENT, verify_host_key=lambda algorithm, blob: True)
    events = []
    async with running(info, keys, config=config) as server:
        with anyio.fail_after(WAIT):
            stalled = await anyio.connect_tcp("127.0.0.1", server.port)
            async with stalled:
                await stalled.send(client.data_to_send())  # version line and KEXINIT
                try:
                    while True:
                        events += client.receive_data(await stalled.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
    assert DisconnectReceived(reason=11, description="Timeout before authentication") in events


async def test_stopping_the_server_tells_clients_why(keys: Keys) -> None:
    started = anyio.Event()

    async def waiting(session: Session) -> None:
        started.set()
        async for _ in session:
            pass

    async with running(waiting, keys) as server, anyio.create_task_group() as tasks:
        outcome: list[subprocess.CompletedProcess[bytes]] = []

        async def run_client() -> None:
            outcome.append(await ssh(server, "-T", "-o", "LogLevel=INFO", stdin=b""))

        tasks.start_soon(run_client)
        with anyio.fail_after(WAIT):
            await started.wait()
        server.stop()
    (done,) = outcome
    assert done.returncode == 255
    # OpenSSH's client prints the reason code and text of the DISCONNECT it received.
    assert b"11: server shutting down" in done.stderr, done.stderr


async def test_sessions_leave_no_child_or_file_descriptor_behind(keys: Keys) -> None:
    async with running(SHELL, keys) as server:
        await ssh(
            server, "-tt", command="true"
        )  # warm up: lazily opened fds stay out of the count
        before = set(os.listdir("/proc/self/fd"))
        for _ in range(5):
            done = await ssh(server, "-tt", command="exit 2")
            assert done.returncode == 2
            done = await ssh(server, command="sleep 0; exit 3")
            assert done.returncode == 3
        with anyio.fail_after(WAIT):
            while set(os.listdir("/proc/self/fd")) - before:  # new ones; old ones may close
                await anyio.sleep(0.01)
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    assert children == []


class ServeProcess:
    """``ptycore serve --adapter anyio`` in a child process, its standard error kept."""

    def __init__(self, process: anyio.abc.Process, keys: Keys) -> None:
        self.process = process
        self.keys = keys
        self.log = b""

    async def read_until(self, marker: bytes) -> None:
        """Read its log until ``marker`` appears."""
        assert self.process.stderr is not None
        while marker not in self.log:
            self.log += await self.process.stderr.receive()

    def server(self) -> Running:
        """Where it listens, read off its start line."""
        found = re.search(rb"listening on 127\.0\.0\.1:(\d+)", self.log)
        assert found is not None, self.log
        return Running(
            port=int(found[1]), bound=[], host_key=HostKey.generate(), keys=self.keys, stop=print
        )

    async def stop(self) -> int:
        """SIGTERM, the rest of its log, and its exit status."""
        assert self.process.stderr is not None
        self.process.terminate()
        async for chunk in self.process.stderr:
            self.log += chunk
        return await self.process.wait()


@asynccontextmanager
async def serve_process(
    keys: Keys, tmp_path: Path, backend: str, *, prefix: tuple[str, ...] = ()
) -> AsyncIterator[ServeProcess]:
    """The console command with the ``info`` application and a fresh home, listening."""
    env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"))
    command = [
        *prefix,
        sys.executable,
        "-m",
        "ptycore_cli",
        "serve",
        *("--adapter", "anyio", "--backend", backend, "--port", "0", "--app", "info"),
        *("--authorized-keys", str(keys.authorized_keys)),
    ]
    with anyio.fail_after(WAIT):
        async with await anyio.open_process(command, env=env) as process:
            child = ServeProcess(process, keys)
            await child.read_until(b"ptycore serve: listening on")
            yield child


async def test_host_keys_that_make_none_of_the_algorithms_are_refused_before_listening(
    keys: Keys,
) -> None:
    """The default algorithms leave ECDSA out: serve() says so at once rather than
    fail every connection."""
    only_ecdsa = [HostKey.generate("ecdsa-sha2-nistp256")]
    with pytest.raises(ValueError, match=r"no host key makes any of host_key_algorithms \(ssh-ed"):
        await serve(
            info,
            port=0,
            host_keys=only_ecdsa,
            authenticator=FileAuthenticator(authorized_keys=keys.authorized_keys),
        )


async def test_ptycore_serve_adapter_anyio(keys: Keys, tmp_path: Path, anyio_backend: str) -> None:
    """The console command, on the backend under test, until SIGTERM."""
    async with serve_process(keys, tmp_path, anyio_backend) as child:
        found = re.search(rb"listening on 127\.0\.0\.1:\d+ .*anyio on (\w+)", child.log)
        assert found is not None, child.log
        done = await ssh(child.server(), "-tt", command="anything")
        status = await child.stop()
    assert found[1].decode() == anyio_backend
    assert done.returncode == 0, child.log
    assert b"Your terminal name is 'xterm-256color'." in done.stdout
    assert (tmp_path / "state" / "ptycore" / "ssh_host_ed25519_key").exists()
    assert status == 0
    assert child.log.endswith(b"ptycore serve: stopped\n"), child.log


async def test_running_out_of_file_descriptors_does_not_stop_the_server(
    keys: Keys, tmp_path: Path, anyio_backend: str
) -> None:
    """``ptycore serve`` with 16 file descriptors (it uses about 10) and 12 idle
    connections, fewer than MaxStartups ever drops: accept fails with EMFILE, the
    server says so, and serves again once they are closed."""
    async with serve_process(
        keys, tmp_path, anyio_backend, prefix=("prlimit", "--nofile=16")
    ) as child:
        server = child.server()
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(12)]
        await child.read_until(b"cannot accept a connection")
        for sock in idle:
            sock.close()
        done = await ssh(server, command="anything")
        assert await child.stop() == 0
    assert done.returncode == 0, child.log
    assert done.stdout.startswith(NO_TERMINAL.encode()), done.stdout


async def test_many_concurrent_sessions_and_killed_clients(keys: Keys) -> None:
    """100 clients at once: 70 AsyncSSH sessions with PTYs and 25 OpenSSH sessions
    move data both ways with matching checksums, and 5 OpenSSH clients killed in
    the middle leave the server serving, with every file descriptor closed again."""
    size = 256 * 1024

    async def asyncssh_clients() -> list[bool]:
        async def one(index: int) -> bool:
            data = os.urandom(size)
            conn = await asyncssh_connect(server)
            async with conn:
                process = await conn.create_process(
                    term_type="xterm", term_size=(80 + index, 24), encoding=None
                )
                process.stdin.write(data)
                process.stdin.write_eof()
                echoed = await process.stdout.readexactly(size)
                await process.wait()
            return hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()

        return list(await asyncio.gather(*(one(i) for i in range(70))))

    async def openssh_client(results: list[bool]) -> None:
        data = os.urandom(size)
        done = await ssh(server, "-T", stdin=data)
        results.append(done.returncode == 0 and done.stdout == data)

    async def killed_client() -> None:
        async with await anyio.open_process(ssh_command(server, "-T", command=None)) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            await process.stdin.send(b"x" * 65536)
            await process.stdout.receive()  # the session is running and echoing
            process.kill()
            await process.wait()

    # A hundred clients logging in at once: far above sshd's MaxStartups default of 10.
    limits = ServerLimits(max_startups=(200, 30, 200))
    async with running(echo, keys, limits=limits) as server:
        await ssh(server, "-T")  # warm up: lazily opened fds stay out of the count
        before = set(os.listdir("/proc/self/fd"))
        openssh: list[bool] = []
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                for _ in range(25):
                    tasks.start_soon(openssh_client, openssh)
                for _ in range(5):
                    tasks.start_soon(killed_client)
                outcomes = await in_asyncio(asyncssh_clients)
            after = await ssh(server, "-T", stdin=b"still serving")
        with anyio.move_on_after(WAIT):
            while set(os.listdir("/proc/self/fd")) - before:  # new ones; old ones may close
                await anyio.sleep(0.01)
        leftover = _describe_fds(set(os.listdir("/proc/self/fd")) - before)
        states = _server_states(server.port)
    assert (leftover, states) == ([], [])
    assert outcomes == [True] * 70
    assert openssh == [True] * 25
    assert after.stdout == b"still serving"


def _describe_fds(fds: set[str]) -> list[str]:
    """What each file descriptor is, for a readable failure."""
    described = []
    for fd in sorted(fds):
        try:
            described.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            continue  # closed meanwhile
    return described


def _server_states(port: int) -> list[str]:
    """The TCP states of the server's connections on ``port`` (ss), for a failure."""
    done = subprocess.run(
        ["ss", "-tnH", "state", "all", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
        timeout=WAIT,
    )
    return [
        line
        for line in done.stdout.splitlines()
        if not line.startswith(("LISTEN", "TIME-WAIT"))  # closed; TIME-WAIT is the kernel's
    ]


@pytest.mark.parametrize("window", [64 * 32768, 65536, 1024])
async def test_a_client_that_sends_everything_before_reading_gets_it_all_back(
    keys: Keys, window: int
) -> None:
    """32 MiB written before anything is read: the echo application blocks on the
    client's window, its input piles up, and the server must still see the
    client's WINDOW_ADJUST once it starts reading, instead of deadlocking. With
    small receive windows too: the window comes back in steps of half of it."""
    data = os.urandom((32 if window > 65536 else 1) * 1024 * 1024)
    config = ServerConfig(connection=ConnectionConfig(window_size=window))

    async def client() -> bytes:
        conn = await asyncssh_connect(server)
        async with conn:
            process = await conn.create_process(encoding=None)
            process.stdin.write(data)
            process.stdin.write_eof()
            echoed = await process.stdout.readexactly(len(data))
            await process.wait()
        return bytes(echoed)

    async with running(echo, keys, config=config) as server:
        echoed = await in_asyncio(client)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()


async def test_a_client_that_stops_reading_its_socket_gets_every_byte_later(
    keys: Keys, tmp_path: Path
) -> None:
    """ptycore's own client gives a 16 MiB window, more than a socket buffer holds
    (4 MiB at most on Linux), and stops reading its socket until the server's send
    queue is full and stays so: the server's sends stop part-way through the
    packets and wait for room; then every byte arrives, in order."""
    size = 12 * 1024 * 1024
    user = HostKey.generate()
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(user.openssh_public() + "\n")

    async def flood(session: Session) -> None:
        chunk = bytes(range(256)) * 1024
        for _ in range(size // len(chunk)):
            await session.write(chunk)
        await session.exit(0)

    def client() -> bytes:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", server.port))
        config = ClientConfig(connection=ConnectionConfig(window_size=16 * 1024 * 1024))
        conn = ClientConnection(
            config,
            "tester",
            verify_host_key=lambda _, blob: blob == server.host_key.public_blob,
            keys=[user],
        )
        received: list[bytes] = []
        events: list[object] = []

        def pump(done: Callable[[], bool]) -> None:
            while not done():
                sock.sendall(conn.data_to_send())
                data = sock.recv(1 << 20)
                assert data, "the server hung up"
                for event in conn.receive_data(data):
                    events.append(event)
                    if isinstance(event, ChannelDataReceived):
                        received.append(event.data)
            sock.sendall(conn.data_to_send())

        with sock:
            pump(lambda: conn.authenticated)
            channel = conn.open_session()
            pump(lambda: ChannelOpened(channel_id=channel) in events)
            conn.session(channel).request_exec("flood")
            pump(lambda: bool(received))
            wait_until_full(server.port, sock.getsockname()[1])
            pump(lambda: ChannelClosed(channel_id=channel) in events)
        return b"".join(received)

    async with running(flood, replace(keys, authorized_keys=authorized)) as server:
        output = await anyio.to_thread.run_sync(client)
    assert len(output) == size
    assert output == (bytes(range(256)) * 1024) * (size // (256 * 1024))


def send_queue(local_port: int, remote_port: int) -> int | None:
    """Bytes in the send queue of the loopback TCP socket ``local_port`` ->
    ``remote_port`` (Linux's /proc/net/tcp ``tx_queue``), or None if there is none."""
    ends = (f"0100007F:{local_port:04X}", f"0100007F:{remote_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == ends:
            return int(fields[4].split(":")[0], 16)
    return None


def wait_until_full(server_port: int, client_port: int) -> None:
    """Wait until the server's send queue to the client holds data and stops growing:
    its socket buffer is full, and its sends are waiting for room."""
    deadline = time.monotonic() + WAIT
    seen: list[int | None] = []
    while len(seen) < 5 or len(set(seen[-5:])) > 1 or not seen[-1]:
        assert time.monotonic() < deadline, f"the send queue never filled: {seen[-5:]}"
        seen.append(send_queue(server_port, client_port))
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("sent", "left"),
    [(0, [b"abc", b"de", b"f"]), (2, [b"c", b"de", b"f"]), (3, [b"de", b"f"]), (4, [b"e", b"f"]),
     (5, [b"f"]), (6, [])],
)  # fmt: skip
def test_a_partial_send_leaves_the_rest_in_order(sent: int, left: list[bytes]) -> None:
    views: list[bytes | memoryview] = [b"abc", b"de", b"f"]
    drop_sent(views, sent)
    assert [bytes(view) for view in views] == left


async def test_a_slow_application_blocks_a_fast_asyncssh_clients_writes(keys: Keys) -> None:
    """The client's window reopens only as the application reads: until then its
    send window stays at 0, its writes wait in its own buffer, and the server holds
    at most one window of input."""
    data = os.urandom(16 * 1024 * 1024)
    window = ConnectionConfig().window_size
    gate = anyio.Event()
    sessions: list[Session] = []

    async def slow(session: Session) -> None:
        sessions.append(session)
        await gate.wait()
        digest = hashlib.sha256()
        async for event in session:
            if isinstance(event, Data):
                digest.update(event.data)
            elif isinstance(event, EOF):
                break
        await session.write(digest.digest())
        await session.exit(0)

    async def client() -> tuple[int, int, bytes]:
        conn = await asyncssh_connect(server)
        async with conn:
            process = await conn.create_process(encoding=None)
            process.stdin.write(data)
            channel: Any = process.channel
            while channel._send_window > 0:  # AsyncSSH has no accessor
                await asyncio.sleep(0.01)  # until the window is used up; bounded by WAIT
            waiting = channel.get_write_buffer_size()
            buffered = 0
            while buffered < window:  # the window's last bytes may still be on their way
                buffered = anyio.from_thread.run_sync(lambda: sessions[0].input_buffered)
                await asyncio.sleep(0.01)  # bounded by WAIT
            anyio.from_thread.run_sync(gate.set)
            process.stdin.write_eof()
            digest = await process.stdout.readexactly(32)
            await process.wait()
        return waiting, buffered, bytes(digest)

    async with running(slow, keys) as server:
        waiting, buffered, digest = await in_asyncio(client)
    assert waiting >= len(data) - 2 * window  # the client's writes were held back
    assert buffered == window  # the server held one window, all the client could send
    assert digest == hashlib.sha256(data).digest()


@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"])
async def test_openssh_rekeys_in_the_middle_of_a_transfer(keys: Keys, cipher: str) -> None:
    """``RekeyLimit=1M``: the client starts a key exchange every MiB while 4 MiB flow
    each way; the connection task feeds it through like any other packet."""
    data = os.urandom(4 << 20)
    async with running(echo, keys) as server:
        done = await ssh(server, "-T", "-c", cipher, "-o", "RekeyLimit=1M", stdin=data)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(done.stdout).digest() == hashlib.sha256(data).digest()


@needs_mlkem_openssh()
async def test_openssh_10_with_its_own_defaults_rekeys_with_ml_kem(keys: Keys) -> None:
    """OpenSSH 10 as it comes picks ML-KEM (``mlkem768x25519-sha256``) first: a PTY
    session, then 4 MiB each way with a new ML-KEM key exchange every MiB."""
    client = mlkem_openssh()
    assert client is not None
    data = os.urandom(4 << 20)
    async with running(info, keys) as server:
        terminal = await ssh(server, "-tt", command="anything", client=client)
    async with running(echo, keys) as server:
        moved = await ssh(server, "-T", "-v", "-o", "RekeyLimit=1M", stdin=data, client=client)
    assert terminal.returncode == 0, terminal.stderr
    assert b"Your terminal name is 'xterm-256color'.\r\n" in terminal.stdout
    assert moved.returncode == 0, moved.stderr
    assert hashlib.sha256(moved.stdout).digest() == hashlib.sha256(data).digest()
    log = moved.stderr.decode()
    exchanges = re.findall(r"kex: algorithm: (\S+)", log)
    assert len(exchanges) >= 4, log  # the first and at least one per MiB sent
    assert set(exchanges) == {MLKEM_KEX}
