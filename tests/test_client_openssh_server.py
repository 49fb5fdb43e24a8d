"""ClientConnection against the real OpenSSH server: Debian 12's sshd 9.2 and sshd 10.

Each sshd is a private ``sshd -D -e -f CONFIG`` on 127.0.0.1, started once per module
(with a twin of other settings, :data:`TUNED`) with keys made for the run: host keys
of every type the client verifies, and an ``authorized_keys`` with an Ed25519, an
ECDSA and an RSA user key. sshd 10 (which offers
``mlkem768x25519-sha256``) is ``$PTYCORE_TEST_SSHD_MLKEM``, which CI points at
Debian's backported one (``.ci/fetch-openssh-mlkem --sshd``), or the system's sshd if
it is 9.9 or later.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import os
import pwd
import re
import socket
import subprocess
import termios
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from client_helpers import TIMEOUT, BlockingClient
from loopback import MLKEM_KEX
from ptycore import DisconnectReason, Opcode, ProtocolError, TerminalModes
from ptycore.auth import AuthenticationSucceeded, BannerReceived, UserKey
from ptycore.client import ClientConfig
from ptycore.connection import ChannelDataReceived, GlobalRequestReceived
from ptycore.requests import KeepaliveRequest, WindowSize
from ptycore.session import (
    ExitSignalReceived,
    ExitStatusReceived,
    RequestAnswered,
    RequestRefused,
)
from ptycore.transport import MACS, HostKey, KeyExchangeComplete, TransportConfig, key_type

pytestmark = pytest.mark.network

SYSTEM_SSHD = "/usr/sbin/sshd"
MLKEM_SSHD_VARIABLE = "PTYCORE_TEST_SSHD_MLKEM"
"""Environment variable naming an OpenSSH server of 9.9 or later (with ML-KEM)."""

USER = getpass.getuser()
USER_KEYS = {
    "ed25519": HostKey.generate(),
    "ecdsa": HostKey.generate("ecdsa-sha2-nistp256"),
    "ecdsa384": HostKey.generate("ecdsa-sha2-nistp384"),
    "ecdsa521": HostKey.generate("ecdsa-sha2-nistp521"),
    "rsa": HostKey.generate("ssh-rsa", rsa_bits=2048),
}
BANNER = "Authorized tests only.\n"
HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


def openssh_version(sshd: str) -> tuple[int, int] | None:
    """``(10, 0)`` for an sshd whose ``-V`` says ``OpenSSH_10.0p2 ...``, else None."""
    try:
        banner = subprocess.run(
            [sshd, "-V"], check=False, capture_output=True, text=True, timeout=TIMEOUT
        ).stderr
    except OSError:
        return None
    found = re.match(r"OpenSSH_(\d+)\.(\d+)", banner)
    return (int(found[1]), int(found[2])) if found else None


@functools.cache
def mlkem_sshd() -> str | None:
    """An sshd of OpenSSH 9.9 or later (``mlkem768x25519-sha256``), or None."""
    for candidate in (os.environ.get(MLKEM_SSHD_VARIABLE), SYSTEM_SSHD):
        version = openssh_version(candidate) if candidate else None
        if version is not None and version >= (9, 9):
            return candidate
    return None


@dataclass
class Sshd:
    """A running sshd on ``port``, and on ``tuned_port`` a second one with
    :data:`TUNED`; ``log`` has the lines both wrote."""

    version: tuple[int, int]
    port: int
    tuned_port: int
    host_keys: dict[str, HostKey]
    kex_algorithms: tuple[str, ...]
    log: list[str] = field(default_factory=list)

    def connect(
        self,
        config: TransportConfig | None = None,
        *,
        keys: Sequence[UserKey] = (USER_KEYS["ed25519"],),
        tuned: bool = False,
    ) -> BlockingClient:
        """A client logged in (once pumped) as the user running the tests, trusting the
        host key of the first algorithm ``config`` offers; to ``tuned_port`` if ``tuned``."""
        config = config or TransportConfig()
        host_key = self.host_keys[key_type(config.host_key_algorithms[0]) or ""]
        return BlockingClient(
            self.tuned_port if tuned else self.port,
            host_key.public_blob,
            username=USER,
            config=ClientConfig(transport=config),
            keys=keys,
        )


TUNED = (
    "RekeyLimit 1M",
    # sshd 10 lists these in server-sig-algs, 9.2 does not: see
    # test_rsa_signature_as_server_sig_algs_says.
    "PubkeyAcceptedAlgorithms ssh-ed25519,rsa-sha2-256",
    # After a second without a packet from the client, sshd sends keepalive@openssh.com
    # wanting a reply, as a request on an open channel, else as a global request, and
    # hangs up when the next one goes unanswered (serverloop.c client_alive_check).
    "ClientAliveInterval 1",
    "ClientAliveCountMax 1",
)
"""The second sshd: rekeys every MiB, checks every second of silence that the client
is alive, and takes RSA user keys only with SHA-256."""


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (sshd cannot take port 0 and report it)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def write_config(
    sshd: str, directory: Path, port: int, host_keys: list[Path], *extra: str
) -> Path:
    """An sshd_config for a private sshd on ``port`` that touches no system state."""
    authorized = directory / "authorized_keys"
    authorized.write_text("".join(k.openssh_public() + "\n" for k in USER_KEYS.values()))
    banner = directory / "banner"
    banner.write_text(BANNER)
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        *(f"HostKey {path}" for path in host_keys),
        f"AuthorizedKeysFile {authorized}",
        f"Banner {banner}",
        # The temporary directory belongs to nobody sshd trusts; no PAM, no pid file.
        "StrictModes no",
        "UsePAM no",
        "PidFile none",
        "PrintMotd no",
        "PrintLastLog no",
        # The tests may run as root: keys only, as Debian's default.
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AcceptEnv PTYCORE_TEST_*",
        # bash run by sshd with SHLVL below 2 reads ~/.bashrc (shell.c,
        # run_startup_files): the user's setup, not the test's.
        "SetEnv SHLVL=1",
        # DEBUG would send the session child's messages to the channel (with -e).
        "LogLevel VERBOSE",
        *extra,
    ]
    if (openssh_version(sshd) or (0, 0)) >= (9, 8):
        # OpenSSH 9.8 refuses, for a while, addresses whose logins failed
        # (srclimit.c); the test of an unauthorized key is one.
        lines.append("PerSourcePenalties no")
    # OpenSSH 9.8 split sshd into sshd and sshd-session (10.0: and sshd-auth), run
    # from compiled-in paths under /usr/lib/openssh/; an unpacked sshd needs its own
    # (servconf.c: SshdSessionPath, SshdAuthPath).
    helpers = Path(sshd).resolve().parent.parent / "lib" / "openssh"
    for keyword, name in (("SshdSessionPath", "sshd-session"), ("SshdAuthPath", "sshd-auth")):
        if (helpers / name).exists():
            lines.append(f"{keyword} {helpers / name}")
    config = directory / f"sshd_config_{port}"
    config.write_text("\n".join(lines) + "\n")
    return config


@contextmanager
def sshd_process(sshd: str, config: Path, log: list[str]) -> Iterator[None]:
    """Run ``sshd -D -e -f config`` until the block ends; its log lines go to ``log``."""
    process = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = process.stderr
    assert stderr is not None
    listening = threading.Event()

    def read_log() -> None:
        for line in stderr:
            log.append(line)
            if line.startswith("Server listening on"):
                listening.set()
        listening.set()  # sshd is gone: the check below says so

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert listening.wait(TIMEOUT), "sshd did not start listening"
        assert process.poll() is None, "sshd exited:\n" + "".join(log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(TIMEOUT)
        reader.join(TIMEOUT)
        stderr.close()


@contextmanager
def running_sshd(sshd: str, directory: Path) -> Iterator[Sshd]:
    """Two sshd with the same keys until the block ends, the second with
    :data:`TUNED` (sshd takes ``RekeyLimit`` in a ``Match`` block, but a session
    did not rekey by it there)."""
    host_keys = {kind: HostKey.generate(kind, rsa_bits=2048) for kind in HOST_KEY_TYPES}
    paths = []
    for kind, key in host_keys.items():
        path = directory / f"host_{kind}"
        path.write_bytes(key.to_openssh())
        path.chmod(0o600)  # sshd refuses a private key others can read
        paths.append(path)
    port, tuned_port = free_ports(2)
    config = write_config(sshd, directory, port, paths)
    settings = subprocess.run(
        [sshd, "-T", "-f", str(config)],
        check=True,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    ).stdout
    (kex_line,) = [line for line in settings.splitlines() if line.startswith("kexalgorithms ")]
    version = openssh_version(sshd)
    assert version is not None, f"{sshd} -V names no OpenSSH version"
    server = Sshd(
        version=version,
        port=port,
        tuned_port=tuned_port,
        host_keys=host_keys,
        kex_algorithms=tuple(kex_line.split()[1].split(",")),
    )
    tuned_config = write_config(sshd, directory, tuned_port, paths, *TUNED)
    with sshd_process(sshd, config, server.log), sshd_process(sshd, tuned_config, server.log):
        yield server


@pytest.fixture(scope="module", params=["system", "mlkem"])
def sshd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sshd]:
    """Debian's sshd (9.2 on Debian 12), then an sshd with ML-KEM (10.0 in CI)."""
    if request.param == "system":
        binary: str | None = SYSTEM_SSHD if os.access(SYSTEM_SSHD, os.X_OK) else None
        missing = f"no {SYSTEM_SSHD} (apt-get install openssh-server)"
    else:
        binary = mlkem_sshd()
        missing = (
            f"no OpenSSH 9.9+ sshd: set {MLKEM_SSHD_VARIABLE} (.ci/fetch-openssh-mlkem --sshd)"
        )
    if binary is None:
        pytest.skip(missing)
    if os.geteuid() == 0:
        # Root's sshd changes to the privilege separation user in an empty directory
        # (Debian's unit and tmpfiles.d create it, the package creates the user).
        try:
            pwd.getpwnam("sshd")
        except KeyError:
            pytest.skip("no privilege separation user sshd (apt-get install openssh-server)")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with running_sshd(binary, tmp_path_factory.mktemp("sshd")) as server:
        yield server


