"""authorized_keys options (ptycore.keyoptions), LoginRestrictions and how the core
applies them: sshd(8)'s own examples, OpenSSH's matching rules, Hypothesis, and a
client and server back to back in memory."""

from __future__ import annotations

import calendar
import datetime
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ptycore._certs import Certificate
from ptycore._wire import encode_string
from ptycore.auth import (
    AuthenticationSucceeded,
    AuthResult,
    LoginRestrictions,
    PeerAuthenticator,
    SimpleAuthenticator,
)
from ptycore.client import ClientConnection
from ptycore.connection import SessionEvent
from ptycore.keyoptions import (
    MAX_OPTIONS_LENGTH,
    UNRESTRICTED,
    KeyOptions,
    certificate_options,
    match_from,
    match_source_address,
    parse_expiry_time,
    parse_key_options,
)
from ptycore.requests import ExecRequest, PtyRequest, ShellRequest, SubsystemRequest, WindowSize
from ptycore.server import ServerConnection
from ptycore.session import RequestReceived, RequestRefused, ServerSession, SessionPolicy
from ptycore.transport import HostKey
from ptycore_common.credentials import parse_authorized_key

# -- sshd(8), AUTHORIZED_KEYS FILE FORMAT, its examples -----------------------------------

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKz1xL8uGU7LTgU2ZS6cMQyd4eUOUzEqYcPQSv5t4hgu"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("", KeyOptions()),
        (
            'restrict,command="dump /home"',
            KeyOptions(
                restricted=True,
                pty=False,
                agent_forwarding=False,
                x11_forwarding=False,
                command="dump /home",
            ),
        ),
        ('permitopen="192.0.2.1:80",permitopen="192.0.2.2:25"', KeyOptions()),
        ('permitlisten="localhost:8080",permitlisten="[::1]:22000"', KeyOptions()),
        (
            'tunnel="0",command="sh /etc/netstart tun0"',
            KeyOptions(command="sh /etc/netstart tun0"),
        ),
        (
            'restrict,command="uname -a",pty',
            KeyOptions(
                restricted=True,
                pty=True,
                agent_forwarding=False,
                x11_forwarding=False,
                command="uname -a",
            ),
        ),
        ("no-touch-required", KeyOptions()),
        ("verify-required", KeyOptions()),
        (
            'cert-authority,no-touch-required,principals="user_a"',
            KeyOptions(cert_authority=True, principals="user_a"),
        ),
        (
            'from="*.sales.example.net,!pc.sales.example.net"',
            KeyOptions(from_patterns="*.sales.example.net,!pc.sales.example.net"),
        ),
        (
            'command="dump /home",no-pty,no-port-forwarding',
            KeyOptions(pty=False, command="dump /home"),
        ),
    ],
)
def test_sshd_man_page_examples(options: str, expected: KeyOptions) -> None:
    line = f"{options} {KEY} user@example.net" if options else KEY
    parsed = parse_authorized_key(line.encode())
    assert parsed is not None
    assert parsed.options == expected


@pytest.mark.parametrize(
    ("field", "pty", "command"),
    [
        ("no-pty", False, None),
        ("NO-PTY", False, None),
        ("restrict", False, None),
        ("restrict,pty", True, None),
        ("pty,restrict", False, None),  # in order: restrict turns it off again
        ("no-pty,pty", True, None),
        ('command="echo \\"hi, there\\" \\\\n"', True, 'echo "hi, there" \\\\n'),
        ('COMMAND="x"', True, "x"),
        ("no-pty,,pty", True, None),  # sshd skips an empty option between commas
        ("no-pty,", False, None),  # the key follows the comma in a real line
        ('environment="A_1=b c",environment="=x"', True, None),
    ],
)
def test_flags_and_values(field: str, pty: bool, command: str | None) -> None:
    options = parse_key_options(field)
    assert (options.pty, options.command) == (pty, command)
    assert (options.restrictions.pty, options.restrictions.command) == (pty, command)


