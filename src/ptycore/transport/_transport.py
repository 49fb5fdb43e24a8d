"""The transport state machine: version exchange, packets, key exchange, rekeying."""

from __future__ import annotations

import enum
import functools
import hashlib
import os
import struct
from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

from ptycore._errors import DisconnectReason, ProtocolError
from ptycore._session_rules import Role
from ptycore._wire import (
    Reader,
    encode_boolean,
    encode_name_list,
    encode_string,
    encode_text,
    encode_uint32,
)

from ._ciphers import CIPHER_SPECS, MAC_SPECS, NoCipher, PacketCipher, make_cipher
from ._config import TransportConfig
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
from ._kex import KexMethod, derive_key, make_kex
from .hostkeys import HostKey, key_type, verify_signature

__all__ = ["HostKeyVerifier", "Role", "Transport"]

HostKeyVerifier: TypeAlias = Callable[[str, bytes], bool]
"""``verify(host_key_algorithm, public_blob) -> bool``: the client's trust decision
(``known_hosts``). It is called during the first key exchange; a rekey must present
the same key. ``False`` disconnects with ``HOST_KEY_NOT_VERIFIABLE``."""


# RFC 4253 section 12 and RFC 8308 section 2.3: message numbers the transport owns.
MSG_DISCONNECT: Final = 1
MSG_IGNORE: Final = 2
MSG_UNIMPLEMENTED: Final = 3
MSG_DEBUG: Final = 4
MSG_SERVICE_REQUEST: Final = 5
MSG_SERVICE_ACCEPT: Final = 6
MSG_EXT_INFO: Final = 7
MSG_KEXINIT: Final = 20
MSG_NEWKEYS: Final = 21
MSG_KEX_ECDH_INIT: Final = 30
MSG_KEX_ECDH_REPLY: Final = 31

# OpenSSH PROTOCOL section 1.9 (strict key exchange) and RFC 8308 section 2.1.
STRICT_CLIENT: Final = "kex-strict-c-v00@openssh.com"
STRICT_SERVER: Final = "kex-strict-s-v00@openssh.com"
EXT_INFO_CLIENT: Final = "ext-info-c"

MAX_VERSION_LINE: Final = 255
"""RFC 4253 section 4.2: the identification line is at most 255 characters with CR LF."""
MAX_BANNER_LINE: Final = 8192
"""OpenSSH ``ssh.h`` ``SSH_MAX_BANNER_LEN``: the longest line a client reads before
the server's version."""
MAX_BANNER_LINES: Final = 1024
"""OpenSSH ``ssh.h`` ``SSH_MAX_PRE_BANNER_LINES``; a server accepts none
(``kex.c`` ``kex_exchange_identification``)."""
MAX_EXTENSIONS: Final = 1023
"""OpenSSH ``kex.c`` ``kex_input_ext_info`` refuses 1024 extensions or more, and more
than one EXT_INFO from a client or two from a server (RFC 8308 section 2.4: after
the first NEWKEYS and before USERAUTH_SUCCESS)."""
MAX_KEX_VALUE: Final = 16384
"""Largest ephemeral public value, host key or signature read from a kex message."""
PADDING_POOL: Final = 256
"""Random bytes fetched at a time for packet padding: one call to the random source
per few dozen packets, and little kept per connection (the pool stays with an idle
connection; at most 255 bytes of padding go in a packet, RFC 4253 section 6)."""
MAX_PACKETS_BEFORE_REKEY: Final = 1 << 31
"""OpenSSH ``packet.c`` ``MAX_PACKETS``: rekey long before sequence numbers wrap."""

_UINT32: Final = struct.Struct(">I")
_BYTE: Final = struct.Struct(">B")
DEFAULT_CONFIG: Final = TransportConfig()


def _rekey_bytes(cipher: str, configured: int | None) -> int:
    """OpenSSH ``packet.c`` ``ssh_set_newkeys``: 2**(block size * 2) blocks for
    16-byte blocks (RFC 4344 section 3.2), 1 GiB for smaller ones; a configured
    ``RekeyLimit`` only lowers it."""
    block = 8 if cipher.startswith("chacha20") else 16
    default = (1 << (block * 2)) * block if block >= 16 else 1 << 30
    return default if configured is None else min(default, configured)


def _negotiate(field: str, client: Sequence[str], server: Sequence[str]) -> str:
    """RFC 4253 section 7.1: the first client algorithm the server also supports."""
    for name in client:
        if name in server:
            return name
    raise ProtocolError(
        f"no matching {field}: client offers {','.join(client)!r}, "
        f"server offers {','.join(server)!r}",
        reason=DisconnectReason.KEY_EXCHANGE_FAILED,
        field=field,
    )


