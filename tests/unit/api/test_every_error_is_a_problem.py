"""Every error of every route is problem+json, a crash included (no plain-text 500, no detail).

Called through ASGI directly: the app as uvicorn runs it, middleware and all."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from producer.api.app import create_app
from producer.core.settings import Settings


async def _get(app: Any, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "headers": [(b"host", b"x")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    with contextlib.suppress(RuntimeError):  # Starlette re-raises a crash after answering (for the log)
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def test_an_unexpected_exception_is_a_500_problem_without_its_message() -> None:
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("/srv/songs/secret-path.mp3")

    status, headers, body = asyncio.run(_get(app, "/boom"))
    assert status == 500 and headers[b"content-type"] == b"application/problem+json"
    assert b'"status":500' in body and b"secret-path" not in body