@pytest.mark.parametrize(
    ("field", "agent", "x11"),
    [
        ("", True, True),
        ("restrict", False, False),
        ("no-agent-forwarding", False, True),
        ("no-X11-forwarding", True, False),
        ("NO-x11-FORWARDING,No-Agent-Forwarding", False, False),  # names are case-insensitive
        ("restrict,agent-forwarding", True, False),
        ("restrict,X11-forwarding", False, True),
        ("restrict,x11-forwarding,agent-forwarding,pty", True, True),
        ("agent-forwarding,restrict", False, False),  # in order, as sshauthopt_parse
        ("no-agent-forwarding,agent-forwarding", True, True),
        ("no-pty,no-port-forwarding", True, True),  # port forwarding is not ptycore's
    ],
)
def test_forwarding_flags(field: str, agent: bool, x11: bool) -> None:
    options = parse_key_options(field)
    assert (options.agent_forwarding, options.x11_forwarding) == (agent, x11)
    restrictions = options.restrictions
    assert (restrictions.agent_forwarding, restrictions.x11_forwarding) == (agent, x11)
    policy = restrictions.session_policy(SessionPolicy())
    assert (policy.allow_agent_forwarding, policy.allow_x11_forwarding) == (agent, x11)


def test_only_a_key_without_restrictions_shares_unrestricted() -> None:
    assert parse_key_options("no-port-forwarding,user-rc").restrictions is UNRESTRICTED
    for field in ("no-agent-forwarding", "no-X11-forwarding", "restrict,pty"):
        assert parse_key_options(field).restrictions != UNRESTRICTED


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("frobnicate", "unknown key option"),
        ("no-pty,frobnicate", "unknown key option"),
        ("no-pty=yes", "unknown key option"),
        ("ptyx", "unknown key option"),
        ("no-restrict", "unknown key option"),  # restrict takes no "no-"
        ("command", "unknown key option"),
        ("command=x", "missing start quote"),
        ('command="x', "missing end quote"),
        ('command="x\\"', "missing end quote"),
        ('command="a",command="b"', 'multiple "command" clauses'),
        ('from="a",from="b"', 'multiple "from" clauses'),
        ('principals="a",principals="b"', 'multiple "principals" clauses'),
        ('command="a"x', "unknown key option"),
        ('from=""', "invalid from criteria"),
        ('from="10.0.0.1,"', "invalid from criteria"),
        ('from="!"', "invalid from criteria"),
        ('from="10.0.0.1/8"', "invalid from criteria"),  # host bits set
        ('from="10.0.0.0/33"', "invalid from criteria"),
        ('expiry-time="2020"', "invalid expires time"),
        ('expiry-time="20201301"', "invalid expires time"),
        ('expiry-time="19700101Z"', "invalid expires time"),  # valid_before 0
        ('expiry-time="2020010112345"', "invalid expires time"),
        ('environment="NO_EQUALS"', "invalid environment string"),
        ('environment="A-B=c"', "invalid environment string"),
        ('permitopen="host"', "invalid permission port"),
        ('permitopen="host:0"', "invalid permission port"),
        ('permitopen="h:1,2"', "invalid permission port"),
        ('permitopen="[::1:22"', "invalid permission hostname"),
        ('tunnel="eth0"', "invalid tun device"),
        ("no-pty\0", "NUL in options"),
        ('command="\ud800"', "cannot be sent"),  # not from surrogateescape: no exec of it
        ("\u0130restrict", "unknown key option"),  # strncasecmp folds ASCII only
        ("x" * (MAX_OPTIONS_LENGTH + 1), "options longer than"),
    ],
)
def test_bad_key_options(field: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_key_options(field)


def test_the_field_ends_at_a_space_outside_quotes() -> None:
    options = parse_key_options('command="a b",no-pty ssh-ed25519 AAAA,frobnicate')
    assert options == KeyOptions(pty=False, command="a b")


def test_several_expiry_times_keep_the_earliest() -> None:
    options = parse_key_options('expiry-time="20300101Z",expiry-time="20290101Z"')
    assert options.valid_before == calendar.timegm((2029, 1, 1, 0, 0, 0))


# -- expiry-time= -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("20240229Z", (2024, 2, 29, 0, 0, 0)),
        ("202402291530Z", (2024, 2, 29, 15, 30, 0)),
        ("20240229153059z", (2024, 2, 29, 15, 30, 59)),
        ("20240229153059UTC", (2024, 2, 29, 15, 30, 59)),
    ],
)
def test_expiry_time_in_utc(text: str, moment: tuple[int, ...]) -> None:
    assert parse_expiry_time(text) == calendar.timegm((*moment,))


