"""The edge: who is calling, decided from the request's head, before a byte of its body is read.

A pure ASGI middleware in front of FastAPI (which parses and spools bodies before any
dependency runs, so a route's own key check comes after the body). For each request:

1. The route it goes to, and the scope that route needs: read from the route itself (the
   `needs(scope)` dependency of producer/api/auth.py), so the edge and the route cannot disagree.
2. The caller's key, from `Authorization: Bearer` or the console's session cookie. A route that
   needs a key answers 401 (no valid key) or 403 (the key lacks the scope) here, the body
   unread; when a body was announced the answer says `Connection: close`, so the server
   drops the connection instead of draining the body. Then the key's request rate
   (producer/api/key_caps.py): 429 with Retry-After, the body unread too. The key's record,
   its scope and its rate are one Redis round trip (`admit`), awaited in the event loop.
3. The body cap: the route's (uploads have their own), but ANONYMOUS_MAX_BODY for a caller
   without a valid key on any route (a login form and a gateway's hook call are small).
   A declared Content-Length over it is a 413 at once; a body that arrives is counted as it
   arrives (chunked bodies too) and is never buffered here: past the cap, or past the read
   timeout, the read the app is making fails with 413 / 408 (an HTTPException FastAPI hands
   to the problem+json handlers). So an upload streams into the form parser's capped spool
   (memory up to 1 MiB, then a temporary file), and only once its key was checked.

The key found goes to the route in `scope["state"]` (`EDGE_KEY`), so `needs` does not look
it up a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer.api.problems import Problem, problem_response
from producer.core.store.api_keys import ApiKey

EDGE_KEY = "songqueue_edge_key"
ANONYMOUS_MAX_BODY = 64 << 10
# The console's session cookie: a session id (producer/core/store/console_sessions.py), never a key.
CONSOLE_COOKIE = "songqueue_console_session"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_CLOSE = {"Connection": "close"}


def required_scope_of(route: BaseRoute) -> str | None:
    """The scope a route's `needs(scope)` dependency demands, or None for a route open to anyone."""
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dep = pending.pop()
        scope = getattr(dep.call, "required_scope", None)
        if isinstance(scope, str):
            return scope
        pending.extend(dep.dependencies)
    return None


@dataclass(frozen=True)
class Credential:
    secret: str
    session: bool  # True: a console session id from the cookie; False: a Bearer key


def credentials(headers: Headers) -> Credential | None:
    """What the request presents: a Bearer key, else the console's session cookie."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return Credential(token.strip(), session=False)
    session = cookie_parser(headers.get("cookie", "")).get(CONSOLE_COOKIE)
    return Credential(session, session=True) if session else None


class Edge:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute],
                 admit: Callable[[Credential, str | None], Awaitable[tuple[ApiKey | None, Problem | None]]],
                 max_bytes: int, read_timeout: float, caps: dict[str, int] | None = None,
                 anonymous_max_bytes: int = ANONYMOUS_MAX_BODY) -> None:
        self.app = app
        # (credential, the route's scope or None) -> (the live key or None, a 403/429 Problem or None)
        self.admit = admit
        self.routes = routes  # the app's routes, as its routers declare them (full paths)
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.caps = caps or {}  # path -> its own cap (POST /v1/uploads takes files)
        self.anonymous_max_bytes = anonymous_max_bytes
        self._scopes: dict[int, str | None] = {}

    def _needed(self, scope: Scope) -> str | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                if id(route) not in self._scopes:
                    self._scopes[id(route)] = required_scope_of(route)
                return self._scopes[id(route)]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared_text = headers.get("content-length")
        declared = int(declared_text) if declared_text is not None and declared_text.isdigit() else None
        has_body = bool(declared) or "chunked" in headers.get("transfer-encoding", "").lower()
        closing = _CLOSE if has_body else {}
        needed = self._needed(scope)
        presented = credentials(headers)
        key, refused = await self.admit(presented, needed) if presented and (needed or has_body) else (None, None)
        if needed is not None:
            if key is None:
                detail = "unknown or revoked API key" if presented else "an API key is required: Authorization: Bearer <key>"
                await problem_response(401, detail, {**_CHALLENGE, **closing})(scope, receive, send)
                return
            if refused is not None:  # 403 (the key lacks the scope) or 429 (its request rate)
                await problem_response(refused.status, refused.detail, {**refused.headers, **closing})(
                    scope, receive, send)
                return
        if key is not None:
            scope.setdefault("state", {})[EDGE_KEY] = key
        cap = self.caps.get(scope.get("path", ""), self.max_bytes)
        if key is None:
            cap = min(cap, self.anonymous_max_bytes)
        if declared is not None and declared > cap:
            await problem_response(413, f"the body is over {cap} bytes", _CLOSE)(scope, receive, send)
            return
        await self.app(scope, _counted(receive, cap, self.read_timeout), send)


def _counted(receive: Receive, cap: int, read_timeout: float) -> Receive:
    """`receive`, counting the body as it passes: HTTPException 413 past `cap`, 408 past the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + read_timeout
    size = 0
    done = False

    async def counted() -> Message:
        nonlocal size, done
        if done:
            return await receive()  # after the body: only the disconnect is left to hear
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise HTTPException(408, f"the body did not arrive within {read_timeout:g} s", _CLOSE) from None
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > cap:
                raise HTTPException(413, f"the body is over {cap} bytes", _CLOSE)
            done = not message.get("more_body", False)
        return message

    return counted
