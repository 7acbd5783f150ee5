"""The app factory: routes, problem+json errors, body limits, OpenAPI at /openapi.json, /docs and /redoc
(producer/api/reference.py, no CDN), `/` to the console."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from producer.api import health, hooks, jobs, key_caps, playlists, problems, reference, songs, uploads
from producer.api.console import playlists as console_playlists
from producer.api.console import routes as console_routes
from producer.api.edge import Credential, Edge, required_scope_of
from producer.api.problems import Problem
from producer.api.state import ApiState
from producer.core.settings import Settings, get_settings
from producer.core.store.api_keys import ApiKey, KeyStore, load

TITLE = "songqueue"
VERSION = "1"
_FORM_OVERHEAD = 64 << 10


def create_app(settings: Settings | None = None, *, max_body_bytes: int = 1 << 20,
               body_read_timeout: float = 30.0, max_upload_bytes: int = uploads.DEFAULT_MAX_UPLOAD) -> FastAPI:
    app = FastAPI(title=TITLE, version=VERSION, docs_url=None, redoc_url=None,  # reference.py serves them, CDN-free
                  description="Queue AI song generation jobs, follow them, and fetch their songs. "
                              "Every /v1 route needs `Authorization: Bearer <key>` (`songqueue keys create`).")
    app.state.api = ApiState.from_settings(settings or get_settings())
    app.state.api.max_upload_bytes = max_upload_bytes
    routers = [m.router for m in (jobs, songs, uploads, playlists, health, hooks, console_routes, console_playlists,
                                  reference)]
    for router in routers:
        app.include_router(router)
    app.mount("/console/static", console_routes.static, name="console-static")
    reference.install(app)
    problems.install(app)
    # An upload's body is its file plus the multipart framing (boundaries, part headers).
    _guard(app, routers, max_body_bytes, body_read_timeout, {uploads.PATH: max_upload_bytes + _FORM_OVERHEAD})
    return app


def create_hooks_app(settings: Settings | None = None, *, max_body_bytes: int = 1 << 20,
                     body_read_timeout: float = 30.0) -> FastAPI:
    """What `songqueue hooks` serves: the notify hook and the health probes, nothing else
    (no jobs, no console, no uploads: the hook's port may face the gateways' internet)."""
    app = FastAPI(title=f"{TITLE} hooks", version=VERSION, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.api = ApiState.from_settings(settings or get_settings())
    routers = [hooks.router, health.router]
    for router in routers:
        app.include_router(router)
    problems.install(app)
    _guard(app, routers, max_body_bytes, body_read_timeout, {})
    return app


def _guard(app: FastAPI, routers: list[APIRouter], max_body_bytes: int, body_read_timeout: float,
           caps: dict[str, int]) -> None:
    """The edge (producer/api/edge.py) in front of `app`, reading each route's scope from `routers`."""
    async def admit(presented: Credential, scope: str | None) -> tuple[ApiKey | None, Problem | None]:
        api: ApiState = app.state.api
        keys: KeyStore = api.keys
        if presented.session:  # the console's cookie: its session is read by the blocking store, in the pool
            key_id = await run_in_threadpool(keys.session_key_id, presented.secret)
        else:
            key_id = await keys.key_id_async(api.aredis, presented.secret)
        if key_id is None:
            return None, None
        if scope is None:  # a route open to anyone: the key only sets the body cap
            raw = await api.aredis.get(keys.record_key(key_id))
            key = load(raw) if raw else None
            return (key if key is not None and key.revoked_at is None else None), None
        return await key_caps.admit(api.aredis, keys, api.settings, key_id, scope)

    routes = [route for router in routers for route in router.routes]
    for route in routes:  # any route that takes a key may answer 429 (its request rate)
        if isinstance(route, APIRoute) and required_scope_of(route) is not None:
            route.responses = {**problems.documented(429), **route.responses}
    app.add_middleware(Edge, routes=routes, admit=admit, max_bytes=max_body_bytes,
                       read_timeout=body_read_timeout, caps=caps)


def openapi_document() -> dict:
    """The OpenAPI document without a Redis behind it (docs/openapi.json, the drift test)."""
    return create_app(Settings(redis_url="redis://127.0.0.1:1/0")).openapi()
