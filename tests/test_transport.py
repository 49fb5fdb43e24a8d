"""The transport in memory: client and server back to back, fixed random sources."""

from __future__ import annotations

import hashlib
import itertools
import random
import struct
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import paramiko
import pytest
from asyncssh.kex import Kex
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ptycore import DisconnectReason, ProtocolError
from ptycore._wire import Reader, encode_mpint, encode_name_list, encode_string, encode_uint32
from ptycore.transport import (
    CIPHERS,
    KEX_ALGORITHMS,
    MACS,
    DisconnectReceived,
    ExtInfoReceived,
    HostKey,
    KeyExchangeComplete,
    PayloadReceived,
    Role,
    Transport,
    TransportConfig,
    TransportEvent,
    UnimplementedReceived,
    VersionReceived,
    verify_signature,
)
from ptycore.transport._kex import derive_key
from ptycore.transport._transport import _Kexinit, _read_kexinit

Events = list[TransportEvent]
ALL_HOST_KEYS = ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256")


def fixed_random(seed: int) -> Callable[[int], bytes]:
    """A reproducible random source (tests only)."""
    generator = random.Random(seed)
    return generator.randbytes


@pytest.fixture(scope="module")
def host_keys() -> list[HostKey]:
    return [
        HostKey.generate("ssh-ed25519"),
        HostKey.generate("ssh-rsa", rsa_bits=2048),
        HostKey.generate("ecdsa-sha2-nistp256"),
    ]


def make_pair(
    host_keys: list[HostKey],
    client_config: TransportConfig | None = None,
    server_config: TransportConfig | None = None,
    verify: Callable[[str, bytes], bool] = lambda algorithm, blob: True,
) -> tuple[Transport, Transport]:
    server = Transport(
        Role.SERVER,
        server_config or TransportConfig(host_key_algorithms=ALL_HOST_KEYS),
        host_keys=host_keys,
        random=fixed_random(2),
    )
    client = Transport(
        Role.CLIENT,
        client_config or TransportConfig(),
        verify_host_key=verify,
        random=fixed_random(1),
    )
    return client, server


def pump(client: Transport, server: Transport, rounds: int = 20) -> tuple[Events, Events]:
    """Move bytes both ways until both sides are quiet."""
    client_events: Events = []
    server_events: Events = []
    for _ in range(rounds):
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            break
        if to_server:
            server_events += server.receive_data(to_server)
        if to_client:
            client_events += client.receive_data(to_client)
    return client_events, server_events


T = TypeVar("T")


def of_type(events: Events, kind: type[T]) -> list[T]:
    return [event for event in events if isinstance(event, kind)]


def connected(
    host_keys: list[HostKey], client_config: TransportConfig | None = None
) -> tuple[Transport, Transport]:
    client, server = make_pair(host_keys, client_config=client_config)
    client_events, server_events = pump(client, server)
    assert of_type(client_events, KeyExchangeComplete)[0].initial
    assert of_type(server_events, KeyExchangeComplete)[0].initial
    return client, server


COMBINATIONS = [
    (kex, cipher, mac, host_key)
    for kex, cipher, host_key in itertools.product(KEX_ALGORITHMS, CIPHERS, ALL_HOST_KEYS)
    for mac in (MACS if cipher.endswith("-ctr") else (None,))
]


