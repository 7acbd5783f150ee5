"""The one outbound URL guard: every URL songqueue did not configure itself is hostile until checked.

Result files and covers (and every redirect hop on the way to them) come from the gateway;
callback URLs come from whoever submits a job. Both go through `check_url`, which:

- parses strictly: http/https only, no backslash, no whitespace or control characters,
  no user:password@, a host that is either a plain DNS name or a canonical IP literal, a
  numeric port in 1..65535, at most MAX_URL_LENGTH characters (MAX_DOWNLOAD_URL_LENGTH
  for downloads). Python's `urlsplit` and
  urllib3 disagree on such URLs (`http://127.0.0.2:1\\@cdn.example/x`), so they are
  refused rather than interpreted;
- classifies the address: every block of IANA's special-purpose registries (loopback,
  private, link-local, CGNAT, documentation, benchmarking, multicast, reserved, site-local
  fec0::/10, ...: the one table in producer/core/special_addresses.py) is refused in every
  spelling (IPv4, IPv6, IPv4-mapped/6to4/NAT64/Teredo IPv6, decimal, octal and hex IPv4),
  unless the host is on the allow-list or private networks are allowed;
- resolves a DNS name once (`resolver`, patchable in tests), refuses it if any answer is
  in a refused range, and returns the address to pin the connection to, so a second DNS
  answer can never send the request elsewhere (workers/upstream/pinned_http.py connects there).

The producer calls it without resolving (`resolve=False`) when a job is submitted; the
worker calls it with resolution right before each request.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from producer.core import special_addresses
from producer.core.settings import Settings

MAX_URL_LENGTH = 2048  # what a callback_url may be (it is stored on the job)
# Signed CDN URLs carry long queries (and the sandbox puts titles in its file URLs).
MAX_DOWNLOAD_URL_LENGTH = 8192
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Whitespace and control characters (<= 0x20, and DEL): one regex scan, not a Python loop per character.
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """A URL the guard refuses: `code` for a job's error, `rule` a sentence naming the rule."""

    def __init__(self, code: str, rule: str) -> None:
        super().__init__(rule)
        self.code = code
        self.rule = rule


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed: the host as written (for Host and TLS) and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str | None  # None: not resolved (producer-side check)


@dataclass(frozen=True)
class UrlPolicy:
    """Which URLs one kind of outbound request may go to (downloads, callbacks)."""

    allowed_hosts: frozenset[str] = frozenset()
    allow_private: bool = False
    list_name: str = "the allow-list"
    max_length: int = MAX_URL_LENGTH

    def check(self, url: str, *, resolve: bool = True) -> CheckedUrl:
        return check_url(url, self.allowed_hosts, allow_private=self.allow_private, list_name=self.list_name,
                         resolve=resolve, max_length=self.max_length)


def download_policy(settings: Settings) -> UrlPolicy:
    return UrlPolicy(settings.download_hosts, settings.allow_private_networks, "SONGQUEUE_DOWNLOAD_ALLOWED_HOSTS",
                     MAX_DOWNLOAD_URL_LENGTH)


def callback_policy(settings: Settings) -> UrlPolicy:
    return UrlPolicy(settings.callback_hosts, settings.allow_private_networks, "SONGQUEUE_CALLBACK_ALLOWED_HOSTS")


def _default_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# Tests replace this to make a DNS name answer with a private address.
resolver: Callable[[str, int], list[str]] = _default_resolver