# --- the transport: key exchange, ciphers, host keys ---------------------------------------

ALGORITHMS = [
    (MLKEM_KEX, "chacha20-poly1305@openssh.com", None, "ssh-ed25519"),
    ("curve25519-sha256", "aes256-gcm@openssh.com", None, "ecdsa-sha2-nistp256"),
    ("curve25519-sha256@libssh.org", "aes128-gcm@openssh.com", None, "rsa-sha2-512"),
    ("curve25519-sha256", "aes128-ctr", "hmac-sha2-256-etm@openssh.com", "rsa-sha2-256"),
    ("curve25519-sha256@libssh.org", "aes256-ctr", "hmac-sha2-512-etm@openssh.com", "ssh-ed25519"),
    ("curve25519-sha256", "chacha20-poly1305@openssh.com", None, "ecdsa-sha2-nistp256"),
    ("curve25519-sha256", "aes256-gcm@openssh.com", None, "ecdsa-sha2-nistp384"),
    (
        "curve25519-sha256@libssh.org",
        "aes128-ctr",
        "hmac-sha2-512-etm@openssh.com",
        "ecdsa-sha2-nistp521",
    ),
]
"""Every key exchange, cipher and host key algorithm ptycore has, each at least once."""


@pytest.mark.parametrize(("kex", "cipher", "mac", "host_key"), ALGORITHMS)
def test_algorithms_and_exit_status(
    sshd: Sshd, kex: str, cipher: str, mac: str | None, host_key: str
) -> None:
    if kex not in TransportConfig().kex_algorithms:
        pytest.skip(f"this cryptography has no ML-KEM for {kex}")
    config = TransportConfig(
        kex_algorithms=(kex,),
        ciphers=(cipher,),
        macs=(mac,) if mac else MACS,
        host_key_algorithms=(host_key,),
    )
    client = sshd.connect(config)
    if kex not in sshd.kex_algorithms:
        # sshd 9.2 has no ML-KEM: the client finds no common method in its KEXINIT.
        with pytest.raises(ProtocolError) as error:
            client.until(lambda: client.conn.authenticated)
        assert error.value.reason is DisconnectReason.KEY_EXCHANGE_FAILED
        assert client.offered == []
        client.close()
        return
    with client:
        channel, session = client.run("exit 7")
    assert (client.conn.peer_version or "").startswith("SSH-2.0-OpenSSH_")
    (done,) = [e for e in client.events if isinstance(e, KeyExchangeComplete)]
    negotiated = done.algorithms
    assert (negotiated.kex, negotiated.host_key) == (kex, host_key)
    assert negotiated.cipher_client_to_server == negotiated.cipher_server_to_client == cipher
    assert negotiated.mac_client_to_server == negotiated.mac_server_to_client == mac
    assert negotiated.strict_kex  # both sides: the Terrapin countermeasure
    blob = sshd.host_keys[key_type(host_key) or ""].public_blob
    assert client.offered == [(host_key, blob)]
    assert done.host_key == blob
    assert ExitStatusReceived(status=7) in client.session_events(channel)
    assert session.exit_status == 7


