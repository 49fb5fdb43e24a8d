"""Realm, avatar and factory: wiring Conch's transport and cred to ptycore sessions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.conch.avatar import ConchUser
from twisted.conch.error import ConchError
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh.connection import OPEN_UNKNOWN_CHANNEL_TYPE
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.keys import Key
from twisted.conch.ssh.transport import SSHServerTransport
from twisted.conch.ssh.userauth import SSHUserAuthServer
from twisted.cred import credentials
from twisted.cred.portal import IRealm, Portal
from twisted.internet.interfaces import IAddress
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ptycore.keyoptions import UNRESTRICTED, LoginRestrictions
from ptycore.session import SessionPolicy
from ptycore_common.tcp import acknowledge_short_read

from ._channel import SessionChannel, SessionProtocol
from ._cred import PeerSSHPrivateKey, make_portal
from ._reactor import default_reactor

__all__ = ["Application", "PeerUserAuthServer", "SessionAvatar", "SessionRealm", "make_factory"]

_log = Logger(namespace="ptycore")

Application = Callable[[], SessionProtocol]
"""What ``ptycore serve --app`` loads: a callable (usually a :class:`SessionProtocol`
subclass) that makes one protocol per session channel."""


class SessionAvatar(ConchUser):
    """A logged-in user whose ``session`` channels run :class:`SessionChannel`.

    Other channel types (``direct-tcpip``, ...) are refused with
    ``SSH_OPEN_UNKNOWN_CHANNEL_TYPE`` (RFC 4254 5.1).
    """

    def __init__(
        self,
        username: str,
        application: Application,
        *,
        policy: SessionPolicy | None = None,
        reactor: Any = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.username = username
        self.application = application
        self.policy = policy
        self.reactor = reactor

    def lookupChannel(
        self, channelType: bytes, windowSize: int, maxPacket: int, data: bytes
    ) -> SessionChannel:
        """Open a session channel; anything else is an unknown channel type."""
        if channelType != b"session":
            raise ConchError("unknown channel", OPEN_UNKNOWN_CHANNEL_TYPE)
        return SessionChannel(
            self.application(),
            policy=self.policy,
            reactor=self.reactor,
            username=self.username,
            remoteWindow=windowSize,
            remoteMaxPacket=maxPacket,
            data=data,
            avatar=self,
        )

    def logout(self) -> None:
        """Cred's logout callback: the connection is gone."""
        _log.info("{user} logged out", user=self.username)


@implementer(IRealm)
class SessionRealm:
    """A cred realm handing out :class:`SessionAvatar` s that run ``application``.

    An avatar ID with ``restrictions`` (a
    :class:`~ptycore_twisted.RestrictedAvatarId` from the authorized keys
    checker) narrows the sessions' policy with them (``no-pty``, ``command=``).
    """

    def __init__(
        self,
        application: Application,
        *,
        policy: SessionPolicy | None = None,
        reactor: Any = None,
    ) -> None:
        self.application = application
        self.policy = policy
        self.reactor = reactor

    def requestAvatar(
        self, avatarId: bytes, mind: object, *interfaces: Any
    ) -> tuple[Any, SessionAvatar, Callable[[], None]]:
        """Give Conch an ``IConchUser`` for the authenticated ``avatarId``."""
        if IConchUser not in interfaces:
            raise NotImplementedError("ptycore's realm only serves IConchUser")
        username = avatarId.decode("utf-8", "backslashreplace")
        restrictions: LoginRestrictions = getattr(avatarId, "restrictions", UNRESTRICTED)
        _log.info("{user} logged in", user=username)
        policy = self.policy
        if restrictions != UNRESTRICTED:
            _log.info("{user} restricted: {what}", user=username, what=restrictions)
            policy = restrictions.session_policy(policy or SessionPolicy())
        avatar = SessionAvatar(username, self.application, policy=policy, reactor=self.reactor)
        return IConchUser, avatar, avatar.logout