@pytest.mark.parametrize(("kex", "cipher", "mac", "host_key"), COMBINATIONS)
def test_every_combination(
    host_keys: list[HostKey], kex: str, cipher: str, mac: str | None, host_key: str
) -> None:
    config = TransportConfig(
        kex_algorithms=(kex,),
        ciphers=(cipher,),
        macs=(mac,) if mac else MACS,
        host_key_algorithms=(host_key,),
    )
    client, server = make_pair(host_keys, client_config=config)
    client.send_payload(b"\x05" + encode_string(b"ssh-userauth"))
    client_events, server_events = pump(client, server)
    done = of_type(client_events, KeyExchangeComplete)[0]
    assert done == of_type(server_events, KeyExchangeComplete)[0]
    assert done.algorithms.kex == kex
    assert done.algorithms.cipher_client_to_server == cipher
    assert done.algorithms.mac_server_to_client == mac
    assert done.algorithms.host_key == host_key
    assert done.algorithms.strict_kex
    assert done.session_id == client.session_id == server.session_id
    assert of_type(client_events, ExtInfoReceived)[0].extensions["server-sig-algs"] == (
        b"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
        b"rsa-sha2-512,rsa-sha2-256"
    )
    assert (
        of_type(server_events, PayloadReceived)[0].payload == b"\x05\x00\x00\x00\x0cssh-userauth"
    )
    # Payloads of every size both ways, then a rekey in the middle of a transfer.
    sizes = (1, 15, 16, 17, 1000, 32768, 200_000)
    for size in sizes:
        server.send_payload(b"\x5e" + bytes([size % 251]) * size)
        client.send_payload(b"\x5f" + bytes([size % 13]) * size)
    client.rekey()
    client.send_payload(b"\x60after")
    client_events, server_events = pump(client, server)
    assert [len(e.payload) - 1 for e in of_type(client_events, PayloadReceived)] == list(sizes)
    received = [e.payload for e in of_type(server_events, PayloadReceived)]
    assert received[-1] == b"\x60after"
    assert len(received) == len(sizes) + 1
    rekeyed = of_type(server_events, KeyExchangeComplete)
    assert len(rekeyed) == 1
    assert not rekeyed[0].initial
    assert rekeyed[0].session_id == done.session_id


def test_fixed_random_gives_the_same_transcript(host_keys: list[HostKey]) -> None:
    config = TransportConfig(kex_algorithms=("curve25519-sha256",))
    transcripts = []
    for _ in range(2):
        client, server = make_pair(host_keys[:1], client_config=config)
        pump(client, server)
        transcripts.append(client.session_id)
    assert transcripts[0] == transcripts[1]


def test_rekey_by_bytes(host_keys: list[HostKey]) -> None:
    config = TransportConfig(rekey_bytes=65536)
    client, server = connected(host_keys, client_config=config)
    client.set_authenticated()
    for _ in range(10):
        client.send_payload(b"\x5e" + bytes(16000))
    client_events, server_events = pump(client, server)
    assert len(of_type(server_events, PayloadReceived)) == 10
    # The fifth payload passes 64 KiB; the five held back during that rekey (80 KB)
    # start another.
    assert [e.initial for e in of_type(client_events, KeyExchangeComplete)] == [False, False]


def test_payloads_held_during_a_rekey_count_towards_the_next(host_keys: list[HostKey]) -> None:
    """OpenSSH packet.c ssh_set_newkeys: the sending budget restarts at our NEWKEYS,
    so what was queued during the exchange and sent right after it counts."""
    config = TransportConfig(rekey_bytes=65536)
    client, server = connected(host_keys, client_config=config)
    client.set_authenticated()
    client.rekey()
    for _ in range(10):
        client.send_payload(b"\x5e" + bytes(16000))  # held until the client's NEWKEYS
    client_events, server_events = pump(client, server)
    assert len(of_type(server_events, PayloadReceived)) == 10
    assert [e.initial for e in of_type(client_events, KeyExchangeComplete)] == [False, False]


def test_rekey_by_time(host_keys: list[HostKey]) -> None:
    config = TransportConfig(rekey_time=3600.0)
    client, server = make_pair(host_keys, client_config=config)
    assert client.get_timer() is None
    to_server = client.data_to_send()
    server.receive_data(to_server)
    client.receive_data(server.data_to_send(), now=100.0)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send(), now=101.0)
    server.receive_data(client.data_to_send())
    assert client.session_id is not None
    assert client.get_timer() is None  # not before authentication
    client.set_authenticated()
    assert client.get_timer() == 3701.0
    client.handle_timer(3700.0)
    assert client.data_to_send() == b""
    client.handle_timer(3701.0)
    assert client.get_timer() is None  # a key exchange is running
    client_events, _ = pump(client, server)
    assert [e.initial for e in of_type(client_events, KeyExchangeComplete)] == [False]
    # The exchange ended after the last clock reading, 3701: the next one is due an
    # hour after that.
    assert client.get_timer() == 7301.0


