"""HTTP to a URL the guard checked, connected to the address it checked (no second DNS answer).

`producer.core.url_guard.check_url` resolves the host once and says which address is
allowed. The requests here go to exactly that address: urllib3 connects to a connection's
`_dns_host`, while the Host header, TLS SNI and certificate check keep using the host as
written.

Sessions are kept per thread and per (scheme, host, port, address), so a download or
callback to a host already visited reuses its open connection (a new TCP, and TLS,
handshake per request was a large share of a download task's CPU) while a pinned pool is
still never shared with another host or another address: a host that now resolves
elsewhere gets a session of its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from producer.core.url_guard import CheckedUrl
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


# Sessions one thread keeps open; the least recently used is closed past this many.
KEPT_SESSIONS = 16
_kept = threading.local()


def _kept_sessions() -> OrderedDict[tuple[str, str, int, str], requests.Session]:
    sessions: OrderedDict[tuple[str, str, int, str], requests.Session] | None = getattr(_kept, "sessions", None)
    if sessions is None:
        sessions = _kept.sessions = OrderedDict()
    return sessions


def _session_for(checked: CheckedUrl) -> tuple[tuple[str, str, int, str], requests.Session]:
    key = (checked.scheme, checked.host, checked.port, checked.address or "")
    sessions = _kept_sessions()
    session = sessions.pop(key, None) or pinned_session(checked)
    sessions[key] = session
    while len(sessions) > KEPT_SESSIONS:
        sessions.popitem(last=False)[1].close()
    return key, session


def pinned_request(checked: CheckedUrl, method: str, **kwargs: Any) -> requests.Response:
    """`method` on the checked URL, never following a redirect (the caller checks each hop).

    With `stream=True` the connection is held until the response is closed, then goes
    back to this thread's session for the host and address.
    """
    key, session = _session_for(checked)
    try:
        return session.request(method, checked.url, allow_redirects=False, **kwargs)
    except BaseException:
        # Whatever failed (a refused connection, a timeout) starts afresh next time.
        _kept_sessions().pop(key, None)
        session.close()
        raise
