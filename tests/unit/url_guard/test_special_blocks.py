"""Every block of the special-purpose table (producer/core/special_addresses.py) is refused by
the outbound guard: one test per block, generated from the table, at the block's first,
middle and last address, as a literal URL host and as a DNS answer."""

from __future__ import annotations

import ipaddress

import pytest

from producer.core import special_addresses, url_guard
from producer.core.special_addresses import BLOCKS, Block
from producer.core.url_guard import UrlRefused, check_url

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _samples(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[IpAddress]:
    first, last = int(network.network_address), int(network.broadcast_address)
    cls = type(network.network_address)
    return [cls(first), cls(first + (last - first) // 2), cls(last)]


def _literal(address: IpAddress) -> str:
    return f"http://[{address}]/x" if address.version == 6 else f"http://{address}/x"


def _embedding(block: Block, inner: str) -> ipaddress.IPv6Address:
    """An address of `block` carrying the IPv4 address `inner` where the connection goes."""
    v4 = int(ipaddress.IPv4Address(inner))
    base = int(block.network.network_address)
    if block.name == "6to4":
        return ipaddress.IPv6Address(base | (v4 << 80))
    if block.name == "Teredo":  # the client address is stored inverted in the last 32 bits
        return ipaddress.IPv6Address(base | (~v4 & 0xFFFFFFFF))
    return ipaddress.IPv6Address(base | v4)  # IPv4-mapped, NAT64


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.embeds_ipv4], ids=lambda b: f"{b.network} {b.name}")
def test_every_address_of_a_special_block_is_refused(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    for address in _samples(block.network):
        assert url_guard.refused_range(address) is not None, address
        if special_addresses.block_of(address) is block:
            assert url_guard.refused_range(address) == block.name
        with pytest.raises(UrlRefused) as literal:
            check_url(_literal(address))
        assert literal.value.code == "url_private_address"
        monkeypatch.setattr(url_guard, "resolver", lambda host, port, a=address: [str(a)])
        with pytest.raises(UrlRefused) as named:
            check_url("http://looks-public.example/x")
        assert named.value.code == "url_private_address"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.embeds_ipv4], ids=lambda b: f"{b.network} {b.name}")
def test_a_block_that_carries_ipv4_is_judged_by_that_address(block: Block) -> None:
    for inner in ("10.1.2.3", "127.0.0.1", "169.254.169.254", "192.0.2.1"):
        address = _embedding(block, inner)
        assert special_addresses.block_of(address) is block
        kind = url_guard.refused_range(address)
        assert kind is not None and kind.endswith("(IPv4 inside IPv6)"), (address, kind)
        with pytest.raises(UrlRefused):
            check_url(_literal(address))
    public = _embedding(block, "93.184.216.34")
    assert url_guard.refused_range(public) is None  # the contrast: the same block with a public address passes


def test_site_local_and_ordinary_addresses() -> None:
    assert url_guard.refused_range(ipaddress.ip_address("fec0::1")) == "site-local (deprecated)"
    for public in ("93.184.216.34", "8.8.8.8", "2606:4700::6810:84e5"):
        assert url_guard.refused_range(ipaddress.ip_address(public)) is None