def test_server_initiated_rekey_and_payloads_held_back(host_keys: list[HostKey]) -> None:
    client, server = connected(host_keys)
    server.rekey()
    server.send_payload(b"\x5ewaiting")  # held until the server's NEWKEYS
    first = server.data_to_send()
    assert b"waiting" not in first
    client_events = client.receive_data(first)
    assert client_events == []
    client_events, server_events = pump(client, server)
    assert of_type(client_events, PayloadReceived)[0].payload == b"\x5ewaiting"
    assert len(of_type(server_events, KeyExchangeComplete)) == 1


def test_byte_by_byte(host_keys: list[HostKey]) -> None:
    client, server = make_pair(host_keys)
    client.send_payload(b"\x05" + encode_string(b"ssh-userauth"))
    events: Events = []
    for _ in range(10):
        data = client.data_to_send()
        for index in range(len(data)):
            events += server.receive_data(data[index : index + 1])
        client.receive_data(server.data_to_send())
    assert [type(e) for e in events] == [VersionReceived, KeyExchangeComplete, PayloadReceived]


def test_client_accepts_lines_before_the_version(host_keys: list[HostKey]) -> None:
    client, _ = make_pair(host_keys)
    events = client.receive_data(b"hello\r\nsecond line\nSSH-2.0-Other_1.0 comment\r\n")
    assert events == [VersionReceived(version="SSH-2.0-Other_1.0 comment")]


def plain_packet(payload: bytes, block: int = 8) -> bytes:
    """An unencrypted binary packet (RFC 4253 section 6) as sent before NEWKEYS."""
    padding = block - (len(payload) + 5) % block
    if padding < 4:
        padding += block
    return struct.pack(">IB", len(payload) + padding + 1, padding) + payload + bytes(padding)


def read_disconnect(data: bytes) -> tuple[int, str]:
    """The reason and description of the plaintext DISCONNECT at the end of data."""
    start = data.rindex(b"\x01\x00\x00\x00")  # message 1, reason < 256
    reader = Reader(data, start + 1)
    return reader.uint32("reason"), reader.text("description")


def server_after_version(host_keys: list[HostKey]) -> Transport:
    server = Transport(Role.SERVER, host_keys=host_keys[:1], random=fixed_random(2))
    server.data_to_send()
    assert server.receive_data(b"SSH-2.0-Test\r\n") == [VersionReceived(version="SSH-2.0-Test")]
    return server


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET / HTTP/1.1\r\n", DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED),
        (b"SSH-1.5-Old\r\n", DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED),
        (b"SSH-2.0-" + b"x" * 300, DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED),
    ],
)
def test_server_refuses_bad_versions(
    host_keys: list[HostKey], data: bytes, reason: DisconnectReason
) -> None:
    server = Transport(Role.SERVER, host_keys=host_keys[:1])
    server.data_to_send()
    with pytest.raises(ProtocolError) as caught:
        server.receive_data(data)
    assert caught.value.reason is reason
    assert read_disconnect(server.data_to_send())[0] == reason
    assert server.closed
    assert server.receive_data(b"more") == []


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xff\xff\xff" + bytes(16),  # length over the limit
        b"\x00\x00\x00\x01\x00",  # length under the minimum
        b"\x00\x00\x00\x0d\x04" + bytes(13),  # not a multiple of the block size
        b"\x00\x00\x00\x0c\x03" + bytes(11),  # padding under four bytes
        plain_packet(b"\x14" + bytes(16)),  # truncated KEXINIT
        plain_packet(b"\x15"),  # NEWKEYS out of order
        plain_packet(b"\x32user"),  # USERAUTH_REQUEST before the key exchange
    ],
)
def test_garbage_queues_disconnect_before_the_error(
    host_keys: list[HostKey], garbage: bytes
) -> None:
    server = server_after_version(host_keys)
    with pytest.raises(ProtocolError) as caught:
        server.receive_data(garbage)
    assert read_disconnect(server.data_to_send()) == (caught.value.reason, caught.value.message)
    with pytest.raises(RuntimeError):
        server.send_payload(b"\x5e")