# --- user authentication ------------------------------------------------------------------

UNKNOWN_KEY = HostKey.generate()


@pytest.mark.parametrize(
    "keys",
    [
        ["ed25519"],
        ["ecdsa"],
        ["ecdsa384"],
        ["ecdsa521"],
        ["rsa"],
        ["unknown", "rsa"],
    ],
    ids=["ed25519", "ecdsa", "ecdsa384", "ecdsa521", "rsa", "unknown-then-rsa"],
)
def test_public_key_login(sshd: Sshd, keys: list[str]) -> None:
    known = {**USER_KEYS, "unknown": UNKNOWN_KEY}
    # After the login sshd announces its host keys (notify_hostkeys in sshd.c, in
    # sshd-session.c since 9.8), which the client declines without a reply.
    hostkeys = GlobalRequestReceived(
        name="hostkeys-00@openssh.com", want_reply=False, accepted=False
    )
    with sshd.connect(keys=[known[name] for name in keys]) as client:
        client.until(lambda: hostkeys in client.events)
    assert AuthenticationSucceeded(username=USER, method="publickey") in client.events
    # sshd sends its Banner file before the first answer (auth2.c userauth_send_banner).
    assert BannerReceived(message=BANNER, language="") in client.events


def test_rsa_signature_as_server_sig_algs_says(sshd: Sshd) -> None:
    """The tuned sshd takes RSA only with SHA-256. sshd 10.0 says so in server-sig-algs
    and the client signs with it (RFC 8332 section 3.3). sshd 9.2 lists every
    algorithm it has there (kex.c kex_send_ext_info: "XXX filter algs list by allowed
    pubkey/hostbased types"), so the client signs with its first choice, SHA-512, and
    is refused, as OpenSSH's own ssh is."""
    client = sshd.connect(keys=[USER_KEYS["rsa"]], tuned=True)
    if sshd.version <= (9, 2):
        with pytest.raises(ProtocolError) as error:
            client.until(lambda: client.conn.authenticated)
        client.close()
        assert error.value.reason is DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE
        return
    with client:
        client.until(lambda: client.conn.authenticated)
    assert AuthenticationSucceeded(username=USER, method="publickey") in client.events


