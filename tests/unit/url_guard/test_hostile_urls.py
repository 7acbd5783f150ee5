"""Hostile URLs through the download and callback paths: every one refused, none reaching the canary.

The canary is a real HTTP server on 127.0.0.1; every hostile spelling below would reach it
(or a private address) if the guard let it through. DNS names are answered by a stub in
place of `url_guard.resolver`. The redirect cases start at a "public CDN": a real server on
127.0.0.2 that the stub classifies as public (the one address the tests treat so).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer.core import url_guard
from producer.core.callbacks import CallbackUrlError, check_callback_url
from producer.core.url_guard import UrlPolicy
from tests.support.http_fixture import LocalServer
from workers.artifacts.downloader import download_to_storage
from workers.callback_delivery import post
from workers.storage import FileStorage
from workers.upstream.errors import PermanentError

PUBLIC_CDN = "127.0.0.2"
# The default: no allow-list, no private networks.
OPEN = UrlPolicy(list_name="SONGQUEUE_DOWNLOAD_ALLOWED_HOSTS", max_length=url_guard.MAX_DOWNLOAD_URL_LENGTH)

# DNS names the stub resolver answers; anything else does not resolve.
DNS = {
    "localhost": ["127.0.0.1", "::1"],
    "private.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["8.8.8.8", "127.0.0.1"],
    "v6.test": ["::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "cgnat.test": ["100.64.1.2"],
    "ten.test": ["10.1.2.3"],
    "cdn.public.test": [PUBLIC_CDN],
    "cdn.example.com": ["93.184.216.34"],
}


def hostile(port: int) -> list[str]:
    """Each would reach the canary on 127.0.0.1:`port` or another private address."""
    p = port
    return [
        # loopback in every spelling
        f"http://127.0.0.1:{p}/x.mp3", f"http://127.0.0.1.:{p}/x.mp3", f"HTTP://127.0.0.1:{p}/x.mp3",
        f"http://2130706433:{p}/x.mp3", f"http://0x7f000001:{p}/x.mp3", f"http://0x7F.0.0.1:{p}/x.mp3",
        f"http://0177.0.0.1:{p}/x.mp3", f"http://017700000001:{p}/x.mp3", f"http://127.1:{p}/x.mp3",
        f"http://127.0.1:{p}/x.mp3", f"http://0:{p}/x.mp3", f"http://0.0.0.0:{p}/x.mp3",
        f"http://[::1]:{p}/x.mp3", f"http://[::ffff:127.0.0.1]:{p}/x.mp3", f"http://[::ffff:7f00:1]:{p}/x.mp3",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/x.mp3", f"http://[::]:{p}/x.mp3", f"http://[::127.0.0.1]:{p}/x.mp3",
        f"http://[64:ff9b::127.0.0.1]:{p}/x.mp3", f"http://[2002:7f00:1::]:{p}/x.mp3",
        # other non-public ranges, some in odd spellings
        "http://169.254.169.254/latest/meta-data/", "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/", "http://0251.0376.0251.0376/latest/", "http://[fd00:ec2::254]/latest/",
        "http://[::ffff:169.254.169.254]/latest/", "http://10.0.0.7:9000/x", "http://0x0a.0.0.1/x", "http://012.0.0.1/x",
        "http://167772161/x", "http://172.16.0.1/x", "http://192.168.1.1/x", "http://100.64.0.1/x",
        "http://224.0.0.1/x", "http://240.0.0.1/x", "http://255.255.255.255/x", "http://198.18.0.1/x",
        "http://192.0.2.1/x", "http://[fe80::1]/x", "http://[fe80::1%25eth0]/x", "http://[fc00::1]/x",
        "http://[ff02::1]/x",
        # DNS names that answer with private addresses
        f"http://localhost:{p}/x.mp3", f"http://private.test:{p}/x.mp3", "http://metadata.test/latest/",
        f"http://mixed.test:{p}/x.mp3", f"http://v6.test:{p}/x.mp3", f"http://mapped.test:{p}/x.mp3",
        "http://cgnat.test/x", "http://ten.test/x", f"http://unresolvable.test:{p}/x.mp3",
        # parser confusion: backslash, userinfo, fragments, odd forms
        f"http://127.0.0.1:{p}\\@cdn.example.com/x.mp3", f"http://cdn.example.com\\@127.0.0.1:{p}/x.mp3",
        f"http://cdn.example.com@127.0.0.1:{p}/x.mp3", f"http://user:pass@127.0.0.1:{p}/x.mp3",
        f"http://127.0.0.1:{p}#@cdn.example.com/x.mp3", f"http://127.0.0.1:{p}?@cdn.example.com/x.mp3",
        f"http:/127.0.0.1:{p}/x.mp3", f"http:\\\\127.0.0.1:{p}/x.mp3", f"//127.0.0.1:{p}/x.mp3",
        f"http://127.0.0.1:{p}/x\r\nHost: cdn.example.com", f"http://127.0.0.1:{p}\t/x.mp3",
        f" http://127.0.0.1:{p}/x.mp3", f"http://[::1]:{p}:80/x.mp3", "http://127.0.0.1:0/x", "http://127.0.0.1:65536/x",
        "http://127.0.0.1:+80/x", "http://exa mple.com/x", f"http://%31%32%37.0.0.1:{p}/x",
        "http://\u2460\u2461\u2466.0.0.1/x", "http://cdn.123/x", "http:///x.mp3", "http://:80/x.mp3",
        # other schemes
        "file:///etc/passwd", f"gopher://127.0.0.1:{p}/_x", f"ftp://127.0.0.1:{p}/x", f"dict://127.0.0.1:{p}/",
        "javascript:alert(1)", "data:audio/mpeg;base64,AAAA",
        # very long
        f"http://127.0.0.1:{p}/" + "a" * 9000, "http://" + "a" * 8200 + ".com/x", "http://" + "a" * 70 + ".com/x",
    ]


def redirect_targets(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/x.mp3", f"http://localhost:{port}/x.mp3", f"http://2130706433:{port}/x.mp3",
            f"http://[::ffff:127.0.0.1]:{port}/x.mp3", f"http://private.test:{port}/x.mp3",
            "http://169.254.169.254/latest/meta-data/", f"http://127.0.0.1:{port}\\@cdn.example.com/x.mp3",
            "file:///etc/passwd", f"http://u@127.0.0.1:{port}/x.mp3", "http://metadata.test/latest/"]


@pytest.fixture
def canary() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture(autouse=True)
def stub_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: int) -> list[str]:
        if host not in DNS:
            raise OSError("no such host")
        return DNS[host]

    real = url_guard.refused_range
    monkeypatch.setattr(url_guard, "resolver", resolve)
    monkeypatch.setattr(url_guard, "refused_range",
                        lambda address: None if address == ipaddress.ip_address(PUBLIC_CDN) else real(address))


def _refused_download(url: str, tmp_path: Path) -> PermanentError:
    storage = FileStorage(tmp_path / "objects")
    with pytest.raises(PermanentError) as caught:
        download_to_storage(url, storage, kind="audio", key_for=lambda ext: f"a.{ext}", max_bytes=1 << 20,
                            timeout=2, chunk_bytes=4096, policy=OPEN)
    assert not (tmp_path / "objects").exists() or not any((tmp_path / "objects").rglob("*"))
    return caught.value


def test_hostile_download_urls_are_refused_and_never_requested(canary: LocalServer, tmp_path: Path) -> None:
    urls = hostile(canary.port)
    assert len(urls) >= 60
    codes = {_refused_download(url, tmp_path).code for url in urls}
    assert codes <= {"download_bad_url", "download_private_address"}
    assert canary.requests == []


def test_refusals_name_the_rule(tmp_path: Path) -> None:
    err = _refused_download("http://169.254.169.254/latest/meta-data/", tmp_path)
    assert err.code == "download_private_address"
    assert "link-local" in err.message and "SONGQUEUE_ALLOW_PRIVATE_NETWORKS" in err.message
    assert "backslash" in _refused_download("http://a.test\\@127.0.0.1/x", tmp_path).message
    assert "user:password@" in _refused_download("http://a@127.0.0.1/x", tmp_path).message


def test_redirects_into_private_space_are_refused_before_the_hop(canary: LocalServer, tmp_path: Path) -> None:
    targets = redirect_targets(canary.port)
    with LocalServer(PUBLIC_CDN) as cdn:
        for n, target in enumerate(targets):
            cdn.route(f"/r{n}.mp3", status=302, headers={"Location": target})
            _refused_download(f"http://cdn.public.test:{cdn.port}/r{n}.mp3", tmp_path)
        assert len(cdn.requests) == len(targets)
    assert canary.requests == []


def test_hostile_callback_urls_are_refused_at_submit_and_delivery(canary: LocalServer) -> None:
    policy = UrlPolicy(list_name="SONGQUEUE_CALLBACK_ALLOWED_HOSTS")
    urls = hostile(canary.port)
    at_delivery = 0
    for url in urls:
        try:
            check_callback_url(url, policy)  # the producer, at submit: no DNS
        except CallbackUrlError as exc:
            assert exc.rule and exc.code.startswith("url_")
        with pytest.raises(CallbackUrlError):
            # the worker, before each delivery: resolves, then would POST to the pinned address
            post(check_callback_url(url, policy, resolve=True), b"{}", secret=b"k", event="job.failed",
                 delivery="d", timeout=1)
        at_delivery += 1
    assert at_delivery == len(urls) and canary.requests == []


def test_the_connection_is_pinned_to_the_checked_address(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A DNS name that answers once with the allowed address and then with another still reaches the first."""
    answers = iter([["127.0.0.1"], ["10.255.255.1"]])
    monkeypatch.setattr(url_guard, "resolver", lambda host, port: next(answers))
    with LocalServer() as server:
        server.route("/x.mp3", status=404)
        url = f"http://rebind.test:{server.port}/x.mp3"
        with pytest.raises(PermanentError, match="HTTP 404"):
            download_to_storage(url, FileStorage(tmp_path), kind="audio", key_for=lambda ext: f"a.{ext}",
                                max_bytes=1 << 20, timeout=2, chunk_bytes=4096,
                                policy=UrlPolicy(frozenset({"rebind.test"})))
        [(_, path, headers, _)] = server.requests
    assert path == "/x.mp3" and headers["Host"] == f"rebind.test:{server.port}"


def test_allow_list_and_private_switch_let_the_sandbox_through(canary: LocalServer) -> None:
    url = canary.url("/x")
    assert UrlPolicy(frozenset({"127.0.0.1"})).check(url).address == "127.0.0.1"
    assert UrlPolicy(allow_private=True).check(url).address == "127.0.0.1"
    # Strict parsing holds even where private networks are allowed.
    with pytest.raises(url_guard.UrlRefused, match="backslash"):
        UrlPolicy(allow_private=True).check(f"http://127.0.0.1:{canary.port}\\@a.test/x")