def kexinit(
    kex: tuple[str, ...],
    first_kex_follows: bool = False,
    host_key_algorithms: tuple[str, ...] = ("ssh-ed25519",),
) -> bytes:
    lists = [
        kex,
        host_key_algorithms,
        ("aes128-ctr",),
        ("aes128-ctr",),
        ("hmac-sha2-256-etm@openssh.com",),
        ("hmac-sha2-256-etm@openssh.com",),
        ("none",),
        ("none",),
        (),
        (),
    ]
    body = b"".join(encode_name_list(names) for names in lists)
    return b"\x14" + bytes(16) + body + bytes([first_kex_follows]) + encode_uint32(0)


STRICT = ("curve25519-sha256", "kex-strict-c-v00@openssh.com")


def test_strict_kex_refuses_a_packet_before_kexinit(host_keys: list[HostKey]) -> None:
    server = server_after_version(host_keys)
    # Terrapin: an injected IGNORE shifts the sequence numbers.
    data = plain_packet(b"\x02" + encode_string(b"")) + plain_packet(kexinit(STRICT))
    with pytest.raises(ProtocolError, match="strict KEX"):
        server.receive_data(data)
    assert read_disconnect(server.data_to_send())[0] == DisconnectReason.PROTOCOL_ERROR


def test_strict_kex_refuses_ignore_during_the_initial_exchange(host_keys: list[HostKey]) -> None:
    server = server_after_version(host_keys)
    server.receive_data(plain_packet(kexinit(STRICT)))
    with pytest.raises(ProtocolError, match="strict KEX"):
        server.receive_data(plain_packet(b"\x02" + encode_string(b"")))
    assert server.closed


def test_without_strict_kex_ignore_is_tolerated(host_keys: list[HostKey]) -> None:
    server = server_after_version(host_keys)
    assert server.receive_data(plain_packet(b"\x02" + encode_string(b"x"))) == []
    assert server.receive_data(plain_packet(kexinit(("curve25519-sha256",)))) == []
    assert server.receive_data(plain_packet(b"\x04\x00" + encode_string(b"dbg") * 2)) == []
    assert not server.closed


def test_wrong_guess_is_skipped(host_keys: list[HostKey]) -> None:
    # The client's first choice is not the server's: the guessed packet is dropped.
    offer = ("curve25519-sha256@libssh.org", "curve25519-sha256")
    server_config = TransportConfig(kex_algorithms=("curve25519-sha256",))
    server = Transport(Role.SERVER, server_config, host_keys=host_keys[:1])
    server.receive_data(b"SSH-2.0-Test\r\n")
    server.data_to_send()
    guessed = plain_packet(b"\x1e" + encode_string(bytes(32)))  # would fail if used
    assert server.receive_data(plain_packet(kexinit(offer, True)) + guessed) == []
    assert not server.closed


def plain_payloads(data: bytes) -> list[bytes]:
    """The payloads of unencrypted packets (a version line first is skipped)."""
    if data.startswith(b"SSH-"):
        data = data[data.index(b"\n") + 1 :]
    payloads = []
    while data:
        length, padding = struct.unpack(">IB", data[:5])
        payloads.append(data[5 : 4 + length - padding])
        data = data[4 + length :]
    return payloads


GUESS_CASES = {
    # (client kex list, client host key list, server kex list): is the guess right?
    "right": (("curve25519-sha256",), ("ssh-ed25519",), ("curve25519-sha256",), True),
    # Dropbear against the default server: the negotiation picks the client's guess,
    # but the server's first choice differs, so both sides call the guess wrong.
    "wrong kex": (
        ("curve25519-sha256",),
        ("ssh-ed25519",),
        ("curve25519-sha256@libssh.org", "curve25519-sha256"),
        False,
    ),
    "wrong host key": (
        ("curve25519-sha256",),
        ("rsa-sha2-256", "ssh-ed25519"),
        ("curve25519-sha256",),
        False,
    ),
}