class _LoggingTransport(SSHServerTransport):
    """Conch's server transport with modern algorithms only, and one log line when a
    connection ends.

    Conch's defaults include SHA-1 key exchanges, NIST-curve exchanges, CBC and 3DES
    ciphers and SHA-1/MD5 MACs, which ``ssh-audit`` fails. What is left is what
    OpenSSH 9 offers first among what Conch implements (Conch has no AEAD cipher
    and no encrypt-then-MAC mode; ``docs/serve.rst`` says so).
    """

    supportedKeyExchanges = [  # noqa: RUF012 (Conch's own attribute, a list)
        b"mlkem768x25519-sha256",
        b"curve25519-sha256",
        b"curve25519-sha256@libssh.org",
    ]
    supportedCiphers = [b"aes256-ctr", b"aes128-ctr"]  # noqa: RUF012
    supportedMACs = [b"hmac-sha2-512", b"hmac-sha2-256"]  # noqa: RUF012

    _answered = False
    """Whether a packet was sent since the last read began."""

    def dataReceived(self, data: bytes) -> None:
        """Let Conch read it, then acknowledge a short read it answered with nothing
        (:mod:`ptycore_common.tcp`): what we send carries the ACK, and an ACK packet
        of its own after every short read costs both ends CPU."""
        self._answered = False
        super().dataReceived(data)  # type: ignore[no-untyped-call]
        handle = getattr(self.transport, "getHandle", None)
        if handle is not None and not self._answered:
            acknowledge_short_read(handle(), len(data))

    def sendPacket(self, messageType: int, payload: bytes) -> None:
        """Conch's, noting that the peer's data is acknowledged by what we send."""
        self._answered = True
        super().sendPacket(messageType, payload)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure | None = None) -> None:
        transport: Any = self.transport
        peer = transport.getPeer() if transport is not None else None
        _log.info("connection from {peer} closed", peer=_address(peer))
        super().connectionLost(reason)


class _PeerPortal:
    """The factory's portal for one connection: public key credentials go on with
    the client's address (:class:`~ptycore_twisted.PeerSSHPrivateKey`), for
    ``from=`` in authorized_keys."""

    def __init__(self, portal: Portal, peer_address: str | None) -> None:
        self._portal = portal
        self._peer_address = peer_address

    def listCredentialsInterfaces(self) -> list[Any]:
        """The portal's."""
        return self._portal.listCredentialsInterfaces()

    def login(self, creds: Any, mind: object, *interfaces: Any) -> Any:
        """The portal's login, with the address added to public key credentials."""
        if credentials.ISSHPrivateKey.providedBy(creds):
            creds = PeerSSHPrivateKey(
                creds.username,
                creds.algName,
                creds.blob,
                creds.sigData,
                creds.signature,
                peer_address=self._peer_address,
            )
        return self._portal.login(creds, mind, *interfaces)


class PeerUserAuthServer(SSHUserAuthServer):
    """Conch's userauth service, whose portal adds the client's address to public
    key credentials (:class:`~ptycore_twisted.PeerSSHPrivateKey`), so that
    :class:`~ptycore_twisted.AuthorizedKeysChecker` can enforce ``from=``. Put it in
    your factory's ``services[b"ssh-userauth"]`` (:func:`make_factory` does)."""

    def serviceStarted(self) -> None:
        super().serviceStarted()  # type: ignore[no-untyped-call]
        transport: Any = self.transport
        peer = transport.transport.getPeer() if transport.transport is not None else None
        host = getattr(peer, "host", None)
        self.portal = _PeerPortal(self.portal, host if isinstance(host, str) else None)


def _address(address: IAddress | None) -> str:
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    return str(address) if host is None else f"{host}:{port}"


_SHA1_SIGNATURES = frozenset({b"ssh-rsa", b"ssh-dss"})


class _Factory(SSHFactory):
    portal: Portal
    protocol = _LoggingTransport
    services = {  # noqa: RUF012 (Conch's own attribute, a dict)
        **SSHFactory.services,
        b"ssh-userauth": PeerUserAuthServer,
    }
    noisy = False  # our own line per connection replaces Twisted's factory chatter

    def buildProtocol(self, addr: IAddress | None) -> SSHServerTransport:
        _log.info("connection from {peer}", peer=_address(addr))
        transport = super().buildProtocol(addr)
        # SHA-1 signatures (ssh-rsa, ssh-dss) are off in OpenSSH since 8.8.
        transport.supportedPublicKeys = [
            name for name in transport.supportedPublicKeys if name not in _SHA1_SIGNATURES
        ]
        return transport


def make_factory(
    application: Application,
    *,
    host_keys: Sequence[Key],
    portal: Portal | None = None,
    policy: SessionPolicy | None = None,
    authorized_keys: Path | None = None,
    password_file: Path | None = None,
    reactor: Any = None,
) -> SSHFactory:
    """An ``SSHFactory`` serving ``application`` on every session channel.

    Give either a ready ``portal``, or ``authorized_keys`` and/or ``password_file``
    paths for :func:`make_portal`. ``host_keys`` are private keys (see
    :func:`load_or_create_host_key`); one per key type.
    """
    if not host_keys:
        raise ValueError("at least one host key is needed")
    if portal is None:
        portal = make_portal(
            SessionRealm(application, policy=policy, reactor=reactor),
            authorized_keys=authorized_keys,
            password_file=password_file,
            reactor=reactor if reactor is not None else default_reactor(),
        )
    factory = _Factory()
    factory.portal = portal
    factory.privateKeys = {key.sshType(): key for key in host_keys}
    factory.publicKeys = {key.sshType(): key.public() for key in host_keys}
    return factory
