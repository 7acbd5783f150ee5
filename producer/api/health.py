"""/healthz (the process answers) and /readyz (Redis and the broker answer, and storage can
serve downloads: S3 with credentials to sign links): the probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from producer.api.problems import documented, problem_response
from producer.api.state import api_state

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=documented(503))
def readyz(request: Request) -> Any:
    api = api_state(request)
    failures = []
    try:
        api.queue.store.redis.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason is reported
        failures.append(f"redis: {type(exc).__name__}")
    try:
        with api.queue.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:  # noqa: BLE001 - as above
        failures.append(f"broker: {type(exc).__name__}")
    unservable = api.queue.links.unservable()
    if unservable:
        failures.append(f"storage: {unservable}")
    if failures:
        return problem_response(503, "; ".join(failures))
    return JSONResponse({"status": "ready"})
