"""HTTP to a URL the guard checked, connected to the address it checked (no second DNS answer).

`producer.client.url_guard.check_url` resolves the host once and says which address is
allowed. The requests here go to exactly that address: urllib3 connects to a connection's
`_dns_host`, while the Host header, TLS SNI and certificate check keep using the host as
written. A fresh session per request, so a pinned pool is never shared with another host.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from producer.client.url_guard import CheckedUrl
from workers.upstream.http_client import USER_AGENT


class _Pinned:
    """Mixin for urllib3 connections: the socket goes to `pinned_address`, nothing else changes.

    urllib3 connects to `_dns_host`, which is also what `host` (the Host header, TLS SNI,
    the certificate check) reads; it is swapped for the connect only.
    """

    pinned_address = ""
    _dns_host: str

    def _new_conn(self) -> Any:
        written, self._dns_host = self._dns_host, self.pinned_address
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = written


class _PinnedHTTPConnection(_Pinned, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


def _pool(base: type[HTTPConnectionPool], connection: type[_Pinned], address: str) -> type[HTTPConnectionPool]:
    conn_cls = type(connection.__name__, (connection,), {"pinned_address": address})
    return type(base.__name__, (base,), {"ConnectionCls": conn_cls})


class PinnedAdapter(HTTPAdapter):
    """A transport adapter whose every connection goes to one address."""

    def __init__(self, address: str) -> None:
        self._address = address  # read by init_poolmanager, which HTTPAdapter.__init__ calls
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _pool(HTTPConnectionPool, _PinnedHTTPConnection, self._address),
            "https": _pool(HTTPSConnectionPool, _PinnedHTTPSConnection, self._address),
        }


def pinned_session(checked: CheckedUrl) -> requests.Session:
    """A session that sends anything for `checked` to its checked address, and nothing anywhere else."""
    if checked.address is None:
        raise ValueError("the URL was checked without resolving; nothing to pin to")
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False  # an environment proxy would bypass the pinned address
    adapter = PinnedAdapter(checked.address)
    session.adapters.clear()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def pinned_request(checked: CheckedUrl, method: str, **kwargs: Any) -> requests.Response:
    """`method` on the checked URL, never following a redirect (the caller checks each hop).

    With `stream=True` the session stays open until the response is closed.
    """
    session = pinned_session(checked)
    try:
        response = session.request(method, checked.url, allow_redirects=False, **kwargs)
    except BaseException:
        session.close()
        raise
    if not kwargs.get("stream"):
        session.close()
    return response
