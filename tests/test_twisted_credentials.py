"""Host keys, authorized keys and password files, and the command's refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest
from twisted.conch.error import ValidPublicKey
from twisted.conch.ssh import keys
from twisted.cred import credentials, error
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ptycore.auth import LoginRestrictions
from ptycore_twisted import (
    AuthorizedKeysChecker,
    CredentialsFileError,
    HostKeyError,
    PasswordFile,
    PeerSSHPrivateKey,
    RestrictedAvatarId,
    SessionProtocol,
    SessionRealm,
    conch_keys,
    default_host_key_path,
    load_host_key,
    load_or_create_host_key,
    make_portal,
)
from twisted_helpers import WAIT, make_keys


def test_host_key_generated_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ptycore" / "ssh_host_ed25519_key"
    first = load_or_create_host_key(path)
    assert first.sshType() == b"ssh-ed25519"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = load_or_create_host_key(path)
    assert again.fingerprint() == first.fingerprint()


def test_default_host_key_path_follows_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_host_key_path() == tmp_path / "ptycore" / "ssh_host_ed25519_key"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    assert default_host_key_path() == Path.home() / ".local/state/ptycore/ssh_host_ed25519_key"


def test_host_key_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(HostKeyError, match="cannot read host key"):
        load_host_key(tmp_path / "missing")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a key\n")
    with pytest.raises(HostKeyError, match="cannot use host key"):
        load_host_key(garbage)
    made = make_keys(tmp_path / "k")
    with pytest.raises(HostKeyError, match="public key"):
        load_host_key(made.client_public)


def test_authorized_keys_with_options_comments_and_junk(tmp_path: Path) -> None:
    made = make_keys(tmp_path)
    public = made.client_public.read_bytes().strip()
    path = tmp_path / "ak"
    path.write_bytes(
        b"\n# comment\n"
        + b'command="echo \\"quoted, with spaces\\"",no-pty ' + public + b"\n"
        + b"ssh-ed25519 AAAAnot-base64\n"
        + b"   " + public + b"\n"
        + b'no-port-forwarding,permitopen="h:1",no-user-rc ' + public + b"\n"
        + b"No-Agent-Forwarding " + public + b"\n"
        + b'from="10.0.0.1" ' + public + b"\n"
        + b'permitopen="h:1,2" ' + public + b"\n"
        + b"frobnicate " + public + b"\n"
        + b"cert-authority " + public + b"\n"
    )  # fmt: skip
    found, problems = conch_keys(path)
    expected = keys.Key.fromFile(str(made.client_public))
    # The bare key and the harmless options: Conch's own checker enforces no option.
    assert found == [expected, expected]
    assert [(p.line, p.reason) for p in problems] == [
        (3, "ssh-ed25519 key skipped: its options need AuthorizedKeysChecker"),
        (4, "not a public key"),
        (7, "ssh-ed25519 key skipped: its options need AuthorizedKeysChecker"),  # agent
        (8, "ssh-ed25519 key skipped: its options need AuthorizedKeysChecker"),
        (9, "bad key options: invalid permission port"),  # sshd: "h" port "1,2"
        (10, "bad key options: unknown key option"),
        (11, "ssh-ed25519 key skipped: cert-authority is not supported"),
    ]


def test_password_file_plain_and_bcrypt(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4))
    path.write_bytes(b"# users\nalice:wonderland\nbob:" + hashed + b"\nnocolon\n")

    clock = Clock()

    class Pool:
        """The reactor's thread pool, run inline: the checker's decision is what
        is tested here, not Twisted's threads."""

        def callInThreadWithCallback(self, on_result, f, *a, **kw):  # type: ignore[no-untyped-def]
            on_result(True, f(*a, **kw))

    class Reactor:
        def getThreadPool(self) -> Pool:
            return Pool()

        def callFromThread(self, f, *a, **kw):  # type: ignore[no-untyped-def]
            clock.callLater(0, f, *a, **kw)

    checker = PasswordFile(path, Reactor())

    def outcome(user: bytes, password: bytes) -> object:
        results: list[object] = []
        attempt = checker.requestAvatarId(credentials.UsernamePassword(user, password))
        attempt.addBoth(results.append)
        clock.advance(0)
        (result,) = results
        return result.value if isinstance(result, Failure) else result

    assert outcome(b"alice", b"wonderland") == b"alice"
    assert outcome(b"bob", b"s3cret") == b"bob"
    assert isinstance(outcome(b"bob", b"wrong"), error.UnauthorizedLogin)
    assert isinstance(outcome(b"alice", b"Wonderland"), error.UnauthorizedLogin)
    assert isinstance(outcome(b"carol", b"x"), error.UnauthorizedLogin)


