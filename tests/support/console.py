"""Logging in to the console the way a browser does: the login page's CSRF token, then the form."""

from __future__ import annotations

import re

import requests

_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def console_login(session: requests.Session, url: str, key: str) -> requests.Response:
    """POST /console/login with the token of GET /console/login (its pre-session cookie stays in `session`)."""
    token = csrf_of(session.get(f"{url}/console/login", timeout=30).text)
    return session.post(f"{url}/console/login", data={"api_key": key, "csrf": token}, timeout=30)
