"""Where a channel may send: no request of ours reaches the pool's own network by accident (pure).

A channel's URL is written by an admin or by a miner's own key: hostile until
checked. Refused, with the reason: any scheme but http(s), credentials in the
URL, and addresses that are not the public internet (loopback, private,
link-local (cloud metadata at 169.254.169.254), shared address space,
multicast, reserved, unspecified) unless the deployment allows them
(`allowed`: networks, e.g. 127.0.0.0/8 for the local stack and the tests).
A host name is checked again after DNS resolution, at send time
(`address_refusal` on every address it resolves to), so a name pointing
inside is refused like the address itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

__all__ = ["Network", "address_refusal", "parse_networks", "url_refusal"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES: Final = ("http", "https")
MAX_URL_CHARS: Final = 2_048
# Every label numeric (decimal, octal or hex): inet_aton's legacy forms of an IPv4 address.
_LEGACY_IPV4: Final = re.compile(r"^(?:(?:0x[0-9a-f]*|[0-9]+)\.){0,3}(?:0x[0-9a-f]*|[0-9]+)\.?$", re.IGNORECASE)


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """`127.0.0.0/8`, `::1`, `10.1.2.3`: ValueError naming the spec that is not one."""
    out = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{spec!r} is not an address or network: {exc}") from exc
    return tuple(out)


def address_refusal(address: str, allowed: Iterable[Network] = ()) -> str | None:
    """Why a resolved address may not be sent to, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone says nothing about the address
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in network for network in allowed if network.version == ip.version):
        return None
    for kind, flag in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
                       ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                       ("private", ip.is_private), ("reserved", ip.is_reserved),
                       ("not globally reachable", not ip.is_global)):
        if flag:
            return f"{ip} is a {kind} address" if kind != "not globally reachable" else f"{ip} is {kind}"
    return None


def url_refusal(url: str, allowed: Iterable[Network] = ()) -> str | None:
    """Why a channel's URL is refused as written (before any DNS), or None."""
    if len(url) > MAX_URL_CHARS:
        return f"longer than {MAX_URL_CHARS} characters"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme.lower() not in _SCHEMES:
        return "must be an http or https URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@): put secrets in the channel's secret fields"
    host = parts.hostname
    if not host:
        return "has no host"
    if port == 0:
        return "port 0 is not a port"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if host.rstrip(".").lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
            return address_refusal("127.0.0.1", allowed)
        if _LEGACY_IPV4.match(host):
            # 127.1, 0177.0.0.1, 2130706433, 0x7f.0.0.1: resolvers read these as addresses.
            return "must write an IP address in dotted decimal (a.b.c.d)"
        return None  # a name: checked on every address it resolves to, at send time
    return address_refusal(host, allowed)
