"""Server-side request forgery guard for webhook URLs.

``check_url`` refuses a URL unless it is plain http(s) to a host whose every address is globally routable,
or inside a range the operator allowed. ``resolve_url`` does the same and returns the checked addresses, so
the sender connects to exactly those (never re-resolving the name: no DNS rebinding between check and use).

Refused: other schemes, credentials in the URL, percent-encoded or odd characters in the host, non-canonical
numeric IPv4 forms (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``), IPv6 zone ids, and any address
that is loopback, private, link-local (incl. the metadata service 169.254.169.254), carrier-grade NAT,
unspecified, multicast, reserved or otherwise not global, also when carried inside IPv6 (IPv4-mapped,
IPv4-compatible, NAT64, 6to4, Teredo). ``localhost`` and ``*.localhost`` are loopback whatever DNS says.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Iterable[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

# Ranges refused by name, before the stdlib's ``is_global`` (whose tables differ between Python patch releases).
_NAMED_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_NAMED_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_V4_TABLE = tuple((ipaddress.IPv4Network(n), why) for n, why in _NAMED_V4)
_V6_TABLE = tuple((ipaddress.IPv6Network(n), why) for n, why in _NAMED_V6)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")

_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"  # percent-encode only what is not ASCII-safe in a request target
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


class UnsafeURL(ValueError):
    """A webhook URL refused by the SSRF guard; ``reason`` says why (never a secret: URLs are not echoed whole)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnresolvableHost(UnsafeURL):
    """The host has no address (or DNS failed): nothing could be checked, so nothing is sent."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to one of ``addresses`` and send ``host_header``; never resolve ``host`` again."""

    scheme: str
    host: str  # normalised: lower case, IDNA, no trailing dot; an IP literal in canonical form
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[IPAddress, ...]
    host_is_ip: bool

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_allow(ranges: Iterable[str | Network]) -> tuple[Network, ...]:
    """CIDR ranges an operator allows (e.g. ``127.0.0.0/8`` for tests); a bad range raises ``ValueError``."""
    out: list[Network] = []
    for r in ranges:
        out.append(r if isinstance(r, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                   else ipaddress.ip_network(str(r).strip(), strict=True))
    return tuple(out)


def system_resolver(host: str, port: int) -> list[str]:
    """Every A and AAAA address of ``host`` (``getaddrinfo``)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, allow: Sequence[str | Network] = (), *, resolver: Resolver | None = None) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is safe to send a webhook to."""
    resolve_url(url, allow, resolver=resolver)


def resolve_url(url: str, allow: Sequence[str | Network] = (), *, resolver: Resolver | None = None) -> Target:
    """Check ``url`` and return the addresses that passed: the only ones the sender may connect to."""
    allowed = parse_allow(allow)
    scheme, host, port, target, literal = _split(url)
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    elif host == "localhost" or host.endswith(".localhost"):
        addresses = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))  # RFC 6761
    else:
        try:
            raw = list((resolver or system_resolver)(host, port))
        except (OSError, UnicodeError) as exc:
            raise UnresolvableHost(f"cannot resolve host {host!r}: {exc}") from None
        if not raw:
            raise UnresolvableHost(f"host {host!r} has no address")
        parsed = []
        for a in raw:
            try:
                parsed.append(ipaddress.ip_address(str(a).split("%", 1)[0]))
            except ValueError:
                raise UnresolvableHost(f"resolver gave a non-address {a!r} for {host!r}") from None
        addresses = tuple(dict.fromkeys(parsed))
    for addr in addresses:
        why = unsafe_reason(addr, allowed)
        if why is not None:
            via = "" if literal is not None else f"{host!r} resolves to "
            raise UnsafeURL(f"{via}{addr}: {why}")
    return Target(scheme, host, port, target, addresses, literal is not None)