def test_expiry_time_without_z_is_local_time_as_in_sshd() -> None:
    local = datetime.datetime(2031, 7, 4, 12, 0, 0)  # local time, on purpose
    assert parse_expiry_time("203107041200") == int(local.timestamp())


def test_expired_means_after_the_last_second() -> None:
    options = parse_key_options('expiry-time="20300101Z"')
    end = calendar.timegm((2030, 1, 1, 0, 0, 0))
    assert options.refusal(peer_address="127.0.0.1", now=end) is None
    assert options.refusal(peer_address="127.0.0.1", now=end + 1) == (
        "key expired at 2030-01-01T00:00:00Z"
    )


def test_principals_without_cert_authority_refuse_the_key() -> None:
    refusal = parse_key_options('principals="a"').refusal(peer_address=None, now=0)
    assert refusal == "principals on non-CA key"


# -- from= --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "address", "admitted"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.*", "127.0.0.9", True),
        ("127.0.0.?", "127.0.0.10", False),
        ("10.0.0.0/8", "10.200.3.4", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("0.0.0.0/0", "192.0.2.7", True),
        ("10.0.0.0/8,!10.0.0.5", "10.0.0.5", False),
        ("!10.0.0.5,10.0.0.0/8", "10.0.0.6", True),
        ("!10.0.0.0/8", "192.0.2.1", False),  # a negation alone admits nobody
        ("*,!192.0.2.*", "192.0.2.1", False),
        ("*,!192.0.2.*", "198.51.100.1", True),
        ("2001:db8::/32", "2001:db8:0:1::5", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("::1", "::1", True),
        ("::1", "0:0:0:0:0:0:0:1", True),  # the address's own text is normalised
        ("FE80::*", "fe80::1", True),  # host-name matching lowers the pattern
        ("127.0.0.1", "::ffff:127.0.0.1", True),  # IPv4-mapped is IPv4 (canohost.c)
        ("127.0.0.0/8", "::ffff:127.0.0.1", True),
        ("::ffff:127.0.0.1", "127.0.0.1", False),  # families differ (addr_netmatch)
        ("10.0.0.0/8", "::ffff:10.1.2.3", True),
        ("*.example.net", "192.0.2.1", False),  # names: UseDNS no matches none
        ("localhost", "127.0.0.1", False),
        ("*", "not an address", True),  # an unparsable address: wildcards only
        ("10.0.0.0/8", "not an address", False),
    ],
)
def test_match_from(patterns: str, address: str, admitted: bool) -> None:
    assert match_from(patterns, address) is admitted


def test_an_overlong_sub_pattern_matches_nothing_by_name() -> None:
    # match.c: a sub-pattern of 1024 bytes or more makes match_pattern_list "no
    # match"; the address list's wildcards are case-sensitive, the name's are not.
    assert match_from("FE80::*", "fe80::1") is True
    assert match_from("FE80::*," + "x" * 1100, "fe80::1") is False


def test_from_refusal_names_address_and_patterns() -> None:
    options = parse_key_options('from="10.0.0.0/8"')
    assert options.refusal(peer_address="127.0.0.1", now=0) == (
        "not from a permitted host (ip=127.0.0.1, required=10.0.0.0/8)"
    )
    assert options.refusal(peer_address=None, now=0) is not None
    assert options.refusal(peer_address="10.1.1.1", now=0) is None


# -- certificates: critical options and extensions ----------------------------------------


def _certificate(
    critical: list[tuple[str, bytes]], extensions: list[tuple[str, bytes]]
) -> Certificate:
    return Certificate(
        key_type="ssh-ed25519-cert-v01@openssh.com",
        public_blob=b"",
        serial=0,
        cert_type=1,
        key_id="id",
        principals=("alice",),
        valid_after=0,
        valid_before=2**64 - 1,
        critical_options=tuple(critical),
        extensions=tuple(extensions),
        ca_blob=b"",
    )


