"""OpenSSH ``authorized_keys`` options (sshd(8), AUTHORIZED_KEYS FILE FORMAT), sans-IO.

:func:`parse_key_options` reads the options field of one line the way sshd's
``auth-options.c`` ``sshauthopt_parse`` does; :meth:`KeyOptions.refusal` decides
what ``auth.c`` ``auth_authorise_keyopts`` decides (``expiry-time=``, ``from=``)
from the client's address and a wall-clock time the caller passes in (the core
has no clock); :attr:`KeyOptions.restrictions` is what the login may then do, for
:class:`~ptycore.auth.LoginRestrictions`. :func:`match_from` is ``match.c``
``match_host_and_ip`` as sshd calls it with ``UseDNS no`` (its default): the host
name is the address itself.

Every error is a :class:`ValueError` whose message is sshd's, so a caller can skip
the line with that reason as sshd does ("bad key options").
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import ipaddress
from dataclasses import dataclass
from typing import Final

from ._certs import Certificate
from ._errors import ProtocolError
from ._wire import Reader
from .requests import _check_text
from .session import SessionPolicy

__all__ = [
    "MAX_OPTIONS_LENGTH",
    "UNRESTRICTED",
    "KeyOptions",
    "LoginRestrictions",
    "certificate_options",
    "match_from",
    "match_source_address",
    "parse_expiry_time",
    "parse_key_options",
]

MAX_OPTIONS_LENGTH: Final = 16384
"""Cap on an options field: 16 KiB, OpenSSH's former limit on a whole
authorized_keys line (``ssh.h`` ``SSH_MAX_PUBKEY_BYTES``). Today's sshd reads
lines of any length; real options fields are a few hundred bytes at most."""

_NEGATABLE: Final = (
    # auth-options.c sshauthopt_parse: flags that take a "no-" prefix, in its order.
    "port-forwarding",
    "agent-forwarding",
    "x11-forwarding",
    "touch-required",
    "verify-required",
    "pty",
    "user-rc",
)
_VALUED: Final = (
    "command",
    "principals",
    "from",
    "expiry-time",
    "environment",
    "permitopen",
    "permitlisten",
    "tunnel",
)
_LONGEST_NAME: Final = len("no-agent-forwarding")
"""The longest option name, to compare names on a short slice of the field."""
_MAX_SUBPATTERN: Final = 1023
"""match.c match_pattern_list copies each sub-pattern into a 1024-byte buffer; a
longer one makes the whole list "no match"."""
_TUNNEL_MAX: Final = 0x7FFFFFFF - 2
"""misc.h SSH_TUNID_MAX."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LoginRestrictions:
    """What a login may do, as sshd keeps it from the key's options (``auth-options.c``
    ``struct sshauthopt``): returned by an :class:`~ptycore.auth.Authenticator` as
    a success under these restrictions, carried on
    :class:`~ptycore.auth.AuthenticationSucceeded`, and applied by
    :class:`~ptycore.server.ServerConnection` to every session of the connection
    (see :meth:`session_policy`). The defaults restrict nothing. Also importable
    as ``ptycore.auth.LoginRestrictions``."""

    pty: bool = True
    """Whether a PTY may be allocated (``no-pty``, ``restrict``; a certificate
    without the ``permit-pty`` extension)."""
    command: str | None = None
    """The forced command (``command="..."``, a certificate's ``force-command``):
    every shell, exec and subsystem request runs it instead (``session.c``
    ``do_exec``)."""
    agent_forwarding: bool = True
    """Whether agent forwarding may be granted (``no-agent-forwarding``,
    ``restrict``; a certificate without the ``permit-agent-forwarding``
    extension): ``struct sshauthopt`` ``permit_agent_forwarding_flag``, checked
    by ``session.c`` ``session_auth_agent_req``."""
    x11_forwarding: bool = True
    """Whether X11 forwarding may be granted (``no-X11-forwarding``, ``restrict``;
    a certificate without the ``permit-X11-forwarding`` extension):
    ``permit_x11_forwarding_flag``, checked by ``session.c`` ``session_x11_req``."""

    def __post_init__(self) -> None:
        for name in ("pty", "agent_forwarding", "x11_forwarding"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")
        if self.command is not None:
            _check_text("command", self.command)

    def merge(self, other: LoginRestrictions) -> LoginRestrictions:
        """Both sets at once (``auth-options.c`` ``sshauthopt_merge``): a PTY, agent
        or X11 forwarding only if both allow it (its ``OPTFLAG_AND``); two forced
        commands must be the same (else :class:`ValueError`: "forced command
        options do not match")."""
        if self.command is not None and other.command not in (None, self.command):
            raise ValueError("forced command options do not match")
        return LoginRestrictions(
            pty=self.pty and other.pty,
            command=self.command if self.command is not None else other.command,
            agent_forwarding=self.agent_forwarding and other.agent_forwarding,
            x11_forwarding=self.x11_forwarding and other.x11_forwarding,
        )

    def session_policy(self, policy: SessionPolicy) -> SessionPolicy:
        """``policy`` with these restrictions: no PTY, agent or X11 forwarding unless
        both allow it (``session.c`` checks the key's flag and sshd_config's
        PermitTTY, AllowAgentForwarding, X11Forwarding), and the forced command
        unless the policy has its own (sshd's ``ForceCommand`` wins over the
        key's, ``session.c`` ``do_exec``)."""
        pty = policy.allow_pty and self.pty
        agent = policy.allow_agent_forwarding and self.agent_forwarding
        x11 = policy.allow_x11_forwarding and self.x11_forwarding
        forced = policy.forced_command if policy.forced_command is not None else self.command
        if (pty, agent, x11, forced) == (
            policy.allow_pty,
            policy.allow_agent_forwarding,
            policy.allow_x11_forwarding,
            policy.forced_command,
        ):
            return policy  # nothing to change: no new policy (nor its compiled patterns)
        return dataclasses.replace(
            policy,
            allow_pty=pty,
            allow_agent_forwarding=agent,
            allow_x11_forwarding=x11,
            forced_command=forced,
        )


UNRESTRICTED: Final = LoginRestrictions()
"""No restriction: what a plain ``True`` from an authenticator means."""


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyOptions:
    """The options of one authorized_keys line, as sshd keeps them (``struct
    sshauthopt``). Only what ptycore enforces or reports is kept: port
    forwarding, ``user-rc``, ``permitopen``, ``permitlisten`` and ``tunnel`` are
    checked for syntax (a bad one refuses the line, as in sshd) and then have
    nothing to do, since ptycore never offers what they govern."""

    restricted: bool = False
    """``restrict`` was given: no PTY, agent or X11 forwarding (nor anything else
    ptycore offers) unless re-enabled by a later ``pty``, ``agent-forwarding`` or
    ``X11-forwarding``."""
    pty: bool = True
    """Whether a PTY may be allocated (``no-pty``, ``restrict``, ``pty``)."""
    agent_forwarding: bool = True
    """Whether a session may be granted agent forwarding (``no-agent-forwarding``,
    ``restrict``, ``agent-forwarding``)."""
    x11_forwarding: bool = True
    """Whether a session may be granted X11 forwarding (``no-X11-forwarding``,
    ``restrict``, ``X11-forwarding``)."""
    command: str | None = None
    """``command="..."``: the only program this key may run."""
    from_patterns: str | None = None
    """``from="pattern-list"``: addresses the key may log in from."""
    valid_before: int | None = None
    """``expiry-time=``: the key is refused after this Unix time (the earliest
    of several)."""
    cert_authority: bool = False
    """``cert-authority``: the line names a CA for user certificates."""
    principals: str | None = None
    """``principals="..."`` (with ``cert-authority``)."""
    environment: tuple[str, ...] = ()
    """``environment="NAME=value"`` strings, in file order. sshd applies them only
    with ``PermitUserEnvironment`` (off by default); ptycore does not."""
    source_address: str | None = None
    """A certificate's ``source-address``: CIDR entries only (``addrmatch.c``
    ``addr_match_cidr_list``), see :func:`certificate_options`."""

    @property
    def restrictions(self) -> LoginRestrictions:
        """What a login with this key may do (:data:`UNRESTRICTED` itself when
        nothing is restricted: a connection keeps it, and most keys have none)."""
        if self.pty and self.agent_forwarding and self.x11_forwarding and self.command is None:
            return UNRESTRICTED
        return LoginRestrictions(
            pty=self.pty,
            command=self.command,
            agent_forwarding=self.agent_forwarding,
            x11_forwarding=self.x11_forwarding,
        )

    def refusal(self, *, peer_address: str | None, now: float) -> str | None:
        """Why this key may not log in from ``peer_address`` at Unix time ``now``,
        or ``None`` if it may (``auth.c`` ``auth_authorise_keyopts``).

        ``peer_address`` is the client's IP address as text; ``None`` (unknown)
        fails every ``from=``, as sshd's ``addr_match_list`` fails an address it
        cannot parse.
        """
        if self.valid_before is not None and now > self.valid_before:
            # auth.c: "entry expired" once valid_before < now (whole seconds).
            return f"key expired at {_format_time(self.valid_before)}"
        if self.principals is not None and not self.cert_authority:
            return "principals on non-CA key"
        if self.from_patterns is not None and (
            peer_address is None or not match_from(self.from_patterns, peer_address)
        ):
            return f"not from a permitted host (ip={peer_address}, required={self.from_patterns})"
        if self.source_address is not None and (
            peer_address is None or not match_source_address(self.source_address, peer_address)
        ):
            return f"not from a permitted source address ({peer_address})"
        return None


def _format_time(unix_time: int) -> str:
    moment = datetime.datetime.fromtimestamp(unix_time, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_key_options(field: str) -> KeyOptions:
    """The options at the start of ``field``, up to the first space or tab outside
    double quotes (or the end), as ``auth-options.c`` ``sshauthopt_parse``.

    Option names are case-insensitive; ``no-`` negates the flags that allow it;
    values are double-quoted with ``\\"`` for a quote; two ``command=``, ``from=``
    or ``principals=`` are an error, several ``expiry-time=`` keep the earliest;
    anything else is "unknown key option". Raises :class:`ValueError`.
    """
    if len(field) > MAX_OPTIONS_LENGTH:
        raise ValueError(f"options longer than {MAX_OPTIONS_LENGTH} characters")
    if "\0" in field:
        raise ValueError("NUL in options")
    parser = _Parser(field)
    return parser.parse()


class _Parser:
    """One pass over an options field; ``index`` is sshd's ``opts`` pointer."""

    __slots__ = (
        "agent_forwarding",
        "cert_authority",
        "environment",
        "index",
        "pty",
        "restricted",
        "text",
        "valid_before",
        "values",
        "x11_forwarding",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self.index = 0
        # auth-options.c sshauthopt_new_with_keys_defaults: everything permitted.
        self.pty = True
        self.agent_forwarding = True
        self.x11_forwarding = True
        self.restricted = False
        self.cert_authority = False
        self.valid_before: int | None = None
        self.environment: list[str] = []
        self.values: dict[str, str] = {}

    def at_end(self) -> bool:
        return self.index >= len(self.text) or self.text[self.index] in " \t"

    def parse(self) -> KeyOptions:
        while not self.at_end():
            flag = self._flag()
            if flag is not None:
                name, value = flag
                if name == "restrict":
                    # auth-options.c sshauthopt_parse: "restrict" clears every
                    # permit_*_flag; a later flag sets its own back.
                    self.restricted = True
                    self.pty = self.agent_forwarding = self.x11_forwarding = False
                elif name == "cert-authority":
                    self.cert_authority = True
                elif name == "pty":
                    self.pty = value
                elif name == "agent-forwarding":
                    self.agent_forwarding = value  # permit_agent_forwarding_flag
                elif name == "x11-forwarding":  # the name is lower-cased: X11-forwarding
                    self.x11_forwarding = value  # permit_x11_forwarding_flag
            else:
                valued = self._valued_name()
                if valued is not None:
                    self._value(valued, self._dequote())
            # Skip the comma to the next option, or stop at the end of the field.
            if self.at_end():
                break
            if self.text[self.index] != ",":
                raise ValueError("unknown key option")
            self.index += 1
        return KeyOptions(
            restricted=self.restricted,
            pty=self.pty,
            agent_forwarding=self.agent_forwarding,
            x11_forwarding=self.x11_forwarding,
            command=self.values.get("command"),
            from_patterns=self.values.get("from"),
            valid_before=self.valid_before,
            cert_authority=self.cert_authority,
            principals=self.values.get("principals"),
            environment=tuple(self.environment),
        )

    def _value(self, name: str, value: str) -> None:
        if name in ("command", "principals", "from"):
            if name in self.values:
                raise ValueError(f'multiple "{name}" clauses')
            if name == "from":
                _check_patterns(value)
            elif name == "command":
                _check_text("command", value)  # it must make an exec request
            self.values[name] = value
        elif name == "expiry-time":
            expiry = parse_expiry_time(value)
            if self.valid_before is None or expiry < self.valid_before:
                self.valid_before = expiry
        elif name == "environment":
            _check_environment(value)
            self.environment.append(value)
        elif name in ("permitopen", "permitlisten"):
            _check_permit(value, bare_port=name == "permitlisten")
        else:
            _check_tunnel(value)

    def _head(self) -> str:
        """The next characters, ASCII lower-cased as strncasecmp compares them (one
        character each: the index moves by the length of the name matched)."""
        head = self.text[self.index : self.index + _LONGEST_NAME + 1]
        return "".join(c.lower() if c.isascii() else c for c in head)

    def _flag(self) -> tuple[str, bool] | None:
        """auth-options.c opt_flag: a flag name as a case-insensitive prefix."""
        rest = self._head()
        for name in ("restrict", "cert-authority"):
            if rest.startswith(name):
                self.index += len(name)
                return name, True
        negated = rest.startswith("no-")
        if negated:
            rest = rest[3:]
        for name in _NEGATABLE:
            if rest.startswith(name):
                self.index += len(name) + (3 if negated else 0)
                return name, not negated
        return None

    def _valued_name(self) -> str | None:
        """auth-options.c opt_match: ``name=``, case-insensitive."""
        rest = self._head()
        for name in _VALUED:
            if rest.startswith(name + "="):
                self.index += len(name) + 1
                return name
        return None

    def _dequote(self) -> str:
        """auth-options.c opt_dequote: ``"..."`` with ``\\"`` for a quote."""
        text = self.text
        if self.index >= len(text) or text[self.index] != '"':
            raise ValueError("missing start quote")
        index = self.index + 1
        out: list[str] = []
        while index < len(text) and text[index] != '"':
            if text[index] == "\\" and text[index + 1 : index + 2] == '"':
                index += 1
            out.append(text[index])
            index += 1
        if index >= len(text):
            raise ValueError("missing end quote")
        self.index = index + 1
        return "".join(out)


def parse_expiry_time(text: str) -> int:
    """``expiry-time=``'s ``YYYYMMDD[HHMM[SS]]`` as Unix time (``misc.c``
    ``parse_absolute_time``): local time, as sshd takes it, or UTC with a trailing
    ``Z`` or ``UTC`` (OpenSSH 8.7 and later). Raises :class:`ValueError`."""
    digits = text
    utc = False
    if len(digits) > 1 and digits[-1] in "zZ":
        digits, utc = digits[:-1], True
    elif len(digits) > 3 and digits[-3:].upper() == "UTC":
        digits, utc = digits[:-3], True
    if len(digits) not in (8, 12, 14) or not (digits.isascii() and digits.isdigit()):
        raise ValueError("invalid expires time")
    padded = digits.ljust(14, "0")
    year, month, day, hour, minute, second = (
        int(padded[a:b]) for a, b in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))
    )
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second)  # local, as sshd
        # mktime for local time (sshd's default), timegm with Z.
        stamp = calendar.timegm(moment.timetuple()) if utc else int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        raise ValueError("invalid expires time") from None
    if stamp <= 0:  # mktime() < 0 or valid_before == 0: refused by sshd
        raise ValueError("invalid expires time")
    return stamp


