"""Which webhook targets are allowed: SSRF rules for URLs and the addresses they resolve to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from vtp_notifier.domain.webhooks import Problem

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2000
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class TargetNotAllowed(Exception):
    """The target resolves to an address webhooks may not reach."""


def _internal(ip: IpAddress) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global  # shared (100.64/10), documentation and other special ranges
    )


def _unwrapped(ip: IpAddress) -> IpAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, else the address itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


@dataclass(frozen=True)
class TargetPolicy:
    """Public addresses are allowed; internal ones only inside an allow-listed range."""

    allowed: tuple[IpNetwork, ...] = ()

    @staticmethod
    def from_cidrs(cidrs: Iterable[str]) -> TargetPolicy:
        return TargetPolicy(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def allows(self, address: str | IpAddress) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        inner = _unwrapped(ip)  # an embedded IPv4 address is where the packets really go
        if any(c in net for c in (ip, inner) for net in self.allowed if c.version == net.version):
            return True
        return not _internal(inner)

    def check(self, addresses: Sequence[str]) -> None:
        """Raise unless there is an address and every one of them is allowed."""
        if not addresses:
            raise TargetNotAllowed("the host resolves to no address")
        refused = [a for a in addresses if not self.allows(a)]
        if refused:
            raise TargetNotAllowed(f"the host resolves to {', '.join(refused)}, which webhooks may not reach")


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntax rules: its host and port, ready to be resolved."""

    host: str
    port: int


def parse_target(url: str, pointer: str = "#/body/url") -> tuple[Target | None, list[Problem]]:
    """Check a webhook URL's form: http(s), a host, no credentials; its addresses are checked later."""

    def bad(message: str) -> tuple[Target | None, list[Problem]]:
        return None, [Problem(pointer, "invalid_url", message)]

    if len(url) > MAX_URL_LENGTH:
        return bad(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return bad(str(exc))
    if parts.scheme not in ("http", "https"):
        return bad("only http and https URLs are allowed")
    if not parts.hostname:
        return bad("the URL has no host")
    if parts.username is not None or parts.password is not None:
        return bad("credentials in the URL are not allowed; authenticate with the signature")
    if parts.fragment:
        return bad("a fragment is never sent; remove it")
    return Target(parts.hostname, port or (443 if parts.scheme == "https" else 80)), []