def test_certificate_options_grant_only_what_is_listed() -> None:
    options = certificate_options(
        _certificate(
            [("force-command", encode_string(b"cmd")), ("source-address", encode_string(b"::1"))],
            [("permit-pty", b""), ("permit-X11-forwarding", b""), ("unknown@example.com", b"x")],
        )
    )
    assert options.restrictions == LoginRestrictions(command="cmd", agent_forwarding=False)
    assert options.refusal(peer_address="::1", now=0) is None
    assert options.refusal(peer_address="127.0.0.1", now=0) == (
        "not from a permitted source address (127.0.0.1)"
    )
    assert certificate_options(_certificate([], [])).restrictions == LoginRestrictions(
        pty=False, agent_forwarding=False, x11_forwarding=False
    )


@pytest.mark.parametrize(
    ("extensions", "agent", "x11"),
    [
        ([], False, False),
        (["permit-agent-forwarding"], True, False),
        (["permit-X11-forwarding"], False, True),
        (["permit-agent-forwarding", "permit-X11-forwarding", "permit-pty"], True, True),
        # cert_option_list compares extension names with strcmp: case matters.
        (["permit-x11-forwarding", "Permit-Agent-Forwarding"], False, False),
        (["permit-port-forwarding", "permit-user-rc"], False, False),
    ],
)
def test_certificate_forwarding_needs_its_extension(
    extensions: list[str], agent: bool, x11: bool
) -> None:
    options = certificate_options(_certificate([], [(name, b"") for name in extensions]))
    assert (options.agent_forwarding, options.x11_forwarding) == (agent, x11)
    restrictions = options.restrictions
    assert (restrictions.agent_forwarding, restrictions.x11_forwarding) == (agent, x11)


@pytest.mark.parametrize(
    ("critical", "extensions", "reason"),
    [
        ([("frob", b"")], [], 'critical option "frob" is not supported'),
        ([("force-command", encode_string(b"a"))] * 2, [], "multiple"),
        ([("force-command", encode_string(b"a") + b"x")], [], "corrupt"),
        ([("force-command", b"\0\0")], [], "corrupt"),
        ([("force-command", encode_string(b"a\0b"))], [], "contains"),
        ([("source-address", encode_string(b"10.*"))], [], "invalid source-address"),
        ([("source-address", encode_string(b"!10.0.0.1"))], [], "invalid source-address"),
        ([("source-address", encode_string(b"10.0.0.1/8"))], [], "invalid source-address"),
        ([("source-address", encode_string(b""))], [], "invalid source-address"),
        ([], [("permit-pty", b"x")], "extra data"),
        ([], [("permit-agent-forwarding", b"x")], "extra data"),
        ([], [("permit-X11-forwarding", b"\0")], "extra data"),
    ],
)
def test_bad_certificate_options(
    critical: list[tuple[str, bytes]], extensions: list[tuple[str, bytes]], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        certificate_options(_certificate(critical, extensions))


@pytest.mark.parametrize(
    ("addresses", "address", "inside"),
    [
        ("127.0.0.0/8", "127.1.2.3", True),
        ("127.0.0.0/8,2001:db8::/32", "2001:db8::1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.0/8", "::ffff:127.0.0.1", True),
        ("127.0.0.0/8", "not an address", False),
    ],
)
def test_match_source_address(addresses: str, address: str, inside: bool) -> None:
    assert match_source_address(addresses, address) is inside


# -- Hypothesis ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_options_or_value_error(text: str) -> None:
    try:
        options = parse_key_options(text)
    except ValueError:
        return
    assert isinstance(options, KeyOptions)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="0123456789abcdef.:/!*?,x%", max_size=60),
    st.one_of(st.ip_addresses().map(str), st.text(max_size=20)),
)
def test_any_patterns_give_a_bool_or_value_error(patterns: str, address: str) -> None:
    try:
        result = match_from(patterns, address)
    except ValueError:
        return
    assert isinstance(result, bool)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), st.integers(0, 128), st.booleans())
def test_cidr_matches_as_ipaddress_says(address: object, bits: int, negated: bool) -> None:
    import ipaddress

    assert isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
    # An IPv4-mapped address counts as IPv4 (canohost.c), outside any IPv6 network.
    assume(not (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped))
    bits = min(bits, address.max_prefixlen)
    network = ipaddress.ip_network(f"{address}/{bits}", strict=False)
    peer = network.network_address if negated else address
    inside = peer in network
    assert match_from(str(network), str(peer)) is inside
    assert match_from(f"*,!{network}", str(peer)) is (not inside)