def _check_environment(value: str) -> None:
    # auth-options.c: the name (before '=') must be alphanumeric or '_'.
    name, equals, _ = value.partition("=")
    if not equals or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise ValueError("invalid environment string")


def _check_permit(value: str, *, bare_port: bool) -> None:
    # auth-options.c handle_permit: host:port via misc.c hpdelim, port "*" or 1-65535;
    # permitlisten takes a bare port for "*:port".
    if bare_port and ":" not in value:
        value = "*:" + value
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1 : close + 2] not in (":", "/"):
            raise ValueError("invalid permission hostname")
        host, port = value[1:close], value[close + 2 :]
    else:
        cut = min((i for i in (value.find(":"), value.find("/")) if i >= 0), default=-1)
        if cut < 0:
            raise ValueError("invalid permission port")
        host, port = value[:cut], value[cut + 1 :]
    if len(host) >= 1025:  # NI_MAXHOST
        raise ValueError("invalid permission hostname")
    if port != "*" and not (port.isascii() and port.isdigit() and 0 < int(port) <= 65535):
        raise ValueError("invalid permission port")


def _check_tunnel(value: str) -> None:
    # misc.c a2tun: "any" or a number up to SSH_TUNID_MAX.
    if value.lower() == "any":
        return
    if not (value.isascii() and value.isdigit() and int(value) <= _TUNNEL_MAX):
        raise ValueError("invalid tun device")