@pytest.mark.parametrize("case", GUESS_CASES)
def test_first_kex_packet_follows(host_keys: list[HostKey], case: str) -> None:
    """RFC 4253 section 7: a right guess is the first kex packet; after a wrong one
    exactly one packet is ignored and the client's next KEX_ECDH_INIT is used. The
    client here is scripted from the RFCs, and the guess arrives with the version and
    KEXINIT before the server's own KEXINIT was read."""
    client_kex, client_host_keys, server_kex, right = GUESS_CASES[case]
    server = Transport(
        Role.SERVER,
        TransportConfig(kex_algorithms=server_kex),
        host_keys=host_keys[:1],
        random=fixed_random(2),
    )
    version = b"SSH-2.0-Guesser"
    i_c = kexinit((*client_kex, "kex-strict-c-v00@openssh.com"), True, client_host_keys)
    private = x25519.X25519PrivateKey.generate()
    q_c = private.public_key().public_bytes_raw()
    real = plain_packet(b"\x1e" + encode_string(q_c))
    # A wrong guess carries a public value that would end the exchange if it were used.
    guessed = real if right else plain_packet(b"\x1e" + encode_string(bytes(32)))
    events = server.receive_data(version + b"\r\n" + plain_packet(i_c) + guessed)
    assert events == [VersionReceived(version=version.decode())]
    out = server.data_to_send()
    if not right:
        assert [p[0] for p in plain_payloads(out)] == [20]  # its KEXINIT, no reply yet
        assert server.receive_data(real) == []
        out += server.data_to_send()
    i_s, reply, newkeys = plain_payloads(out)
    assert (i_s[0], newkeys) == (20, b"\x15")
    # RFC 8731 section 3: byte 31, string K_S, string Q_S, string signature; the
    # signature covers H = SHA-256(V_C, V_S, I_C, I_S, K_S, Q_C, Q_S, K).
    reader = Reader(reply, 1)
    k_s, q_s, signature = (reader.string(f) for f in ("K_S", "Q_S", "signature"))
    shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(q_s))
    exchange_hash = hashlib.sha256(
        encode_string(version)
        + encode_string(TransportConfig().version.encode())
        + encode_string(i_c)
        + encode_string(i_s)
        + encode_string(k_s)
        + encode_string(q_c)
        + encode_string(q_s)
        + encode_mpint(int.from_bytes(shared, "big"))
    ).digest()
    assert verify_signature("ssh-ed25519", k_s, signature, exchange_hash)
    [done] = server.receive_data(plain_packet(b"\x15"))
    assert isinstance(done, KeyExchangeComplete)
    assert done.session_id == exchange_hash
    assert done.algorithms.kex == "curve25519-sha256"
    assert done.algorithms.strict_kex
    assert not server.closed


@pytest.mark.parametrize("strict", [True, False])
def test_only_a_kex_message_may_follow_a_wrong_guess_with_strict_kex(
    host_keys: list[HostKey], strict: bool
) -> None:
    """OpenSSH PROTOCOL 1.9: the ignored packet is no loophole for an IGNORE (or any
    other message) in a strict initial exchange; without strict kex it is ignored."""
    server = server_after_version(host_keys)
    # A guess of a method the server lacks.
    offer = ("diffie-hellman-group14-sha256", *(STRICT if strict else STRICT[:1]))
    assert server.receive_data(plain_packet(kexinit(offer, True))) == []
    ignore = plain_packet(b"\x02" + encode_string(b""))
    if strict:
        with pytest.raises(ProtocolError, match="strict KEX violation: unexpected message 2"):
            server.receive_data(ignore)
        assert server.closed
    else:
        assert server.receive_data(ignore) == []
        assert not server.closed


def test_unknown_transport_message_gets_unimplemented(host_keys: list[HostKey]) -> None:
    client, server = connected(host_keys)
    # A message number the transport does not know, sent through the layer API
    # would be refused, so inject it below: number 8 is unassigned.
    client._send_packet(b"\x08")
    client_events, _ = pump(client, server)
    assert len(of_type(client_events, UnimplementedReceived)) == 1