_VALUE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\0"), max_size=30
).filter(lambda value: not value.endswith("\\"))
"""A value sshd's quoting can carry: anything but NUL and a trailing backslash
(``\\"`` would be read as an escaped quote)."""


def _quote(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


def _case(name: str, data: st.DataObject) -> str:
    return "".join(c.upper() if data.draw(st.booleans()) else c for c in name)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_round_trip_of_generated_fields(data: st.DataObject) -> None:
    """Fields written the way sshd(8) documents them parse to what they say."""
    flags = data.draw(
        st.lists(
            st.sampled_from(
                [
                    "restrict",
                    "pty",
                    "no-pty",
                    "no-port-forwarding",
                    "user-rc",
                    "agent-forwarding",
                    "no-agent-forwarding",
                    "X11-forwarding",
                    "no-X11-forwarding",
                ]
            ),
            max_size=6,
        )
    )
    command = data.draw(st.none() | _VALUE)
    source = data.draw(st.none() | st.sampled_from(["127.0.0.1", "10.0.0.0/8,!10.1.*", "::1"]))
    environment = data.draw(st.lists(_VALUE.map(lambda v: "N_1=" + v), max_size=2))
    parts = [_case(flag, data) for flag in flags]
    if command is not None:
        parts.append(_case("command", data) + "=" + _quote(command))
    if source is not None:
        parts.append("from=" + _quote(source))
    parts += ["environment=" + _quote(value) for value in environment]
    order = data.draw(st.permutations(range(len(parts))))
    field = ",".join(parts[i] for i in order)
    allowed = {"pty": True, "agent-forwarding": True, "X11-forwarding": True}
    for index in order:
        if index < len(flags):
            flag = flags[index]
            if flag == "restrict":
                allowed = dict.fromkeys(allowed, False)
            elif flag.removeprefix("no-") in allowed:
                allowed[flag.removeprefix("no-")] = not flag.startswith("no-")
    parsed = parse_key_options(field)
    expected_environment = tuple(
        parts[i][len("environment=") :] for i in order if i >= len(parts) - len(environment)
    )
    assert parsed.command == command
    assert parsed.from_patterns == source
    assert parsed.pty is allowed["pty"]
    assert parsed.agent_forwarding is allowed["agent-forwarding"]
    assert parsed.x11_forwarding is allowed["X11-forwarding"]
    assert parsed.restricted is ("restrict" in flags)
    assert [_quote(v) for v in parsed.environment] == list(expected_environment)


# -- LoginRestrictions --------------------------------------------------------------------


def test_merge_is_sshauthopt_merge() -> None:
    no_pty = LoginRestrictions(pty=False)
    forced = LoginRestrictions(command="x")
    assert no_pty.merge(forced) == LoginRestrictions(pty=False, command="x")
    assert forced.merge(forced) == forced
    no_agent = LoginRestrictions(agent_forwarding=False)
    no_x11 = LoginRestrictions(x11_forwarding=False)
    assert no_agent.merge(no_x11) == LoginRestrictions(
        agent_forwarding=False, x11_forwarding=False
    )
    assert no_x11.merge(LoginRestrictions()) == no_x11
    assert LoginRestrictions().merge(no_agent) == no_agent
    with pytest.raises(ValueError, match="forced command options do not match"):
        forced.merge(LoginRestrictions(command="y"))


def test_session_policy_keeps_the_configured_force_command() -> None:
    base = SessionPolicy(accept_env=("LANG",))
    assert LoginRestrictions().session_policy(base) is base
    narrowed = LoginRestrictions(pty=False, command="key").session_policy(base)
    assert (narrowed.allow_pty, narrowed.forced_command, narrowed.accept_env) == (
        False,
        "key",
        ("LANG",),
    )
    configured = SessionPolicy(forced_command="config")
    assert LoginRestrictions(command="key").session_policy(configured).forced_command == "config"


def test_session_policy_refuses_forwarding_if_either_does() -> None:
    closed = SessionPolicy(allow_agent_forwarding=False, allow_x11_forwarding=False)
    assert LoginRestrictions().session_policy(closed) is closed  # sshd_config wins too
    assert (
        LoginRestrictions(agent_forwarding=False, x11_forwarding=False).session_policy(closed)
        is closed
    )
    no_agent = LoginRestrictions(agent_forwarding=False).session_policy(SessionPolicy())
    assert (no_agent.allow_agent_forwarding, no_agent.allow_x11_forwarding) == (False, True)
    no_x11 = LoginRestrictions(x11_forwarding=False).session_policy(SessionPolicy())
    assert (no_x11.allow_agent_forwarding, no_x11.allow_x11_forwarding) == (True, False)
    with pytest.raises(TypeError, match="x11_forwarding must be a bool"):
        LoginRestrictions(x11_forwarding=1)  # type: ignore[arg-type]


def test_a_forced_command_replaces_every_program_request() -> None:
    policy = LoginRestrictions(pty=False, command="forced").session_policy(SessionPolicy())
    cases: list[tuple[ExecRequest | ShellRequest | SubsystemRequest, str | None]] = [
        (ExecRequest(command="mine"), "mine"),
        (ShellRequest(), None),
        (SubsystemRequest(name="sftp"), "sftp"),
    ]
    for request, original in cases:
        session = ServerSession(policy)
        refused = session.receive_request(
            PtyRequest(term="xterm", size=WindowSize(cols=80, rows=24)), True
        )
        assert isinstance(refused, RequestRefused)
        event = session.receive_request(request, True)
        assert isinstance(event, RequestReceived)
        assert event.request == ExecRequest(command="forced")
        assert event.original == request
        session.accept(event.handle)
        assert session.program == ExecRequest(command="forced")
        assert session.original_command == original
        assert session.pty is None


# -- a client and a server in memory ------------------------------------------------------

HOST_KEY = HostKey.generate()
USER_KEY = HostKey.generate()


class _ByAddress(SimpleAuthenticator):
    """Keys allowed only from 127.0.0.1, with no PTY and a forced command."""

    def __init__(self, address: str | None = None) -> None:
        super().__init__(authorized_keys={"alice": [USER_KEY.public_blob]})
        self.address = address

    def for_peer(self, address: str) -> _ByAddress:
        return _ByAddress(address)

    def check_public_key(self, username: str, algorithm: str, public_blob: bytes) -> AuthResult:
        if super().check_public_key(username, algorithm, public_blob) is not True:
            return False
        options = parse_key_options('from="127.0.0.1",no-pty,command="forced"')
        if options.refusal(peer_address=self.address, now=0) is not None:
            return False
        return options.restrictions


def _pair(peer_address: str) -> tuple[ClientConnection, ServerConnection]:
    server = ServerConnection(
        None,
        _ByAddress(),
        [HOST_KEY],
        random.Random(1).randbytes,
        now=0.0,
        peer_address=peer_address,
    )
    client = ClientConnection(
        None,
        "alice",
        verify_host_key=lambda algorithm, blob: blob == HOST_KEY.public_blob,
        keys=(USER_KEY,),
        random=random.Random(2).randbytes,
    )
    return client, server


def _exchange(client: ClientConnection, server: ServerConnection) -> list[object]:
    events: list[object] = []
    while (up := client.data_to_send()) or (down := server.data_to_send()):
        if up:
            events += server.receive_data(up, now=1.0)
        else:
            client.receive_data(down)
    return events


def test_restrictions_reach_every_session_of_the_connection() -> None:
    assert isinstance(_ByAddress(), PeerAuthenticator)
    client, server = _pair("127.0.0.1")
    events = _exchange(client, server)
    restricted = LoginRestrictions(pty=False, command="forced")
    assert (
        AuthenticationSucceeded(username="alice", method="publickey", restrictions=restricted)
        in events
    )
    assert server.restrictions == restricted
    assert server.peer_address == "127.0.0.1"
    for _ in range(2):
        channel = client.open_session()
        _exchange(client, server)
        session = client.session(channel)
        session.request_pty(term="xterm", size=WindowSize(cols=80, rows=24))
        session.request_exec("mine")
        requests = [e.event for e in _exchange(client, server) if isinstance(e, SessionEvent)]
        assert [type(e) for e in requests] == [RequestRefused, RequestReceived]
        received = requests[1]
        assert isinstance(received, RequestReceived)
        assert received.request == ExecRequest(command="forced")
        assert received.original == ExecRequest(command="mine")


def test_a_key_from_elsewhere_fails() -> None:
    client, server = _pair("10.0.0.1")
    with pytest.raises(Exception, match="Permission denied"):
        _exchange(client, server)
    assert not server.authenticated
