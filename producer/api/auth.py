"""Bearer authentication and scopes: which key calls, and what it may do.

Every /v1 route needs a key (`Authorization: Bearer sq_...`): 401 without a valid one,
403 when the key lacks the route's scope. A non-admin key sees only its tenant's jobs;
another tenant's job answers 404, so a key cannot learn which ids exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from producer.api.edge import CONSOLE_COOKIE, EDGE_KEY
from producer.api.problems import Problem
from producer.api.state import ApiState, api_state
from producer.core.models.job_record import JobRecord
from producer.core.store import keys as store_keys
from producer.core.store.api_keys import ApiKey

_bearer = HTTPBearer(auto_error=False, description="an API key from `songqueue keys create`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# CONSOLE_COOKIE, the console's session cookie (producer/api/console/sessions.py): a session
# id, HttpOnly and SameSite=Strict, so a page's script cannot read it and another site cannot
# make the browser send it. It lets `<audio>`, `<img>` and EventSource, which cannot send a
# Bearer header, reach these routes (GETs; the console's own POSTs carry a CSRF token too).
__all__ = ["CONSOLE_COOKIE", "needs", "visible_job", "visible_job_async"]


def needs(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency: the calling key, which must hold `scope` (admin holds every scope).

    The edge (producer/api/edge.py) finds the scope here (`required_scope`) and checks the key
    before the body is read; this check stands behind it, and reuses the key it found.
    """

    # Async: the key the edge found is taken without a hop to the thread pool; only a request
    # the edge let through without one (no edge in front) looks it up there, where Redis may block.
    async def caller(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiKey:
        found = getattr(request.state, EDGE_KEY, None)
        if isinstance(found, ApiKey) and found.allows(scope):
            return found
        return await run_in_threadpool(_look_up, request, credentials, scope)

    caller.required_scope = scope  # type: ignore[attr-defined]
    return caller


def _look_up(request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str) -> ApiKey:
    keys = api_state(request).keys
    session = request.cookies.get(CONSOLE_COOKIE)
    if credentials is None and not session:
        raise Problem(401, "an API key is required: Authorization: Bearer <key>", _CHALLENGE)
    key = keys.authenticate(credentials.credentials) if credentials is not None else keys.resume(session or "")
    if key is None:
        raise Problem(401, "unknown or revoked API key", _CHALLENGE)
    if not key.allows(scope):
        raise Problem(403, f"this key lacks the {scope!r} scope")
    return key


def visible_job(state: ApiState, key: ApiKey, job_id: str) -> JobRecord:
    """The job, if this key may see it; 404 otherwise (for unknown ids and others' jobs alike)."""
    return _visible(state.queue.store.get(job_id), key, job_id)


async def visible_job_async(state: ApiState, key: ApiKey, job_id: str) -> JobRecord:
    """`visible_job` read from the event loop, through the job store's Redis for asyncio."""
    raw = await state.aredis.get(store_keys.job(state.queue.store.prefix, job_id))
    return _visible(JobRecord.model_validate_json(raw) if raw else None, key, job_id)


def _visible(record: JobRecord | None, key: ApiKey, job_id: str) -> JobRecord:
    if record is None or not ("admin" in key.scopes or record.tenant == key.tenant):
        raise Problem(404, f"no job {job_id}")
    return record
