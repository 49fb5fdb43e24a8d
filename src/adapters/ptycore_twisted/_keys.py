"""Host keys for Conch: an OpenSSH key file given by the user, or one generated once
and kept.

A server that made a new host key at every start would teach its users to ignore
the "host key changed" warning, so the generated key lives in the user's state
directory (:func:`ptycore_common.hostkeys.default_host_key_path`, shared with the
anyio adapter) and is reused, like ``sshd``'s ``/etc/ssh/ssh_host_*_key`` made
once by ``ssh-keygen -A``.
"""

from __future__ import annotations

from pathlib import Path

from twisted.conch.ssh import keys

from ptycore_common.hostkeys import HostKeyError, create_host_key_file, default_host_key_path

__all__ = ["HostKeyError", "default_host_key_path", "load_host_key", "load_or_create_host_key"]


def load_host_key(path: Path) -> keys.Key:
    """Load an unencrypted private host key (OpenSSH or PEM format) as a Conch key."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise HostKeyError(f"cannot read host key {path}: {error.strerror}") from None
    try:
        key: keys.Key = keys.Key.fromString(data)
    except (keys.BadKeyError, keys.EncryptedKeyError, ValueError) as error:
        raise HostKeyError(f"cannot use host key {path}: {error}") from None
    if key.isPublic():
        raise HostKeyError(f"cannot use host key {path}: it is a public key, not a private one")
    return key


def load_or_create_host_key(path: Path) -> keys.Key:
    """Load the host key at ``path``, generating an Ed25519 key there first if missing
    (mode 0600, in a directory made with mode 0700)."""
    if not path.exists():
        create_host_key_file(path)
    return load_host_key(path)
