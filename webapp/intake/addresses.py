"""Which addresses a URL a user gave may reach: none that is internal, in any spelling.

Loopback, private, link-local (cloud metadata at 169.254.169.254), shared (100.64/10), multicast,
reserved, unspecified, documentation and site-local ranges are refused, also when written as
IPv4-mapped, IPv4-compatible, 6to4, NAT64 or Teredo IPv6, or as the integer, octal, hex and short
IPv4 forms that ``inet_aton`` accepts (``2130706433``, ``0x7f.1``, ``127.1``).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Sequence

from webapp.errors import ApplicationError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NOT_REACHABLE = "That address is not reachable from here."

# Spelled out instead of relying only on ipaddress's is_private/is_global, whose tables have
# changed between Python patch releases; a destination is refused if either says so.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT, shared address space
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
        "::/128",
        "::1/128",
        "::ffff:0:0/96",  # IPv4-mapped: checked through the embedded address, never used as is
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: relays forward to the embedded IPv4 address; no photo host needs it
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed by some stacks)
        "ff00::/8",  # multicast
    )
)
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")


class UrlRejected(ApplicationError):
    """The URL cannot be fetched; ``str(exc)`` is a plain sentence to show to the user."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses hidden inside an IPv6 address that a stack may end up connecting to."""
    found = []
    value = int(address)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if value >> 32 == 0:  # IPv4-compatible ::a.b.c.d (deprecated, still parsed)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if value >> 32 == 0xFFFF0000:  # IPv4-translated ::ffff:0:a.b.c.d (SIIT)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in _NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def is_forbidden_address(address: IPAddress) -> bool:
    """True for any address a user-supplied URL must not reach (ignoring allowed networks)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return True
        if any(is_forbidden_address(inner) for inner in _embedded_ipv4(address)):
            return True
        if address.is_site_local:
            return True
    if (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        return True
    return any(address in network for network in _BLOCKED_NETWORKS)


def check_address(
    address: str | IPAddress, allowed_networks: Sequence[IPNetwork] = ()
) -> IPAddress:
    """Return the parsed address if a fetch may connect to it, else raise :class:`UrlRejected`."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError as exc:
        raise UrlRejected(NOT_REACHABLE) from exc
    if any(parsed in network for network in allowed_networks):
        return parsed
    if is_forbidden_address(parsed):
        logger.warning("URL fetch refused: destination %s is in a forbidden range", parsed)
        raise UrlRejected(NOT_REACHABLE)
    return parsed


def literal_address(host: str) -> tuple[IPAddress | None, bool]:
    """(address, written_unusually) if ``host`` is an IP address in any spelling, else (None, _).

    ``inet_aton`` semantics are what libc resolvers apply to numeric host names, so
    ``2130706433``, ``0x7f.1``, ``017700000001`` and ``127.1`` all mean 127.0.0.1.
    """
    candidate = host.removesuffix(".")
    if ":" in candidate:
        try:
            return ipaddress.IPv6Address(candidate), False
        except ValueError as exc:
            raise UrlRejected("The URL's host name is not valid.") from exc
    try:
        return ipaddress.IPv4Address(candidate), candidate != host
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", candidate):
        try:
            packed = socket.inet_aton(candidate)
        except OSError:
            return None, False
        return ipaddress.IPv4Address(packed), True
    return None, False
