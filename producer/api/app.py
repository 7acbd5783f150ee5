"""The app factory: routes, problem+json errors, body limits, OpenAPI at /openapi.json, /docs."""

from __future__ import annotations

from fastapi import FastAPI

from producer.api import health, hooks, jobs, playlists, problems, songs, uploads
from producer.api.console import playlists as console_playlists
from producer.api.console import routes as console_routes
from producer.api.server import BodyLimits
from producer.api.state import ApiState
from producer.core.settings import Settings, get_settings

TITLE = "songqueue"
VERSION = "1"
_FORM_OVERHEAD = 64 << 10


def create_app(settings: Settings | None = None, *, max_body_bytes: int = 1 << 20,
               body_read_timeout: float = 30.0, max_upload_bytes: int = uploads.DEFAULT_MAX_UPLOAD) -> FastAPI:
    app = FastAPI(title=TITLE, version=VERSION,
                  description="Queue AI song generation jobs, follow them, and fetch their songs. "
                              "Every /v1 route needs `Authorization: Bearer <key>` (`songqueue keys create`).")
    app.state.api = ApiState.from_settings(settings or get_settings())
    app.state.api.max_upload_bytes = max_upload_bytes
    for module in (jobs, songs, uploads, playlists, health, hooks):
        app.include_router(module.router)
    app.include_router(console_routes.router)
    app.include_router(console_playlists.router)
    app.mount("/console/static", console_routes.static, name="console-static")
    problems.install(app)
    # An upload's body is its file plus the multipart framing (boundaries, part headers).
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes, read_timeout=body_read_timeout,
                       caps={uploads.PATH: max_upload_bytes + _FORM_OVERHEAD})
    return app


def openapi_document() -> dict:
    """The OpenAPI document without a Redis behind it (docs/openapi.json, the drift test)."""
    return create_app(Settings(redis_url="redis://127.0.0.1:1/0")).openapi()