def unsafe_reason(addr: IPAddress, allow: Sequence[Network] = ()) -> str | None:
    """Why ``addr`` must not be connected to, or ``None`` when it is global or inside an allowed range."""
    if any(addr.version == net.version and addr in net for net in allow):
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # the socket would talk IPv4 to the mapped address
            inner = unsafe_reason(addr.ipv4_mapped, allow)
            return f"IPv4-mapped {addr.ipv4_mapped} is {inner}" if inner else None
        for how, v4 in _embedded_v4(addr):
            inner = unsafe_reason(v4, allow)
            if inner:
                return f"{how} embedding of {v4}, which is {inner}"
        if addr in _NAT64:
            return None  # the well-known NAT64 prefix reaches the embedded (global) IPv4 address
    return _category(addr)


def _category(addr: IPAddress) -> str | None:
    if addr in METADATA_ADDRESSES:
        return "link-local (the cloud metadata service)"
    if addr == _BROADCAST:
        return "broadcast"
    table = _V4_TABLE if isinstance(addr, ipaddress.IPv4Address) else _V6_TABLE
    for net, why in table:
        if addr in net:  # type: ignore[operator]
            return why
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_private:
        return "private"
    if addr.is_reserved:
        return "reserved"
    if not addr.is_global:
        return "not globally routable"
    return None


def _embedded_v4(addr: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in _NAT64:
        found.append(("NAT64", low32))
    if addr in _V4_COMPATIBLE and int(addr) > 1:
        found.append(("IPv4-compatible", low32))
    if addr.sixtofour is not None:
        found.append(("6to4", addr.sixtofour))
    if addr.teredo is not None:
        server, client = addr.teredo
        found.extend([("Teredo server", server), ("Teredo client", client)])
    return found


def _split(url: str) -> tuple[str, str, int, str, IPAddress | None]:
    """Scheme, normalised host, port, request target, and the address when the host is an IP literal."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("empty URL")
    if _BAD_URL_CHARS.search(url):
        raise UnsafeURL("URL contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL(f"scheme {scheme or '(none)'!r} is not allowed (only http and https)")
    if "@" in parts.netloc:
        raise UnsafeURL("credentials (user@) in the URL are not allowed")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise UnsafeURL("URL has no host")
    if port_given == 0:
        raise UnsafeURL("port 0 is not allowed")
    port = port_given if port_given is not None else DEFAULT_PORTS[scheme]
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_TARGET_SAFE)
    if "%" in raw_host:
        raise UnsafeURL("percent-encoded characters or zone ids in the host are not allowed")
    if parts.netloc.startswith("[") or ":" in raw_host:
        try:
            v6 = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise UnsafeURL(f"malformed IPv6 address {raw_host!r}") from None
        return scheme, str(v6), port, target, v6
    host = _normalise_name(raw_host)
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):  # WHATWG: a host ending in a number is an IPv4 address
        try:
            v4 = ipaddress.IPv4Address(host)
        except ValueError:
            v4 = None
        if v4 is None or str(v4) != host:
            decoded = _inet_aton(labels)
            shown = f" (it means {decoded})" if decoded is not None else ""
            raise UnsafeURL(f"non-canonical numeric IPv4 host {host!r}{shown}; write the dotted-quad address")
        return scheme, host, port, target, v4
    if any(not _HOST_LABEL.match(label) for label in labels):
        raise UnsafeURL(f"invalid host name {host!r}")
    return scheme, host, port, target, None


def _normalise_name(raw: str) -> str:
    host = raw.lower()
    host = host.removesuffix(".")  # a trailing dot names the same host (and must not dodge the checks)
    if not host or host.endswith(".") or ".." in host:
        raise UnsafeURL(f"invalid host name {raw!r}")
    try:
        host = host.encode("idna").decode("ascii").lower()  # maps e.g. full-width digits to ASCII
    except UnicodeError:
        raise UnsafeURL(f"invalid host name {raw!r}") from None
    return host


def _inet_aton(labels: list[str]) -> ipaddress.IPv4Address | None:
    """What the C library's ``inet_aton`` (and so ``getaddrinfo``) makes of a numeric host, for the message."""
    try:
        nums = [int(p, 16) if p.startswith("0x") else int(p, 8) if len(p) > 1 and p.startswith("0") else int(p)
                for p in labels]
    except ValueError:
        return None
    if not 1 <= len(nums) <= 4:
        return None
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return ipaddress.IPv4Address(value * 256 ** (4 - len(head)) + last)
