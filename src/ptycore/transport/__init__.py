"""The SSH transport layer (RFC 4253), sans-IO, on ``cryptography``.

One :class:`Transport` per connection and role. Bytes in, events out, bytes to
send; time and randomness come from outside::

    transport = Transport(Role.SERVER, TransportConfig(), host_keys=[HostKey.generate()])
    out = transport.data_to_send()            # our version line and KEXINIT
    events = transport.receive_data(data, now=now)   # VersionReceived, KeyExchangeComplete,
                                                     # PayloadReceived, ...
    transport.send_payload(payload)           # any message numbered 5, 6 or 50-255

The transport handles messages 1-4, 7 and 20-49 itself (DISCONNECT, IGNORE,
UNIMPLEMENTED, DEBUG, EXT_INFO, KEXINIT, NEWKEYS and the key exchange) and hands
every other message up as :class:`PayloadReceived`, including SERVICE_REQUEST and
SERVICE_ACCEPT, which belong to the authentication layer above.

On a protocol error it queues ``SSH_MSG_DISCONNECT`` with the reason code and then
raises :class:`~ptycore.ProtocolError`: the caller flushes :meth:`Transport.data_to_send`
and closes.
"""

from ._config import (
    CIPHERS,
    COMPRESSION,
    HOST_KEY_ALGORITHMS,
    KEX_ALGORITHMS,
    MACS,
    PACKET_MAX_SIZE,
    TransportConfig,
)
from ._events import (
    Algorithms,
    DisconnectReceived,
    ExtInfoReceived,
    KeyExchangeComplete,
    PayloadReceived,
    TransportEvent,
    UnimplementedReceived,
    VersionReceived,
)
from ._transport import HostKeyVerifier, Role, Transport
from .hostkeys import HostKey, fingerprint, key_type, verify_signature

__all__ = [
    "CIPHERS",
    "COMPRESSION",
    "HOST_KEY_ALGORITHMS",
    "KEX_ALGORITHMS",
    "MACS",
    "PACKET_MAX_SIZE",
    "Algorithms",
    "DisconnectReceived",
    "ExtInfoReceived",
    "HostKey",
    "HostKeyVerifier",
    "KeyExchangeComplete",
    "PayloadReceived",
    "Role",
    "Transport",
    "TransportConfig",
    "TransportEvent",
    "UnimplementedReceived",
    "VersionReceived",
    "fingerprint",
    "key_type",
    "verify_signature",
]