def test_tampered_packet_is_a_mac_error(host_keys: list[HostKey]) -> None:
    for cipher in CIPHERS:
        client, server = connected(host_keys, client_config=TransportConfig(ciphers=(cipher,)))
        client.send_payload(b"\x5e" + bytes(100))
        data = bytearray(client.data_to_send())
        data[-20] ^= 1
        with pytest.raises(ProtocolError) as caught:
            server.receive_data(bytes(data))
        assert caught.value.reason is DisconnectReason.MAC_ERROR
        assert server.data_to_send()  # the encrypted DISCONNECT


def test_rejected_host_key(host_keys: list[HostKey]) -> None:
    client, server = make_pair(host_keys, verify=lambda algorithm, blob: False)
    with pytest.raises(ProtocolError) as caught:
        pump(client, server)
    assert caught.value.reason is DisconnectReason.HOST_KEY_NOT_VERIFIABLE


def test_no_common_algorithm(host_keys: list[HostKey]) -> None:
    client, server = make_pair(
        host_keys,
        client_config=TransportConfig(ciphers=("aes128-ctr",)),
        server_config=TransportConfig(ciphers=("aes256-ctr",)),
    )
    with pytest.raises(ProtocolError) as caught:
        pump(client, server)
    assert caught.value.reason is DisconnectReason.KEY_EXCHANGE_FAILED


def test_disconnect_both_ways(host_keys: list[HostKey]) -> None:
    client, server = connected(host_keys)
    server.disconnect(DisconnectReason.BY_APPLICATION, "bye")
    events = client.receive_data(server.data_to_send())
    assert events == [DisconnectReceived(reason=11, description="bye")]
    assert client.closed


def test_send_payload_misuse(host_keys: list[HostKey]) -> None:
    client, _ = make_pair(host_keys)
    for payload in (b"", b"\x01", b"\x07", b"\x14", b"\x31", b"\x5e" + bytes(300_000)):
        with pytest.raises(ValueError, match=r"payload|messages"):
            client.send_payload(payload)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        TransportConfig(ciphers=("3des-cbc",))
    with pytest.raises(ValueError, match="twice"):
        TransportConfig(macs=MACS + MACS[:1])
    with pytest.raises(ValueError, match="identification"):
        TransportConfig(version="SSH-1.5-x")
    with pytest.raises(ValueError, match="a server needs"):
        Transport(Role.SERVER, TransportConfig(host_key_algorithms=("rsa-sha2-512",)))
    with pytest.raises(ValueError, match="verify_host_key"):
        Transport(Role.CLIENT)


def test_a_server_offers_the_configured_host_key_algorithms_it_has_keys_for(
    host_keys: list[HostKey],
) -> None:
    ed25519_key, rsa_key, ecdsa_key = host_keys
    keys = [ecdsa_key, rsa_key, ed25519_key]
    offered = TransportConfig(host_key_algorithms=ALL_HOST_KEYS).host_keys_by_algorithm(keys)
    assert offered == {
        "ssh-ed25519": ed25519_key,
        "rsa-sha2-512": rsa_key,
        "rsa-sha2-256": rsa_key,
        "ecdsa-sha2-nistp256": ecdsa_key,
    }
    assert list(offered) == list(ALL_HOST_KEYS)
    # The defaults leave the NIST curve out: an ECDSA key alone makes none of them.
    assert TransportConfig().host_keys_by_algorithm([ecdsa_key]) == {}


# --- known answers ------------------------------------------------------------------------