def test_portal_needs_a_way_in(tmp_path: Path) -> None:
    realm = SessionRealm(SessionProtocol)
    with pytest.raises(CredentialsFileError, match="nobody could log in"):
        make_portal(realm)
    with pytest.raises(CredentialsFileError, match="cannot read authorized keys file"):
        make_portal(realm, authorized_keys=tmp_path / "missing")


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"))
    return subprocess.run(
        [sys.executable, "-m", "ptycore_cli", "serve", "--port", "0", *args],
        capture_output=True, text=True, timeout=WAIT, env=env, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nobody could log in: "),
        (("--authorized-keys", "/nonexistent/ak"), "cannot read authorized keys file"),
        (("--password-file", "/nonexistent/pw"), "cannot read password file"),
        (("--password-file", "/dev/null", "--host-key", "/nonexistent/k"), "cannot read host key"),
        (("--password-file", "/dev/null", "--app", "nope"), "give info, echo, shell"),
        (("--password-file", "/dev/null", "--app", "no_such_module:x"), "cannot import"),
    ],
)
@pytest.mark.parametrize("adapter", ["twisted", "anyio"])
def test_serve_refuses_with_one_line(
    tmp_path: Path, adapter: str, args: tuple[str, ...], message: str
) -> None:
    done = serve(tmp_path, "--adapter", adapter, *args)
    assert done.returncode in (1, 2)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ptycore serve: error: ")
    assert message in lines[0]


def test_authorized_keys_checker_enforces_options(tmp_path: Path) -> None:
    """from= by the credentials' address, expiry-time= by the clock, the line's
    restrictions on the avatar ID; a query gets ValidPublicKey (PK_OK) only for a
    key that may log in."""
    made = make_keys(tmp_path)
    public = made.client_public.read_bytes().strip()
    path = tmp_path / "ak"
    path.write_bytes(
        b'from="10.0.0.0/8",no-pty ' + public + b"\n"
        + b'from="127.0.0.1",expiry-time="20300101Z",command="c" ' + public + b"\n"
    )  # fmt: skip
    private = keys.Key.fromFile(str(made.client))
    data = b"signed data"
    blob = private.public().blob()

    def outcome(peer: str | None, *, now: float = 1.8e9, signed: bool = True) -> object:
        checker = AuthorizedKeysChecker(path, clock=lambda: now)
        signature = private.sign(data) if signed else None
        creds = PeerSSHPrivateKey(
            b"alice", b"ssh-ed25519", blob, data if signed else None, signature, peer_address=peer
        )
        results: list[object] = []
        checker.requestAvatarId(creds).addBoth(results.append)
        (result,) = results
        return result.value if isinstance(result, Failure) else result

    admitted = outcome("127.0.0.1")
    assert isinstance(admitted, RestrictedAvatarId)
    assert admitted == b"alice"
    assert admitted.restrictions == LoginRestrictions(command="c")
    from_ten = outcome("10.1.2.3")
    assert isinstance(from_ten, RestrictedAvatarId)
    assert from_ten.restrictions == LoginRestrictions(pty=False)
    assert isinstance(outcome("192.0.2.1"), error.UnauthorizedLogin)
    assert isinstance(outcome(None), error.UnauthorizedLogin)
    assert isinstance(outcome("127.0.0.1", now=1.9e9), error.UnauthorizedLogin)  # 2030 passed
    assert isinstance(outcome("127.0.0.1", signed=False), ValidPublicKey)
    assert isinstance(outcome("192.0.2.1", signed=False), error.UnauthorizedLogin)