# --- certificates -----------------------------------------------------------------------

_CRITICAL_STRINGS: Final = ("force-command", "source-address")
_NOTHING_TO_ENFORCE: Final = frozenset({"verify-required"})
"""Critical options about FIDO (``sk-``) keys, which ptycore never accepts."""
_PERMIT_EXTENSIONS: Final = frozenset(
    {"permit-pty", "permit-agent-forwarding", "permit-X11-forwarding"}
)
"""The extensions that grant what ptycore enforces (``auth-options.c``
``cert_option_list``); the others (``permit-port-forwarding``, ``permit-user-rc``,
``no-touch-required``) govern what ptycore never offers."""


def certificate_options(certificate: Certificate) -> KeyOptions:
    """What a user certificate allows (``auth-options.c`` ``sshauthopt_from_cert``):
    nothing it does not grant, so a PTY only with the ``permit-pty`` extension,
    agent forwarding only with ``permit-agent-forwarding``, X11 forwarding only
    with ``permit-X11-forwarding`` (names compared exactly, as its
    ``cert_option_list`` does with strcmp);
    ``force-command`` as :attr:`KeyOptions.command`; ``source-address`` as
    :attr:`KeyOptions.source_address`. Unknown extensions are ignored, as sshd
    does; an unknown critical option, a repeated one, or data sshd calls corrupt
    raise :class:`ValueError`."""
    values: dict[str, str] = {}
    for name, data in certificate.critical_options:
        if name in _NOTHING_TO_ENFORCE:
            if data:
                raise ValueError(f'certificate option "{name}" corrupt (extra data)')
            continue
        if name not in _CRITICAL_STRINGS:
            raise ValueError(f'certificate critical option "{name}" is not supported')
        if name in values:
            raise ValueError(f'certificate has multiple "{name}" options')
        values[name] = _cstring(name, data)
    source = values.get("source-address")
    if source is not None:
        _check_cidr_list(source)
    granted: set[str] = set()
    for name, data in certificate.extensions:
        if name in _PERMIT_EXTENSIONS:
            if data:
                raise ValueError(f'certificate option "{name}" corrupt (extra data)')
            granted.add(name)
    return KeyOptions(
        restricted=True,
        pty="permit-pty" in granted,
        agent_forwarding="permit-agent-forwarding" in granted,
        x11_forwarding="permit-X11-forwarding" in granted,
        command=values.get("force-command"),
        source_address=source,
    )