def test_key_derivation_matches_paramiko_and_asyncssh() -> None:
    """RFC 4253 section 7.2, against two independent implementations."""
    shared_int = int.from_bytes(bytes(range(1, 33)), "big")
    exchange_hash = bytes(range(100, 132))
    session_id = bytes(range(50, 82))
    paramiko_transport: Any = paramiko.Transport
    asyncssh_kex: Any = SimpleNamespace(_hash_alg=hashlib.sha256)
    for shared, paramiko_k in (
        (encode_mpint(shared_int), shared_int),  # curve25519: K is an mpint
        (encode_string(bytes(range(32))), bytes(range(32))),  # mlkem768x25519: a string
    ):
        fake: Any = SimpleNamespace(
            K=paramiko_k,
            H=exchange_hash,
            session_id=session_id,
            kex_engine=SimpleNamespace(hash_algo=hashlib.sha256),
            _logged_hash_selection=True,
        )
        fake._add_K = lambda message, fake=fake: paramiko_transport._add_K(fake, message)
        for letter, size in ((b"A", 12), (b"C", 64), (b"E", 100)):
            ours = derive_key(shared, exchange_hash, letter, session_id, size)
            assert ours == paramiko_transport._compute_key(fake, letter.decode(), size)
            assert ours == Kex.compute_key(
                asyncssh_kex, shared, exchange_hash, letter, session_id, size
            )


def test_terrapin_prefix_injection_is_fatal_for_the_client(host_keys: list[HostKey]) -> None:
    """A man in the middle adds an IGNORE before the server's KEXINIT to shift the
    client's sequence numbers (Terrapin); with strict kex the client refuses."""
    client, server = make_pair(host_keys)
    client.data_to_send()
    version, packets = server.data_to_send().split(b"\r\n", 1)
    injected = version + b"\r\n" + plain_packet(b"\x02" + encode_string(b"")) + packets
    with pytest.raises(ProtocolError, match="strict KEX"):
        client.receive_data(injected)
    assert read_disconnect(client.data_to_send())[0] == DisconnectReason.PROTOCOL_ERROR


@pytest.mark.parametrize("strict", [True, False])
def test_sequence_numbers_restart_only_with_strict_kex(
    host_keys: list[HostKey], strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        if not strict:
            # A client from before strict kex: its KEXINIT lacks the marker.
            patch.setattr("ptycore.transport._transport.STRICT_CLIENT", "old-client@example.com")
        client, server = make_pair(host_keys)
    client.send_payload(b"\x05" + encode_string(b"ssh-userauth"))
    _, server_events = pump(client, server)
    assert of_type(server_events, KeyExchangeComplete)[0].algorithms.strict_kex is strict
    # KEXINIT, KEX_ECDH_INIT and NEWKEYS were packets 0, 1 and 2.
    assert of_type(server_events, PayloadReceived)[0].sequence_number == (0 if strict else 3)


def client_stream(host_keys: list[HostKey]) -> bytes:
    """Everything a client sends in a full exchange and three payloads (fixed randoms)."""
    config = TransportConfig(kex_algorithms=("curve25519-sha256",))
    client, server = make_pair(host_keys[:1], client_config=config)
    for size in (10, 5000, 40000):
        client.send_payload(b"\x5e" + bytes(size))
    stream = b""
    for _ in range(5):
        data = client.data_to_send()
        stream += data
        server.receive_data(data)
        client.receive_data(server.data_to_send())
    return stream


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=50_000), max_size=30))
def test_any_chunking_gives_the_same_events(host_keys: list[HostKey], cuts: list[int]) -> None:
    stream = client_stream(host_keys)

    def fresh_server() -> Transport:
        return make_pair(host_keys[:1])[1]

    expected = fresh_server().receive_data(stream)
    assert len(of_type(expected, PayloadReceived)) == 3
    server = fresh_server()
    events: Events = []
    bounds = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    for start, stop in itertools.pairwise(bounds):
        events += server.receive_data(stream[start:stop])
    assert events == expected


def test_ext_info_limits(host_keys: list[HostKey]) -> None:
    client, server = connected(host_keys)  # the client has had one EXT_INFO already
    ext_info = b"\x07" + encode_uint32(1) + encode_string(b"x@example.com") + encode_string(b"")
    server._send_packet(ext_info)
    assert client.receive_data(server.data_to_send()) == [
        ExtInfoReceived(extensions={"x@example.com": b""})
    ]
    server._send_packet(ext_info)
    with pytest.raises(ProtocolError, match="too many EXT_INFO"):
        client.receive_data(server.data_to_send())
    # A server takes one from the client; 1023 extensions at most.
    client, server = connected(host_keys)
    too_many = b"\x07" + encode_uint32(1024)
    client._send_packet(too_many)
    with pytest.raises(ProtocolError, match="1024 extensions"):
        server.receive_data(client.data_to_send())


