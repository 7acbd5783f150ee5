"""Control and inspection endpoints under ``/_sandbox/`` (no auth: test-only)."""

from __future__ import annotations

import json
import time

from sandbox.app import Sandbox
from sandbox.config import ConfigError
from sandbox.wire import Request, Response, error, json_response


def _json_body(req: Request) -> object:
    if not req.body.strip():
        return {}
    return json.loads(req.body.decode("utf-8"))


def get_config(app: Sandbox, req: Request) -> Response:
    return json_response(200, app.config_snapshot())


def set_config(app: Sandbox, req: Request) -> Response:
    try:
        return json_response(200, app.update_config(_json_body(req)))
    except (ValueError, ConfigError) as exc:
        return error(400, "invalid_request", str(exc))


def stats(app: Sandbox, req: Request) -> Response:
    return json_response(200, app.stats.snapshot(app.tasks.summary(time.time())))


def requests_log(app: Sandbox, req: Request) -> Response:
    try:
        limit = int(req.query.get("limit", ["100"])[0])
    except ValueError:
        return error(400, "invalid_request", "limit must be an integer")
    return json_response(200, {"requests": app.stats.recent_requests(limit)})


def reset(app: Sandbox, req: Request) -> Response:
    try:
        body = _json_body(req)
    except ValueError as exc:
        return error(400, "invalid_request", str(exc))
    app.reset(config=bool(isinstance(body, dict) and body.get("config")))
    return json_response(200, {"ok": True})


def health(app: Sandbox, req: Request) -> Response:
    return json_response(200, {"ok": True})