def _cstring(name: str, data: bytes) -> str:
    """sshbuf_get_cstring on the option's data: one string, no NUL, nothing after."""
    try:
        reader = Reader(data)
        value = reader.string(name, MAX_OPTIONS_LENGTH)
        reader.end(name)
    except ProtocolError:
        raise ValueError(f'certificate option "{name}" corrupt') from None
    if b"\0" in value:
        raise ValueError(f'certificate option "{name}" contains \\0')
    return value.decode("utf-8", "surrogateescape")


_CIDR_CHARACTERS: Final = frozenset("0123456789abcdefABCDEF.:/")
_MAX_CIDR_ENTRY: Final = 46 + 3
"""addrmatch.c: INET6_ADDRSTRLEN plus a mask length."""


def _check_cidr_list(addresses: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """addr_match_cidr_list(NULL, list): every entry a CIDR network, or ValueError."""
    networks = []
    for entry in addresses.split(","):
        if not entry or len(entry) > _MAX_CIDR_ENTRY or not set(entry) <= _CIDR_CHARACTERS:
            raise ValueError("invalid source-address")
        try:
            network = _network(entry)
        except ValueError:  # addr_pton_cidr's "inconsistent mask length"
            network = None
        if network is None:
            raise ValueError("invalid source-address")
        networks.append(network)
    return networks


def match_source_address(addresses: str, address: str) -> bool:
    """Whether ``address`` is in a certificate's ``source-address`` list (``addrmatch.c``
    ``addr_match_cidr_list``: CIDR entries only, no wildcards, no negation).
    Raises :class:`ValueError` for an invalid list."""
    networks = _check_cidr_list(addresses)
    parsed = _address(address)
    return parsed is not None and any(
        network.version == parsed.version and parsed in network for network in networks
    )


def _address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The peer's address, IPv4-mapped IPv6 as IPv4 (``canohost.c``
    ``ipv64_normalise_mapped``), or None if it is not one."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


