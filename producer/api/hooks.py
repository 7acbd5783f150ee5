"""POST /hooks/{provider}: the notify hook the gateways call (what a call does: producer/ops/hook_server.py).

Gateways hold no songqueue key, so the hook takes none: a call can do no more than cause
one early poll of a job that is waiting (see hook_server). Bodies may come chunked; the
server's body cap applies. Its answers stay the JSON the gateways got before.
"""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from producer.api.state import api_state
from producer.ops.hook_server import Hooks

router = APIRouter(tags=["hooks"])
log = logging.getLogger("songqueue.hooks")


@router.post("/hooks/{provider}", responses={202: {"description": "one poll sent"}, 400: {}, 404: {}, 503: {}})
async def notify(provider: str, request: Request) -> JSONResponse:
    body = await request.body()
    api = api_state(request)
    try:
        status, answer = await _run(api.hooks, provider, body)
    except (redis.RedisError, kombu.exceptions.OperationalError, ConnectionError) as exc:
        log.warning("hook could not be handled: %s", exc)
        status, answer = 503, {"error": "songqueue is unavailable; try again"}
    return JSONResponse(answer, status_code=status)


async def _run(hooks: Hooks, provider: str, body: bytes) -> tuple[int, dict[str, Any]]:
    # Redis and the broker are blocking clients: off the event loop.
    return await run_in_threadpool(hooks.handle, provider, body)