def test_unauthorized_key_is_refused(sshd: Sshd) -> None:
    client = sshd.connect(keys=[UNKNOWN_KEY])
    with pytest.raises(ProtocolError) as error:
        client.until(lambda: client.conn.authenticated)
    client.close()
    # USERAUTH_FAILURE listed only publickey (no password, no keyboard-interactive).
    assert error.value.reason is DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE
    assert str(error.value).startswith("Permission denied (publickey)")


# --- sessions -----------------------------------------------------------------------------


def test_pty_modes_size_and_window_change(sshd: Sshd) -> None:
    modes = TerminalModes({Opcode.VINTR: 5, Opcode.VERASE: 8, Opcode.ECHO: 0})
    with sshd.connect() as client:
        channel = client.open_session()
        session = client.conn.session(channel)
        session.request_pty(term="xterm-256color", size=WindowSize(cols=101, rows=37), modes=modes)
        session.request_exec('echo "$TERM"; tty; stty -a; read line; stty size')
        client.until(lambda: b"eol" in client.output(channel))  # stty -a is out
        session.change_window(WindowSize(cols=120, rows=50))
        client.conn.send_data(channel, b"go\n")
        client.wait_closed(channel)
    answers = [e for e in client.session_events(channel) if isinstance(e, RequestAnswered)]
    assert [(type(a.request).__name__, a.accepted) for a in answers] == [
        ("PtyRequest", True),
        ("ExecRequest", True),
    ]
    term, tty, *settings, size = client.output(channel).decode().splitlines()
    assert term == "xterm-256color"
    assert re.fullmatch(r"/dev/pts/\d+", tty)
    stty = " ".join(settings)
    assert "rows 37; columns 101;" in stty
    assert "intr = ^E;" in stty
    assert "erase = ^H;" in stty
    assert re.search(r"(^|\s)-echo(\s|$)", stty)  # "go" was not echoed either
    assert size == "50 120"
    assert session.exit_status == 0