# --- from= ------------------------------------------------------------------------------


def match_from(patterns: str, address: str) -> bool:
    """Whether the client at ``address`` may use a key with ``from="patterns"``.

    ``match.c`` ``match_host_and_ip`` with ``UseDNS no``: the address is matched
    by ``addrmatch.c`` ``addr_match_list`` (CIDR entries such as ``10.0.0.0/8``
    or ``2001:db8::/32``, else ``*``/``?`` wildcards on the address text) and as
    the host name by ``match_hostname`` (wildcards, case-insensitive). A ``!``
    entry that matches refuses; otherwise one positive match admits. An
    IPv4-mapped IPv6 address counts as its IPv4 address (``canohost.c``
    ``ipv64_normalise_mapped``). Raises :class:`ValueError` for a list sshd
    calls "invalid criteria" (an empty entry, a CIDR with host bits set).
    """
    _check_patterns(patterns)
    parsed = _address(address)
    text = address if parsed is None else str(parsed)
    by_address = _addr_match_list(parsed, text, patterns) if parsed is not None else 0
    if by_address < 0:
        return False
    by_name = _match_pattern_list(text.lower(), patterns.lower())
    if by_name < 0:
        return False
    return by_address > 0 or by_name > 0


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """addrmatch.c addr_pton_cidr: the network, None if not an address (then the
    entry is a wildcard pattern); ValueError for sshd's "inconsistent" (-2)."""
    address, slash, mask = entry.partition("/")
    if slash and not (mask.isascii() and mask.isdigit() and int(mask) <= 128):
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if parsed.version == 6 and "%" in address:
        return None
    bits = int(mask) if slash else parsed.max_prefixlen
    if bits > parsed.max_prefixlen:
        raise ValueError("invalid from criteria")
    try:
        return ipaddress.ip_network(f"{parsed}/{bits}", strict=True)
    except ValueError:  # host bits set: addr_host_is_all0s fails
        raise ValueError("invalid from criteria") from None


