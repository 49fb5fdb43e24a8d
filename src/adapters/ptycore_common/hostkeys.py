"""Host keys for ``ptycore serve``: a key file given by the user, or one generated once and kept.

A server that made a new host key at every start would teach its users to ignore
the "host key changed" warning, so the generated key lives in the user's state
directory (XDG Base Directory Specification: ``$XDG_STATE_HOME``, by default
``~/.local/state``) and is reused, like ``sshd``'s ``/etc/ssh/ssh_host_*_key``
made once by ``ssh-keygen -A``. Both adapters keep their key in the same place.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ptycore.transport import HostKey

__all__ = [
    "HostKeyError",
    "create_host_key_file",
    "default_host_key_path",
    "load_host_key",
    "load_or_create_host_key",
]


class HostKeyError(Exception):
    """A host key cannot be read, parsed or written; the message is one line for users."""


def default_host_key_path() -> Path:
    """Where ``ptycore serve`` keeps the host key it generates.

    ``$XDG_STATE_HOME/ptycore/ssh_host_ed25519_key``, falling back to
    ``~/.local/state`` when the variable is unset or not absolute, as the XDG Base
    Directory Specification says.
    """
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "ptycore" / "ssh_host_ed25519_key"


def load_host_key(path: Path) -> HostKey:
    """Load an unencrypted private host key (OpenSSH or PEM format) from ``path``."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise HostKeyError(f"cannot read host key {path}: {error.strerror}") from None
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            return HostKey.from_openssh(data)
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise HostKeyError(f"cannot use host key {path}: {error}") from None
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    ):
        raise HostKeyError(f"cannot use host key {path}: unsupported {type(key).__name__}")
    try:
        return HostKey(key)
    except ValueError as error:
        raise HostKeyError(f"cannot use host key {path}: {error}") from None


def load_or_create_host_key(path: Path) -> HostKey:
    """Load the host key at ``path``, generating an Ed25519 key there first if missing."""
    if not path.exists():
        create_host_key_file(path)
    return load_host_key(path)


def create_host_key_file(path: Path) -> None:
    """Write a new Ed25519 key in OpenSSH format to ``path``.

    The file is created with mode 0600 (``O_EXCL``, so two servers starting at once
    cannot both write it) in a directory made with mode 0700; if another server
    made it first, theirs is kept.
    """
    private = ed25519.Ed25519PrivateKey.generate()
    data = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as error:
        raise HostKeyError(f"cannot create host key {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(data)
