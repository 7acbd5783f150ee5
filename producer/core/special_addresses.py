"""The address blocks the outbound guard refuses: IANA's special-purpose registries, as one table.

Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries
(https://www.iana.org/assignments/iana-ipv4-special-registry,
https://www.iana.org/assignments/iana-ipv6-special-registry), plus the blocks those
registries leave to the address-space registries but which are no place for a callback
or a download either: IPv4 multicast and the reserved 240/4, IPv6 multicast and the
deprecated site-local fec0::/10 (RFC 3879), which some stacks still route locally.

Every block is refused, the globally reachable anycast services included (a callback to
the AS112 sink or the TURN anycast address is a mistake or an attack), with one kind of
exception: the four IPv6 blocks that carry an IPv4 address (`embeds_ipv4`) are judged by
that address, because it is where the connection goes: `::ffff:10.0.0.1` is refused as
private, while on a NAT64 network `64:ff9b::` plus a public address is how every IPv4
host is reached at all.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    name: str
    embeds_ipv4: bool = False


def _table(*rows: tuple[str, str] | tuple[str, str, bool]) -> tuple[Block, ...]:
    return tuple(Block(ipaddress.ip_network(row[0]), row[1], *row[2:]) for row in rows)


BLOCKS: tuple[Block, ...] = _table(
    # IPv4 Special-Purpose Address Registry
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "CGNAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "AS112 direct delegation"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    # IPv4 address space: not special-purpose, never a server
    ("224.0.0.0/4", "multicast"),
    # IPv6 Special-Purpose Address Registry
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped", True),
    ("64:ff9b::/96", "NAT64", True),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/32", "Teredo", True),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4", True),
    ("2620:4f:8000::/48", "AS112 direct delegation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    # IPv6 address space: deprecated or not a server
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
    # IPv4-compatible (deprecated, RFC 4291): ::a.b.c.d, no longer routed
    ("::/96", "IPv4-compatible (deprecated)"),
)


def block_of(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Block | None:
    """The table's block holding `address` (the most specific one), or None for an ordinary address."""
    hits = [b for b in BLOCKS if b.network.version == address.version and address in b.network]
    return max(hits, key=lambda b: b.network.prefixlen) if hits else None