def test_exit_signal(sshd: Sshd) -> None:
    with sshd.connect() as client:
        channel, session = client.run("kill -TERM $$")
    (signal,) = [e for e in client.session_events(channel) if isinstance(e, ExitSignalReceived)]
    assert (signal.name, signal.core_dumped) == ("TERM", False)
    assert session.exit_status is None


def test_env_as_accept_env_allows(sshd: Sshd) -> None:
    with sshd.connect() as client:
        channel = client.open_session()
        session = client.conn.session(channel)
        session.request_env("PTYCORE_TEST_GREETING", "hello", want_reply=True)
        session.request_env("PTYCORE_REFUSED", "no", want_reply=True)
        session.request_exec('echo "$PTYCORE_TEST_GREETING ${PTYCORE_REFUSED-unset}"')
        client.wait_closed(channel)
    answers = [e for e in client.session_events(channel) if isinstance(e, RequestAnswered)]
    assert [a.accepted for a in answers] == [True, False, True]
    assert client.output(channel) == b"hello unset\n"
    assert session.environment == {"PTYCORE_TEST_GREETING": "hello"}


def test_pty_modes_from_local_termios(sshd: Sshd) -> None:
    """A local PTY's settings, sent as modes (``termios_attrs``), give sshd's PTY the
    same ``stty -a`` but for the size."""
    master, follower = os.openpty()
    try:
        attrs = termios.tcgetattr(follower)
        attrs[6][termios.VINTR] = b"\x05"
        attrs[6][termios.VKILL] = b"\x0b"
        attrs[3] &= ~termios.ECHOCTL
        attrs[1] &= ~termios.ONLCR  # no CR before each LF of the remote output either
        termios.tcsetattr(follower, termios.TCSANOW, attrs)
        attrs = termios.tcgetattr(follower)
        local = subprocess.run(
            ["stty", "-a"],
            stdin=follower,
            check=True,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        ).stdout
    finally:
        os.close(follower)
        os.close(master)
    with sshd.connect() as client:
        channel = client.open_session()
        session = client.conn.session(channel)
        session.request_pty(term="xterm", size=WindowSize(cols=80, rows=24), termios_attrs=attrs)
        session.request_exec("stty -a")
        client.wait_closed(channel)
    remote = client.output(channel).decode()
    assert "intr = ^E;" in remote
    size = re.compile(r"rows \d+; columns \d+;")
    assert size.sub("", remote) == size.sub("", local)


def test_shell_with_pty(sshd: Sshd) -> None:
    with sshd.connect() as client:
        channel = client.open_session()
        session = client.conn.session(channel)
        session.request_pty(term="vt100", size=WindowSize(cols=90, rows=30))
        session.request_shell()
        client.until(lambda: session.program_started)  # no data before that
        client.conn.send_data(channel, b"stty size; exit 3\n")
        client.wait_closed(channel)
    assert b"30 90\r\n" in client.output(channel)
    assert session.exit_status == 3


