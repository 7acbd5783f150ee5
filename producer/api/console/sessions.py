"""The console's login: session cookies and CSRF tokens.

Logging in opens a server-side session (producer/core/store/console_sessions.py) and the
cookie holds only its id: HttpOnly, SameSite=Strict, Path=/, and Secure when the request
came over HTTPS (its scheme, which uvicorn takes from `X-Forwarded-Proto` only when the
proxy is one of FORWARDED_ALLOW_IPS, 127.0.0.1 by default). Path is / and not /console
because the pages' `<audio>`, `<img>` and EventSource reach the /v1 routes with it.

SameSite=Strict keeps other sites out, but not a sibling origin of the same site (another
port, another subdomain): every state-changing form carries the session's CSRF token, and
the POST is refused (403) without it. The login form itself carries a token bound to a
pre-session cookie (double submit), so a page elsewhere cannot log the browser in as its
own key.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

from producer.api.edge import CONSOLE_COOKIE
from producer.api.problems import Problem
from producer.api.state import api_state
from producer.core.store.api_keys import ApiKey
from producer.core.store.console_sessions import ConsoleSession, close_session, find_session, open_session

LOGIN_COOKIE = "songqueue_console_login"  # the login form's double-submit token
CSRF_FIELD = "csrf"
_CURRENT = "songqueue_console_current"
_FORGED = "the form's CSRF token is missing or wrong: reload the page and submit it again"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def current(request: Request) -> tuple[ApiKey, ConsoleSession] | None:
    """The key and session of the request's cookie, if the session is open and its key live
    (read once per request: the page and its template both ask)."""
    if _CURRENT in request.scope:
        found: tuple[ApiKey, ConsoleSession] | None = request.scope[_CURRENT]
        return found
    request.scope[_CURRENT] = _lookup(request)
    return request.scope[_CURRENT]


def _lookup(request: Request) -> tuple[ApiKey, ConsoleSession] | None:
    session_id = request.cookies.get(CONSOLE_COOKIE)
    state = api_state(request)
    session = find_session(state.keys.redis, state.keys.prefix, session_id) if session_id else None
    key = state.keys.resume(session.id) if session is not None else None
    return (key, session) if key is not None and session is not None else None


def log_in(request: Request, response: Response, key: ApiKey) -> None:
    state = api_state(request)
    ttl = state.settings.console_session_ttl
    session = open_session(state.keys.redis, state.keys.prefix, key.id, ttl)
    response.set_cookie(CONSOLE_COOKIE, session.id, max_age=int(ttl), httponly=True, samesite="strict", path="/",
                        secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/console/login")


def log_out(request: Request, response: Response) -> None:
    session_id = request.cookies.get(CONSOLE_COOKIE)
    if session_id:
        state = api_state(request)
        close_session(state.keys.redis, state.keys.prefix, session_id)
    response.delete_cookie(CONSOLE_COOKIE, path="/")


def check_csrf(session: ConsoleSession, sent: object) -> None:
    """403 unless the form carried this session's token."""
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Problem(403, _FORGED)


def login_token(request: Request) -> str:
    """The login form's token: the pre-session cookie's, or a new one (set by `with_login_cookie`)."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)


def with_login_cookie(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/console/login",
                        secure=_secure(request))
    return response


def check_login_token(request: Request, sent: object) -> None:
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise Problem(403, _FORGED)