@functools.lru_cache(maxsize=32)
def _proposal(
    config: TransportConfig, host_key_names: tuple[str, ...], pseudo: tuple[str, ...]
) -> tuple[bytes, tuple[tuple[str, ...], ...]]:
    """Our KEXINIT after the cookie, and its ten name-lists, ``pseudo`` appended to
    the kex algorithms.

    The same for every connection with one configuration and host keys, so it is
    made once, not encoded at each connection and parsed again at negotiation.
    """
    kex_names = config.kex_algorithms + pseudo
    # RFC 4253 section 7.1: name-lists kex, host key, then both directions of
    # encryption, MAC, compression and languages; boolean first_kex_packet_follows,
    # uint32 0 (reserved).
    lists = (
        kex_names,
        host_key_names,
        config.ciphers,
        config.ciphers,
        config.macs,
        config.macs,
        config.compression,
        config.compression,
        (),
        (),
    )
    proposal = b"".join(encode_name_list(names) for names in lists)
    return proposal + encode_boolean(False) + encode_uint32(0), lists


_KEXINIT_LISTS: Final = (
    "kex_algorithms",
    "server_host_key_algorithms",
    "encryption_algorithms_client_to_server",
    "encryption_algorithms_server_to_client",
    "mac_algorithms_client_to_server",
    "mac_algorithms_server_to_client",
    "compression_algorithms_client_to_server",
    "compression_algorithms_server_to_client",
    "languages_client_to_server",
    "languages_server_to_client",
)


_KEXINIT_KEPT_SIZE: Final = 4096
"""The largest KEXINIT body (after the cookie) that :func:`_read_kexinit` keeps."""


@functools.lru_cache(maxsize=64)
def _read_kexinit(body: bytes) -> tuple[tuple[tuple[str, ...], ...], bool]:
    """The name-lists and first_kex_packet_follows of a KEXINIT, from what follows its
    cookie. Kept: a server sees few distinct ones (every client of one version and
    configuration sends the same), and reading ten name-lists costs more than a
    lookup. Errors are not kept, and count offsets from the message's start."""
    # byte 20, byte[16] cookie, 10 name-lists, boolean first_kex_packet_follows,
    # uint32 0 (reserved).
    reader = Reader(bytes(17) + body, 17)
    lists = tuple(reader.name_list(name) for name in _KEXINIT_LISTS)
    first_kex_follows = reader.boolean("first_kex_packet_follows")
    reader.uint32("reserved")
    reader.end("KEXINIT")
    return lists, first_kex_follows


class _Kexinit:
    """The parts of an SSH_MSG_KEXINIT payload negotiation needs (RFC 4253 section 7.1)."""

    __slots__ = ("first_kex_follows", "lists", "payload")

    def __init__(self, payload: bytes) -> None:
        if len(payload) < 17:
            raise ProtocolError("truncated KEXINIT", field="cookie")
        body = payload[17:]
        # Only KEXINITs of a usual size are kept (OpenSSH's is about 1.5 KiB): a
        # client sending large ones must not make the cache hold 64 of them.
        read = _read_kexinit if len(body) <= _KEXINIT_KEPT_SIZE else _read_kexinit.__wrapped__
        self.lists, self.first_kex_follows = read(body)
        self.payload = payload


class _Step(enum.Enum):
    """What the key exchange waits for from the peer."""

    KEXINIT = "KEXINIT"
    KEX_INIT = "KEX_ECDH_INIT"
    KEX_REPLY = "KEX_ECDH_REPLY"
    NEWKEYS = "NEWKEYS"


# The message each step waits for. Server: KEXINIT -> KEX_INIT -> NEWKEYS; client:
# KEXINIT -> KEX_REPLY -> NEWKEYS (RFC 4253 section 7, RFC 8731 section 3). A KEXINIT
# is taken at any time outside a running exchange.
_EXPECTED: Final = {
    _Step.KEX_INIT: MSG_KEX_ECDH_INIT,
    _Step.KEX_REPLY: MSG_KEX_ECDH_REPLY,
    _Step.NEWKEYS: MSG_NEWKEYS,
}
# All a strict initial exchange may receive (OpenSSH PROTOCOL 1.9), besides DISCONNECT.
_KEX_MESSAGES: Final = frozenset({MSG_KEXINIT, MSG_NEWKEYS, MSG_KEX_ECDH_INIT, MSG_KEX_ECDH_REPLY})
# RFC 4250 section 4.1.2: numbers 30-49 belong to the key exchange method, so a
# guessed first kex packet of any method is one of them.
_KEX_METHOD_MESSAGES: Final = range(30, 50)


class _KexRun:
    """One key exchange in progress (RFC 4253 sections 7 and 8)."""

    __slots__ = (
        "algorithms",
        "client_value",
        "host_key",
        "ignore_next",
        "method",
        "ours",
        "ours_lists",
        "peer",
        "recv_cipher",
        "sent_newkeys",
        "step",
    )

    def __init__(self, ours: bytes, ours_lists: tuple[tuple[str, ...], ...]) -> None:
        self.ours = ours
        self.ours_lists = ours_lists  # the name-lists of ``ours``, as _Kexinit.lists
        self.peer: _Kexinit | None = None
        self.algorithms: Algorithms | None = None
        self.method: KexMethod | None = None
        self.step = _Step.KEXINIT
        self.ignore_next = False
        self.sent_newkeys = False
        self.recv_cipher: PacketCipher | None = None
        self.host_key = b""
        self.client_value = b""

    def negotiated(self) -> tuple[KexMethod, Algorithms, _Kexinit]:
        """The method, algorithms and peer KEXINIT, present once KEXINITs crossed."""
        if self.method is None or self.algorithms is None or self.peer is None:
            raise ProtocolError("key exchange message before KEXINIT")
        return self.method, self.algorithms, self.peer