def test_keepalive_answered(sshd: Sshd) -> None:
    """sshd of :data:`TUNED` asks after a second of silence; the client says FAILURE,
    which is enough (any reply proves it alive), and the session goes on."""
    with sshd.connect(tuned=True) as client:
        channel = client.open_session()
        session = client.conn.session(channel)
        session.request_exec("read line; echo done")

        def asked() -> bool:
            return any(
                isinstance(e, RequestRefused) and isinstance(e.request, KeepaliveRequest)
                for e in client.session_events(channel)
            )

        client.until(asked)
        client.conn.send_data(channel, b"go\n")
        client.wait_closed(channel)
    refused = [e for e in client.session_events(channel) if isinstance(e, RequestRefused)]
    # Each wanted a reply, so the session machine queued a CHANNEL_FAILURE for each.
    assert [(type(e.request), e.want_reply) for e in refused][:1] == [(KeepaliveRequest, True)]
    assert all(e.want_reply for e in refused)
    assert client.output(channel) == b"done\n"
    assert session.exit_status == 0


def test_two_sessions_and_a_refused_subsystem(sshd: Sshd) -> None:
    """Two channels at once; on one, sshd (no Subsystem configured) refuses sftp, and
    the channel takes a command after that."""
    with sshd.connect() as client:
        first, second = client.open_session(), client.open_session()
        client.conn.session(second).request_exec("sleep 0.1; echo two")
        session = client.conn.session(first)
        session.request_subsystem("sftp")
        client.until(lambda: session.awaiting_replies == 0)  # one program at a time
        session.request_exec("echo one")
        client.wait_closed(first)
        client.wait_closed(second)
    answers = [e for e in client.session_events(first) if isinstance(e, RequestAnswered)]
    assert [(type(a.request).__name__, a.accepted) for a in answers] == [
        ("SubsystemRequest", False),
        ("ExecRequest", True),
    ]
    assert (client.output(first), client.output(second)) == (b"one\n", b"two\n")
    for channel in (first, second):
        assert ExitStatusReceived(status=0) in client.session_events(channel)


# --- data and rekeying --------------------------------------------------------------------


@pytest.mark.parametrize("rekeyed_by", ["sshd", "client"])
def test_data_both_ways_with_rekeys(sshd: Sshd, rekeyed_by: str) -> None:
    """3 MiB each way, more than either window (2 MiB), through ``tee``: echoed on
    stderr and hashed on stdout, while sshd (RekeyLimit 1M) or the client (1 MiB)
    rekeys."""
    payload = os.urandom(3 << 20)
    config = TransportConfig(rekey_bytes=1 << 20) if rekeyed_by == "client" else None
    with sshd.connect(config, tuned=rekeyed_by == "sshd") as client:
        channel = client.open_session()
        session = client.conn.session(channel)
        session.request_exec("tee /dev/stderr | sha256sum")
        client.until(lambda: session.program_started)
        client.send_all(channel, payload)
    assert client.output(channel, 1) == payload
    assert client.output(channel) == hashlib.sha256(payload).hexdigest().encode() + b"  -\n"
    assert session.exit_status == 0
    exchanges = [i for i, e in enumerate(client.events) if isinstance(e, KeyExchangeComplete)]
    data = [i for i, e in enumerate(client.events) if isinstance(e, ChannelDataReceived)]
    assert len(exchanges) >= 3  # the first, then rekeys
    # In the middle of the transfer: data came in both before and after rekeys.
    assert data[0] < exchanges[-1]
    assert exchanges[1] < data[-1]
    for i in exchanges:
        event = client.events[i]
        assert isinstance(event, KeyExchangeComplete)
        assert event.algorithms.strict_kex
        assert event.session_id == client.conn.session_id


def test_rekeys_by_time_while_idle(sshd: Sshd) -> None:
    """The client's rekey timer (``rekey_time``), run by the socket loop, rekeys
    while the command sleeps."""
    with sshd.connect(TransportConfig(rekey_time=0.2)) as client:
        channel, session = client.run("sleep 1; echo done")
    rekeys = [e for e in client.events if isinstance(e, KeyExchangeComplete) and not e.initial]
    assert len(rekeys) >= 2
    assert all(e.algorithms.strict_kex for e in rekeys)
    assert client.output(channel) == b"done\n"
    assert session.exit_status == 0