def refused_range(address: IpAddress) -> str | None:
    """The name of the special-purpose block `address` is in (producer/core/special_addresses.py),
    or None for an ordinary public address. A block that carries an IPv4 address (mapped,
    NAT64, 6to4, Teredo) is judged by that address."""
    block = special_addresses.block_of(address)
    if block is None:
        # A safety net under the table: whatever Python's own tables call not global.
        return None if address.is_global else "reserved"
    if not block.embeds_ipv4:
        return block.name
    assert isinstance(address, ipaddress.IPv6Address)
    inner = _embedded_ipv4(address)
    kind = refused_range(inner) if inner is not None else block.name
    return f"{kind} (IPv4 inside IPv6)" if kind else None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _ipv4_any_spelling(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address written as decimal, octal or hex, in 1 to 4 parts (inet_aton's rules)."""
    parts = host.rstrip(".").split(".")
    if not parts or len(parts) > 4 or not all(_NUMERIC_LABEL.match(p) for p in parts):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except (OSError, ValueError):
        return None


def _host_literal(host: str) -> IpAddress | None:
    """The IP address a host names literally (any spelling), or None for a DNS name; UrlRefused if odd."""
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:
            raise UrlRefused("url_bad_host", f"host {host} is not a plain IPv6 literal (zone ids are refused)")
        try:
            return ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UrlRefused("url_bad_host", f"host {host} is not a valid IPv6 address") from None
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.match(last):
        address = _ipv4_any_spelling(host)
        if address is None:
            raise UrlRefused("url_bad_host", f"host {host} looks numeric but is not an IPv4 address")
        if str(address) != host and refused_range(address) is None:
            raise UrlRefused("url_bad_host", f"host {host} is a non-canonical spelling of {address}; write it as {address}")
        return address
    labels = host.rstrip(".").split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise UrlRefused("url_bad_host", f"host {host[:80]!r} is not a valid DNS name (letters, digits, '-', '.')")
    return None


def _allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    bare = host.strip("[]").rstrip(".")
    return any(bare == h or bare.endswith("." + h) for h in allowed_hosts)


def parse_strict(url: str, max_length: int = MAX_URL_LENGTH) -> tuple[str, str, int]:
    """(scheme, host as written lower-cased, port) of an absolute http(s) URL; UrlRefused otherwise."""
    if len(url) > max_length:
        raise UrlRefused("url_too_long", f"the URL is {len(url)} characters, over the limit of {max_length}")
    if "\\" in url:
        raise UrlRefused("url_bad_syntax", "the URL contains a backslash, which parsers read differently")
    if _CONTROL.search(url):
        raise UrlRefused("url_bad_syntax", "the URL contains whitespace or control characters")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in SCHEMES or not url[len(scheme):].startswith("://"):
        raise UrlRefused("url_bad_scheme", f"must be an http:// or https:// URL, not {scheme or 'a relative'} URL")
    netloc = urlsplit(url).netloc
    if "@" in netloc:
        raise UrlRefused("url_userinfo", "the URL carries user:password@ credentials, which are refused")
    if not netloc.isascii():
        raise UrlRefused("url_bad_host", "the host must be ASCII (IDNA/punycode for international names)")
    host, port_text = netloc.lower(), ""
    if host.startswith("["):
        if "]" in host:
            close = host.index("]")
            host, port_text = host[:close + 1], host[close + 1:].removeprefix(":")
    elif ":" in host:
        host, port_text = host.split(":", 1)
    if not host or host in ("[]", "."):
        raise UrlRefused("url_bad_host", "the URL names no host")
    if netloc.endswith(":") or (port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536)):
        raise UrlRefused("url_bad_port", f"the port {port_text!r} is not a number in 1..65535")
    return scheme, host, int(port_text) if port_text else DEFAULT_PORTS[scheme]


def check_url(url: str, allowed_hosts: Collection[str] = (), *, allow_private: bool = False,
              list_name: str = "the allow-list", resolve: bool = True, max_length: int = MAX_URL_LENGTH) -> CheckedUrl:
    """The checked URL with the address to connect to; UrlRefused naming the rule otherwise.

    `allowed_hosts`: when not empty, only these hosts and their subdomains, and they may
    be private. `list_name` is the setting the allow-list comes from, for the message.
    """
    scheme, host, port = parse_strict(url, max_length)
    literal = _host_literal(host)
    listed = _allowed(host, allowed_hosts)
    if allowed_hosts and not listed:
        raise UrlRefused("url_host_not_allowed", f"host {host} is not in {list_name}")
    trusted = listed or allow_private
    if literal is not None:
        _refuse_private(host, literal, trusted, list_name)
        return CheckedUrl(url, scheme, host, port, str(literal) if resolve else None)
    if not resolve:
        return CheckedUrl(url, scheme, host, port, None)
    try:
        answers = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host.rstrip("."), port)]
    except (OSError, ValueError, UnicodeError):
        raise UrlRefused("url_unresolvable", f"host {host} does not resolve") from None
    if not answers:
        raise UrlRefused("url_unresolvable", f"host {host} does not resolve")
    for answer in answers:
        _refuse_private(host, answer, trusted, list_name)
    return CheckedUrl(url, scheme, host, port, str(answers[0]))


def _refuse_private(host: str, address: IpAddress, trusted: bool, list_name: str) -> None:
    kind = refused_range(address)
    if kind and not trusted:
        via = "" if host.strip("[]") == str(address) else f" (resolves to or spells {address})"
        raise UrlRefused("url_private_address",
                         f"host {host}{via} is a {kind} address; private networks are refused unless the host is in "
                         f"{list_name} or SONGQUEUE_ALLOW_PRIVATE_NETWORKS=true")