class Transport:
    """One end of an SSH transport (RFC 4253), sans-IO.

    Construction queues our identification string and our first KEXINIT.
    """

    __slots__ = (
        "_authenticated",
        "_banner_lines",
        "_closed",
        "_config",
        "_ext_info_c",
        "_ext_infos",
        "_host_key_blob",
        "_host_keys",
        "_inbuf",
        "_kex",
        "_now",
        "_out",
        "_padding_pool",
        "_padding_used",
        "_peer_version",
        "_pending",
        "_random",
        "_recv_bytes",
        "_recv_cipher",
        "_recv_length",
        "_recv_packets",
        "_recv_seq",
        "_rekey_deadline",
        "_rekey_limit",
        "_role",
        "_send_bytes",
        "_send_cipher",
        "_send_packets",
        "_send_seq",
        "_session_id",
        "_strict",
        "_verify_host_key",
        "_version_done",
    )

    def __init__(
        self,
        role: Role,
        config: TransportConfig = DEFAULT_CONFIG,
        *,
        host_keys: Sequence[HostKey] = (),
        verify_host_key: HostKeyVerifier | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``host_keys`` (server, at least one) and ``verify_host_key`` (client,
        required) are role-specific; ``random`` supplies padding, cookies and the
        ephemeral keys, so tests can fix it."""
        self._role = role
        self._config = config
        self._random = random
        self._verify_host_key = verify_host_key
        self._host_keys = config.host_keys_by_algorithm(host_keys)
        if role is Role.SERVER and not self._host_keys:
            raise ValueError("a server needs a host key for one of host_key_algorithms")
        if role is Role.CLIENT and verify_host_key is None:
            raise ValueError("a client needs verify_host_key")
        self._out: list[bytes] = []
        self._padding_pool = b""
        self._padding_used = 0
        self._inbuf = bytearray()
        self._version_done = False
        self._banner_lines = 0
        self._peer_version: str | None = None
        self._closed = False
        self._send_cipher: PacketCipher = NoCipher()
        self._recv_cipher: PacketCipher = NoCipher()
        self._send_seq = 0
        self._recv_seq = 0
        self._recv_length: int | None = None
        self._send_bytes = 0
        self._recv_bytes = 0
        self._send_packets = 0
        self._recv_packets = 0
        self._rekey_limit = _rekey_bytes("aes", config.rekey_bytes)
        self._now: float | None = None
        self._rekey_deadline: float | None = None
        self._session_id: bytes | None = None
        self._host_key_blob: bytes | None = None
        self._strict = False
        self._ext_info_c = False
        self._ext_infos = 0
        self._pending: list[bytes] = []
        self._authenticated = False
        self._kex: _KexRun | None = None
        self._out.append(config.version.encode("ascii") + b"\r\n")
        self._start_kex()

    # --- public API ------------------------------------------------------------------

    @property
    def role(self) -> Role:
        """Client or server."""
        return self._role

    @property
    def session_id(self) -> bytes | None:
        """The exchange hash of the first key exchange, ``None`` before it ends."""
        return self._session_id

    @property
    def peer_version(self) -> str | None:
        """The peer's identification string once received."""
        return self._peer_version

    @property
    def closed(self) -> bool:
        """Whether a DISCONNECT was sent or received, or a protocol error happened."""
        return self._closed

    def receive_data(self, data: bytes, *, now: float | None = None) -> list[TransportEvent]:
        """Feed bytes from the peer; returns what happened, in order.

        ``now`` (any monotonic clock, in seconds) is needed only when
        :attr:`TransportConfig.rekey_time` is set, to time the next rekey. Raises
        :class:`~ptycore.ProtocolError` after queueing a DISCONNECT. After the
        connection is closed, data is ignored.
        """
        if now is not None:
            self._now = now
        if self._closed:
            return []
        events: list[TransportEvent] = []
        buf = self._inbuf
        try:
            if self._version_done:
                self._read_stream(data, buf, events)
            else:
                buf += data
                consumed = self._read_version(buf, events)
                if self._peer_version is not None:  # the packets behind it
                    consumed = self._read_packets(buf, consumed, events)
                del buf[:consumed]
        except ProtocolError as error:
            self._inbuf = bytearray()
            self._fail(error)
            raise
        self._maybe_rekey()
        return events

    def _read_stream(self, data: bytes, buf: bytearray, events: list[TransportEvent]) -> None:
        """Read packets from ``data``, ``buf`` holding the start of one cut by the last read.

        Only the bytes that cut packet lacks are copied to ``buf``; the rest are read
        straight from ``data``, and only a packet cut again at its end is kept, so each
        byte is copied at most once on its way to the cipher, whatever the read size.
        """
        pos = 0
        while buf and pos < len(data) and not self._closed:
            length = self._recv_length
            wanted = 4 if length is None else 4 + length + self._recv_cipher.tag_length
            end = pos + wanted - len(buf)
            buf += data[pos:end]
            pos = min(end, len(data))
            del buf[: self._read_packets(buf, 0, events)]  # nothing, or the whole packet
        if not buf:
            pos = self._read_packets(data, pos, events)
            if pos < len(data) and not self._closed:
                buf += data[pos:]

    def send_payload(self, payload: bytes) -> None:
        """Queue one message (its number byte first) for the peer.

        Only numbers 5, 6 and 50-255 are allowed here: the rest belong to the
        transport. During a key exchange the payload waits until NEWKEYS has been
        sent (RFC 4253 section 7.1). Raises ``ValueError`` on misuse and
        ``RuntimeError`` once closed.
        """
        if self._closed:
            raise RuntimeError("the transport is closed")
        if not payload or not (payload[0] in (5, 6) or payload[0] >= 50):
            raise ValueError(
                "only messages numbered 5, 6 or 50-255 may be sent by the layers above"
            )
        if len(payload) > self._config.max_packet_size - 64:
            raise ValueError(f"payload of {len(payload)} bytes exceeds the packet size limit")
        if self._kex is not None and not self._kex.sent_newkeys:
            self._pending.append(payload)
            return
        self._send_packet(payload)
        self._maybe_rekey()

    def send_unimplemented(self, sequence_number: int) -> None:
        """Answer a received message nobody knows (RFC 4253 section 11.4):
        ``byte 3, uint32 packet sequence number``."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        self._send_packet(bytes([MSG_UNIMPLEMENTED]) + encode_uint32(sequence_number))

    def data_to_send(self) -> bytes:
        """Drain the bytes to write to the peer."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def buffers_to_send(self) -> list[bytes]:
        """Drain the bytes to write to the peer in the pieces they were made in, for a
        vectored write (``socket.sendmsg``): :meth:`data_to_send` without the copy
        that joins them, which is a whole window of output in a bulk transfer."""
        out, self._out = self._out, []
        return out

    def rekey(self) -> None:
        """Start a key exchange now, unless one is running or the first is not done."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        if self._kex is None and self._session_id is not None:
            self._start_kex()

    def set_authenticated(self) -> None:
        """Allow automatic rekeys (by bytes or time) from now on.

        The layer above calls this when user authentication succeeds. OpenSSH never
        starts a rekey before that (``packet.c`` ``ssh_packet_need_rekeying``), and
        its client drops the connection on a KEXINIT during authentication
        (``sshconnect2.c`` ``input_userauth_error``). A rekey the peer starts is
        always answered, and :meth:`rekey` is obeyed at any time.
        """
        self._authenticated = True
        self._maybe_rekey()

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next run (same clock as ``now``), or ``None``."""
        if self._closed or self._kex is not None or not self._authenticated:
            return None
        return self._rekey_deadline

    def handle_timer(self, now: float) -> None:
        """Start the time-based rekey if its deadline has passed."""
        self._now = now
        if (
            self._closed
            or self._kex is not None
            or self._config.rekey_time is None
            or not self._authenticated
        ):
            return
        if self._rekey_deadline is None:
            if self._session_id is not None:
                self._rekey_deadline = now + self._config.rekey_time
            return
        if now >= self._rekey_deadline:
            self._start_kex()

    def disconnect(self, reason: DisconnectReason, description: str = "") -> None:
        """Queue ``SSH_MSG_DISCONNECT`` and close; later sends raise ``RuntimeError``."""
        if self._closed:
            return
        # RFC 4253 section 11.1: byte 1, uint32 reason code, string description
        # (UTF-8), string language tag.
        self._send_packet(
            bytes([MSG_DISCONNECT])
            + encode_uint32(int(reason))
            + encode_text(description)
            + encode_string(b"")
        )
        self._closed = True

    # --- errors --------------------------------------------------------------------------

    def _fail(self, error: ProtocolError) -> None:
        """Queue the DISCONNECT an error calls for, once, before it propagates."""
        if self._closed:
            return
        self.disconnect(error.reason, error.message)

    # --- version exchange (RFC 4253 section 4.2) ---------------------------------------

    def _read_version(self, source: bytes | bytearray, events: list[TransportEvent]) -> int:
        """Read lines up to the peer's version; returns how many bytes were used."""
        start = 0
        limit = MAX_BANNER_LINE if self._role is Role.CLIENT else MAX_VERSION_LINE
        while True:
            end = source.find(b"\n", start)
            if end < 0:
                if len(source) - start > limit:
                    raise ProtocolError(
                        "identification line too long",
                        reason=DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
                    )
                return start
            line = bytes(source[start:end])
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.startswith(b"SSH-"):
                self._accept_version(line, events)
                return start
            # A client accepts other lines before the version; a server none.
            self._banner_lines += 1
            if self._role is Role.SERVER or self._banner_lines > MAX_BANNER_LINES:
                raise ProtocolError(
                    "no SSH identification string",
                    reason=DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
                )
            if len(line) > MAX_BANNER_LINE:
                raise ProtocolError(
                    "line before the identification string too long",
                    reason=DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
                )

    def _accept_version(self, line: bytes, events: list[TransportEvent]) -> None:
        # SSH-protoversion-softwareversion SP comments; "1.99" means 2.0 as well
        # (RFC 4253 section 5.1).
        if len(line) + 2 > MAX_VERSION_LINE or not (line.startswith((b"SSH-2.0-", b"SSH-1.99-"))):
            raise ProtocolError(
                "unsupported SSH identification string",
                reason=DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
            )
        if not line.isascii() or b"\x00" in line:
            raise ProtocolError(
                "identification string is not ASCII",
                reason=DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
            )
        self._peer_version = line.decode("ascii")
        self._version_done = True
        events.append(VersionReceived(version=self._peer_version))

    # --- binary packet protocol (RFC 4253 section 6) ------------------------------------

    def _send_packet(self, payload: bytes) -> None:
        cipher = self._send_cipher
        block = cipher.block_size
        # RFC 4253 section 6: padding of 4 to 255 bytes makes the encrypted part a
        # multiple of the block size; AEAD and ETM leave the length field out.
        covered = len(payload) + (5 if cipher.aligns_length else 1)
        padding = block - covered % block
        if padding < 4:
            padding += block
        header = _UINT32.pack(len(payload) + padding + 1)
        pool, used = self._padding_pool, self._padding_used
        if used + padding > len(pool):
            # Random padding (RFC 4253 section 6) drawn in blocks: one call to the
            # random source per 4 KiB instead of one per packet.
            pool, used = self._random(PADDING_POOL), 0
            self._padding_pool = pool
        self._padding_used = used + padding
        body = b"".join((_BYTE.pack(padding), payload, pool[used : used + padding]))  # one copy
        pieces = cipher.encrypt(self._send_seq, header, body)
        self._out.extend(pieces)
        self._send_seq = (self._send_seq + 1) & 0xFFFFFFFF
        self._send_bytes += len(body) + 4 + cipher.tag_length
        self._send_packets += 1

    def _read_packets(
        self, source: bytes | bytearray, pos: int, events: list[TransportEvent]
    ) -> int:
        """Read every complete packet from ``source[pos:]``; returns the new offset."""
        size = len(source)
        with memoryview(source) as view:
            while not self._closed:
                cipher = self._recv_cipher
                length = self._recv_length
                if length is None:
                    if size - pos < 4:
                        break
                    length = cipher.decrypt_length(self._recv_seq, source[pos : pos + 4])
                    self._check_length(length, cipher)
                    self._recv_length = length
                total = 4 + length + cipher.tag_length
                if size - pos < total:
                    break
                wire = view[pos : pos + total]
                pos += total
                self._recv_length = None
                plain = cipher.decrypt(self._recv_seq, wire)
                wire.release()
                padding = plain[0]
                # RFC 4253 section 6: at least four bytes of padding, and a payload.
                if padding < 4 or padding + 1 >= length:
                    raise ProtocolError(f"bad padding length {padding}", field="padding_length")
                seq = self._recv_seq
                self._recv_seq = (seq + 1) & 0xFFFFFFFF
                self._recv_bytes += total
                self._recv_packets += 1
                self._handle(plain[1 : length - padding], seq, events)
        return pos

    def _check_length(self, length: int, cipher: PacketCipher) -> None:
        # OpenSSH packet.c ssh_packet_read_poll2: "Bad packet length" outside 5 to
        # PACKET_MAX_SIZE, and the encrypted part must fill whole blocks.
        aligned = length + 4 if cipher.aligns_length else length
        if length < 5 or length > self._config.max_packet_size or aligned % cipher.block_size:
            raise ProtocolError(f"bad packet length {length}", field="packet_length")

    # --- dispatch -----------------------------------------------------------------------

    def _handle(  # noqa: PLR0911, PLR0912 (one dispatch, in RFC order)
        self, payload: bytes, seq: int, events: list[TransportEvent]
    ) -> None:
        number = payload[0]
        kex = self._kex
        if number >= 50 and kex is None and self._host_key_blob is not None:
            # Most packets: for the layers above, with no key exchange running.
            events.append(PayloadReceived(payload=payload, sequence_number=seq))
            return
        if kex is not None and kex.ignore_next:
            # RFC 4253 section 7: the packet after a wrongly guessed KEXINIT is ignored,
            # exactly one. Strict kex (OpenSSH PROTOCOL 1.9) allows only a key exchange
            # method message there in the initial exchange.
            kex.ignore_next = False
            if self._strict and self._host_key_blob is None and number not in _KEX_METHOD_MESSAGES:
                raise ProtocolError(f"strict KEX violation: unexpected message {number}")
            return
        if number == MSG_DISCONNECT:
            self._receive_disconnect(payload, events)
            return
        initial = self._host_key_blob is None  # the first exchange has not ended
        in_kex = kex is not None and kex.peer is not None
        if self._strict and initial and number not in _KEX_MESSAGES:
            # OpenSSH PROTOCOL section 1.9: during the initial strict key exchange any
            # message the exchange does not need is fatal (the Terrapin fix).
            raise ProtocolError(f"strict KEX violation: unexpected message {number}")
        if number in (MSG_IGNORE, MSG_DEBUG):
            return
        if number == MSG_UNIMPLEMENTED:
            reader = Reader(payload, 1)
            events.append(UnimplementedReceived(sequence_number=reader.uint32("sequence number")))
            return
        if number == MSG_KEXINIT:
            self._receive_kexinit(payload, seq)
            return
        if 20 < number < 50:
            if kex is None or _EXPECTED.get(kex.step) != number:
                raise ProtocolError(f"unexpected key exchange message {number}")
            if number == MSG_NEWKEYS:
                self._receive_newkeys(payload, events)
            elif number == MSG_KEX_ECDH_INIT:
                self._receive_kex_init(payload)
            else:
                self._receive_kex_reply(payload)
            return
        if initial or in_kex:
            # RFC 4253 section 7.1: only transport messages between the peer's KEXINIT
            # and its NEWKEYS; nothing else before the first exchange ends.
            raise ProtocolError(f"message {number} during key exchange")
        if number == MSG_EXT_INFO:
            events.append(self._receive_ext_info(payload))
        elif number in (MSG_SERVICE_REQUEST, MSG_SERVICE_ACCEPT) or number >= 50:
            events.append(PayloadReceived(payload=payload, sequence_number=seq))
        else:
            # RFC 4253 section 11.4: unknown message numbers get UNIMPLEMENTED.
            self.send_unimplemented(seq)

    def _receive_disconnect(self, payload: bytes, events: list[TransportEvent]) -> None:
        reader = Reader(payload, 1)
        reason = reader.uint32("reason code")
        description = reader.text("description")
        self._closed = True
        events.append(DisconnectReceived(reason=reason, description=description))

    def _receive_ext_info(self, payload: bytes) -> ExtInfoReceived:
        # RFC 8308 section 2.3: byte 7, uint32 nr-extensions, then name/value strings.
        self._ext_infos += 1
        if self._ext_infos > (2 if self._role is Role.CLIENT else 1):
            raise ProtocolError("too many EXT_INFO messages")
        reader = Reader(payload, 1)
        count = reader.uint32("nr-extensions")
        if count > MAX_EXTENSIONS:
            raise ProtocolError(f"{count} extensions", field="nr-extensions")
        extensions = {}
        for _ in range(count):
            name = reader.text("extension-name", 256)
            extensions[name] = reader.string("extension-value")
        reader.end("EXT_INFO")
        return ExtInfoReceived(extensions=extensions)

    # --- key exchange (RFC 4253 sections 7 and 8) ---------------------------------------

    def _start_kex(self) -> None:
        if self._role is Role.SERVER:
            host_key_names = tuple(self._host_keys)
        else:
            host_key_names = self._config.host_key_algorithms
        pseudo: tuple[str, ...] = ()
        if self._session_id is None:
            # Pseudo-algorithms go in the first KEXINIT only (OpenSSH PROTOCOL 1.9,
            # RFC 8308 section 2.1).
            if self._role is Role.CLIENT:
                pseudo = (EXT_INFO_CLIENT, STRICT_CLIENT)
            else:
                pseudo = (STRICT_SERVER,)
        proposal, lists = _proposal(self._config, host_key_names, pseudo)
        # byte 20, byte[16] cookie (random), then the proposal (RFC 4253 section 7.1).
        kexinit = bytes([MSG_KEXINIT]) + self._random(16) + proposal
        self._kex = _KexRun(kexinit, lists)
        self._send_packet(kexinit)

    def _receive_kexinit(self, payload: bytes, seq: int) -> None:
        peer = _Kexinit(payload)
        if self._kex is None:
            # The peer starts a rekey: answer with our own KEXINIT.
            self._start_kex()
        kex = self._kex
        if kex is None or kex.peer is not None:
            raise ProtocolError("KEXINIT during a key exchange")
        initial = self._session_id is None
        ours = kex.ours_lists
        if initial:
            # Strict only when both KEXINITs carry their side's marker.
            theirs, own = (
                (STRICT_CLIENT, STRICT_SERVER)
                if self._role is Role.SERVER
                else (STRICT_SERVER, STRICT_CLIENT)
            )
            self._strict = theirs in peer.lists[0] and own in ours[0]
            # OpenSSH PROTOCOL 1.9: with strict kex the KEXINIT must be the first
            # packet; anything before it (a Terrapin-injected IGNORE) is fatal.
            if self._strict and seq != 0:
                raise ProtocolError("strict KEX violation: KEXINIT was not the first packet")
            if self._role is Role.SERVER:
                self._ext_info_c = EXT_INFO_CLIENT in peer.lists[0]
        client, server = (peer.lists, ours) if self._role is Role.SERVER else (ours, peer.lists)
        algorithms = self._choose(client, server)
        kex.peer = peer
        kex.algorithms = algorithms
        # RFC 4253 section 7: the peer's guess is right only when both sides list the
        # same kex algorithm first and the same host key algorithm first (OpenSSH
        # kex.c proposals_match); then its guessed packet is the first kex packet.
        # Otherwise it is ignored, even when the negotiation picks the algorithm the
        # peer guessed: the peer judges its guess by the same rule and sends its
        # packet again (Dropbear does, unless both sides list kexguess2@matt.ucc.asn.au).
        if peer.first_kex_follows and (
            peer.lists[0][:1] != ours[0][:1] or peer.lists[1][:1] != ours[1][:1]
        ):
            kex.ignore_next = True
        method = make_kex(algorithms.kex, self._random)
        kex.method = method
        if self._role is Role.CLIENT:
            # RFC 8731 section 3: byte 30, string Q_C.
            kex.client_value = method.client_init()
            self._send_packet(bytes([MSG_KEX_ECDH_INIT]) + encode_string(kex.client_value))
            kex.step = _Step.KEX_REPLY
        else:
            kex.step = _Step.KEX_INIT

    def _choose(
        self, client: Sequence[tuple[str, ...]], server: Sequence[tuple[str, ...]]
    ) -> Algorithms:
        pseudo = {STRICT_CLIENT, STRICT_SERVER, EXT_INFO_CLIENT, "ext-info-s"}
        kex = _negotiate("kex_algorithms", [n for n in client[0] if n not in pseudo], server[0])
        host_key = _negotiate("server_host_key_algorithms", client[1], server[1])
        cipher_cs = _negotiate("encryption_algorithms_client_to_server", client[2], server[2])
        cipher_sc = _negotiate("encryption_algorithms_server_to_client", client[3], server[3])
        # OpenSSH kex.c choose_enc/choose_mac: AEAD ciphers make the MAC irrelevant.
        mac_cs = (
            None
            if CIPHER_SPECS[cipher_cs].aead
            else _negotiate("mac_algorithms_client_to_server", client[4], server[4])
        )
        mac_sc = (
            None
            if CIPHER_SPECS[cipher_sc].aead
            else _negotiate("mac_algorithms_server_to_client", client[5], server[5])
        )
        return Algorithms(
            kex=kex,
            host_key=host_key,
            cipher_client_to_server=cipher_cs,
            cipher_server_to_client=cipher_sc,
            mac_client_to_server=mac_cs,
            mac_server_to_client=mac_sc,
            compression_client_to_server=_negotiate(
                "compression_algorithms_client_to_server", client[6], server[6]
            ),
            compression_server_to_client=_negotiate(
                "compression_algorithms_server_to_client", client[7], server[7]
            ),
            strict_kex=self._strict,
        )

    def _exchange_hash(
        self,
        kex: _KexRun,
        host_key: bytes,
        client_value: bytes,
        server_value: bytes,
        shared: bytes,
    ) -> bytes:
        # RFC 4253 section 8 / RFC 8731 section 3: H = HASH(string V_C, string V_S,
        # string I_C, string I_S, string K_S, string Q_C, string Q_S, K).
        ours, theirs = kex.ours, kex.negotiated()[2].payload
        own_version = self._config.version.encode("ascii")
        peer_version = (self._peer_version or "").encode("ascii")
        if self._role is Role.CLIENT:
            versions = encode_string(own_version) + encode_string(peer_version)
            inits = encode_string(ours) + encode_string(theirs)
        else:
            versions = encode_string(peer_version) + encode_string(own_version)
            inits = encode_string(theirs) + encode_string(ours)
        return hashlib.sha256(
            versions
            + inits
            + encode_string(host_key)
            + encode_string(client_value)
            + encode_string(server_value)
            + shared
        ).digest()

    def _receive_kex_init(self, payload: bytes) -> None:
        kex = self._running()
        method, algorithms, _ = kex.negotiated()
        reader = Reader(payload, 1)
        client_value = reader.string("client public value", MAX_KEX_VALUE)
        reader.end("KEX_ECDH_INIT")
        server_value, shared = method.server_reply(client_value)
        host_key = self._host_keys[algorithms.host_key]
        blob = host_key.public_blob
        exchange_hash = self._exchange_hash(kex, blob, client_value, server_value, shared)
        signature = host_key.sign(exchange_hash, algorithms.host_key)
        # RFC 8731 section 3: byte 31, string K_S, string Q_S, string signature.
        self._send_packet(
            bytes([MSG_KEX_ECDH_REPLY])
            + encode_string(blob)
            + encode_string(server_value)
            + encode_string(signature)
        )
        kex.host_key = blob
        self._send_newkeys(kex, shared, exchange_hash)

    def _receive_kex_reply(self, payload: bytes) -> None:
        kex = self._running()
        method, algorithms, _ = kex.negotiated()
        reader = Reader(payload, 1)
        host_key = reader.string("host key", MAX_KEX_VALUE)
        server_value = reader.string("server public value", MAX_KEX_VALUE)
        signature = reader.string("signature", MAX_KEX_VALUE)
        reader.end("KEX_ECDH_REPLY")
        algorithm = algorithms.host_key
        try:
            blob_type: str | None = Reader(host_key).text("host key type", 64)
        except ProtocolError:
            blob_type = None
        if blob_type != key_type(algorithm):
            raise ProtocolError(
                f"host key is not a {algorithm} key", reason=DisconnectReason.KEY_EXCHANGE_FAILED
            )
        if self._host_key_blob is None:
            verify = self._verify_host_key
            if verify is None or not verify(algorithm, host_key):
                raise ProtocolError(
                    "host key not accepted", reason=DisconnectReason.HOST_KEY_NOT_VERIFIABLE
                )
        elif host_key != self._host_key_blob:
            raise ProtocolError(
                "host key changed during rekey", reason=DisconnectReason.HOST_KEY_NOT_VERIFIABLE
            )
        shared = method.client_finish(server_value)
        exchange_hash = self._exchange_hash(kex, host_key, kex.client_value, server_value, shared)
        if not verify_signature(algorithm, host_key, signature, exchange_hash):
            raise ProtocolError(
                "bad host key signature", reason=DisconnectReason.KEY_EXCHANGE_FAILED
            )
        kex.host_key = host_key
        self._send_newkeys(kex, shared, exchange_hash)

    def _running(self) -> _KexRun:
        if self._kex is None:
            raise ProtocolError("key exchange message outside a key exchange")
        return self._kex

    def _send_newkeys(self, kex: _KexRun, shared: bytes, exchange_hash: bytes) -> None:
        """Send NEWKEYS and switch our sending keys; prepare the receiving ones."""
        _, algorithms, _ = kex.negotiated()
        if self._session_id is None:
            self._session_id = exchange_hash
        session_id = self._session_id

        def key(letter: bytes, size: int) -> bytes:
            return derive_key(shared, exchange_hash, letter, session_id, size) if size else b""

        # RFC 4253 section 7.2: letters A-F are IV, key and MAC key, client to server
        # first (A, C, E), then server to client (B, D, F).
        keys = {}
        for direction, cipher, mac, (iv_letter, key_letter, mac_letter) in (
            (
                Role.CLIENT,
                algorithms.cipher_client_to_server,
                algorithms.mac_client_to_server,
                (b"A", b"C", b"E"),
            ),
            (
                Role.SERVER,
                algorithms.cipher_server_to_client,
                algorithms.mac_server_to_client,
                (b"B", b"D", b"F"),
            ),
        ):
            spec = CIPHER_SPECS[cipher]
            mac_length = MAC_SPECS[mac][1] if mac is not None else 0
            keys[direction] = make_cipher(
                cipher,
                key(key_letter, spec.key_length),
                key(iv_letter, spec.iv_length),
                mac,
                key(mac_letter, mac_length),
                encrypt=direction is self._role,
            )
        peer = Role.SERVER if self._role is Role.CLIENT else Role.CLIENT
        kex.recv_cipher = keys[peer]
        self._send_packet(bytes([MSG_NEWKEYS]))
        self._send_cipher = keys[self._role]
        if self._strict:
            # OpenSSH PROTOCOL 1.9: strict kex resets the sequence number at NEWKEYS.
            self._send_seq = 0
        # OpenSSH packet.c ssh_set_newkeys: each direction's budget restarts with its
        # new keys, so what was held back during the exchange counts towards the next.
        self._send_bytes = self._send_packets = 0
        self._rekey_limit = min(
            _rekey_bytes(algorithms.cipher_client_to_server, self._config.rekey_bytes),
            _rekey_bytes(algorithms.cipher_server_to_client, self._config.rekey_bytes),
        )
        kex.sent_newkeys = True
        kex.step = _Step.NEWKEYS
        if self._role is Role.SERVER and self._ext_info_c and self._host_key_blob is None:
            # RFC 8308 section 2.4: the server's EXT_INFO is the first message after
            # its first NEWKEYS.
            self._send_packet(
                bytes([MSG_EXT_INFO])
                + encode_uint32(1)
                + encode_string(b"server-sig-algs")
                + encode_name_list(self._config.server_sig_algs)
            )
        pending, self._pending = self._pending, []
        for payload in pending:
            self._send_packet(payload)

    def _receive_newkeys(self, payload: bytes, events: list[TransportEvent]) -> None:
        kex = self._running()
        _, algorithms, _ = kex.negotiated()
        if len(payload) != 1 or kex.recv_cipher is None:
            raise ProtocolError("malformed NEWKEYS")
        self._recv_cipher = kex.recv_cipher
        if self._strict:
            self._recv_seq = 0
        initial = self._host_key_blob is None
        self._host_key_blob = kex.host_key
        self._kex = None
        self._recv_bytes = self._recv_packets = 0
        rekey_time = self._config.rekey_time
        self._rekey_deadline = (
            self._now + rekey_time if rekey_time is not None and self._now is not None else None
        )
        session_id = self._session_id or b""
        events.append(
            KeyExchangeComplete(
                session_id=session_id,
                algorithms=algorithms,
                host_key=kex.host_key,
                initial=initial,
            )
        )

    def _maybe_rekey(self) -> None:
        """Start a rekey once a direction used up its byte or packet budget."""
        if self._closed or self._kex is not None or not self._authenticated:
            return
        limit = self._rekey_limit
        if (
            self._send_bytes >= limit
            or self._recv_bytes >= limit
            or self._send_packets >= MAX_PACKETS_BEFORE_REKEY
            or self._recv_packets >= MAX_PACKETS_BEFORE_REKEY
        ):
            self._start_kex()