def test_both_sides_start_a_rekey_at_once(host_keys: list[HostKey]) -> None:
    client, server = connected(host_keys)
    client.rekey()
    server.rekey()
    client.rekey()  # already running: nothing more is sent
    server.send_payload(b"\x5eduring")
    client_events, server_events = pump(client, server)
    assert [e.initial for e in of_type(client_events, KeyExchangeComplete)] == [False]
    assert [e.initial for e in of_type(server_events, KeyExchangeComplete)] == [False]
    assert of_type(client_events, PayloadReceived)[0].payload == b"\x5eduring"


def test_only_kexinits_of_a_usual_size_are_kept_for_the_next_client() -> None:
    """The parsed name-lists of a KEXINIT are kept for clients that send the same
    one; a large KEXINIT is read but not kept (the cache holds 64)."""
    usual = kexinit(("curve25519-sha256",))
    large = kexinit(tuple(f"kex-{number:04}@example.com" for number in range(300)))
    assert len(large) > 4096 + 17
    _read_kexinit.cache_clear()
    assert _Kexinit(usual).lists == _Kexinit(usual).lists
    assert _read_kexinit.cache_info().currsize == 1
    assert _read_kexinit.cache_info().hits == 1
    assert len(_Kexinit(large).lists[0]) == 300
    assert _read_kexinit.cache_info().currsize == 1


def test_an_ecdsa_key_on_another_curve_is_refused_by_name() -> None:
    with pytest.raises(
        ValueError, match=r"ECDSA on secp224r1 is not supported, only on secp256r1, secp384r1"
    ):
        HostKey(ec.generate_private_key(ec.SECP224R1()))


# --- ECDSA on P-384 and P-521 (RFC 5656) ------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"])
def test_ecdsa_p384_and_p521_host_keys(algorithm: str) -> None:
    """Opt-in like nistp256: offered only when named, then the exchange is signed with
    the curve's hash and the client verifies it."""
    key = HostKey.generate(algorithm)
    assert TransportConfig().host_keys_by_algorithm([key]) == {}
    config = TransportConfig(host_key_algorithms=(*ALL_HOST_KEYS, algorithm))
    assert config.host_keys_by_algorithm([key]) == {algorithm: key}
    seen: list[tuple[str, bytes]] = []

    def verify(name: str, blob: bytes) -> bool:
        seen.append((name, blob))
        return True

    client_config = TransportConfig(host_key_algorithms=(algorithm,))
    client, server = make_pair([key], client_config, config, verify)
    client_events, server_events = pump(client, server)
    assert of_type(client_events, KeyExchangeComplete)[0].algorithms.host_key == algorithm
    assert of_type(server_events, KeyExchangeComplete)[0].host_key == key.public_blob
    assert seen == [(algorithm, key.public_blob)]


class _MislabelledKey(HostKey):
    """A P-384 key whose blob names another curve: what a broken or hostile server sends."""

    __slots__ = ()

    @property
    def public_blob(self) -> bytes:
        return super().public_blob.replace(
            encode_string(b"nistp384"), encode_string(b"nistp256"), 1
        )


def test_a_host_key_blob_naming_another_curve_is_a_protocol_error() -> None:
    """RFC 5656 section 3.1: the curve identifier must be the key type's curve."""
    algorithm = "ecdsa-sha2-nistp384"
    key = _MislabelledKey(ec.generate_private_key(ec.SECP384R1()))
    assert b"nistp256" in key.public_blob
    config = TransportConfig(host_key_algorithms=(algorithm,))
    client, server = make_pair([key], config, config)
    with pytest.raises(ProtocolError, match="bad host key signature") as caught:
        pump(client, server)
    assert caught.value.reason is DisconnectReason.KEY_EXCHANGE_FAILED