def _check_patterns(patterns: str) -> None:
    """addr_match_list(NULL, list): only well-formed lists (else sshd denies every
    login with the key, logging "invalid from criteria")."""
    for raw in patterns.split(","):
        entry = raw.removeprefix("!")
        if not entry:
            raise ValueError("invalid from criteria")
        _network(entry)


def _addr_match_list(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str, patterns: str
) -> int:
    """addrmatch.c addr_match_list: 1 match, 0 none, -1 a negated match."""
    result = 0
    for raw in patterns.split(","):
        negated = raw.startswith("!")
        entry = raw[1:] if negated else raw
        network = _network(entry)
        if network is not None:
            hit = network.version == address.version and address in network
        else:
            hit = _match_pattern(text, entry)
        if hit:
            if negated:
                return -1
            result = 1
    return result


def _match_pattern_list(text: str, patterns: str) -> int:
    """match.c match_pattern_list: 1 match, 0 none, -1 a negated match."""
    result = 0
    for raw in patterns.split(","):
        negated = raw.startswith("!")
        entry = raw[1:] if negated else raw
        if len(entry) >= _MAX_SUBPATTERN:
            return 0
        if _match_pattern(text, entry):
            if negated:
                return -1
            result = 1
    return result


def _match_pattern(text: str, pattern: str) -> bool:
    """match.c match_pattern: ``*`` any run, ``?`` one character, all else literal.
    Greedy with one backtrack point, so linear in practice, never exponential."""
    t = p = 0
    star = -1
    resume = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in ("?", text[t]):
            t += 1
            p += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            t = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)
