"""POST /hooks/{provider}: the notify hook the gateways call (what a call does: producer/api/notify_hook.py).

Gateways hold no songqueue key, so the hook takes none: a call can do no more than cause
one early poll of a job that is waiting, or, through a per-job URL whose `job` and `sig`
check, name the task of a job whose submit's answer was lost (see notify_hook.py). Bodies may
come chunked; a body over 64 KiB is a 413 and one nested deeper than 16 levels a 422
(problem+json; producer/api/bounded_json.py), before any parsing. Its answers stay the JSON the gateways got
before; a bad signature is a 403 problem+json.
"""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from producer.api.notify_hook import Forbidden, Hooks, Malformed
from producer.api.problems import documented, problem_response
from producer.api.state import api_state

router = APIRouter(tags=["hooks"])
log = logging.getLogger("songqueue.hooks")


@router.post("/hooks/{provider}", responses={202: {"description": "one poll sent, or the job's task id noted"},
                                            400: {}, 404: {}, 503: {}, **documented(403, 413, 422)})
async def notify(
    provider: str,
    request: Request,
    job: str | None = Query(None, max_length=200, description="the job this notify URL was made for"),
    sig: str | None = Query(None, max_length=200, description="HMAC-SHA256 of the provider and job (hex)"),
) -> JSONResponse:
    body = await request.body()
    api = api_state(request)
    try:
        status, answer = await _run(api.hooks, provider, body, job, sig)
    except Forbidden as exc:
        log.warning("hook refused: a bad signature for job %r", (job or "")[:64])
        return problem_response(403, str(exc))
    except Malformed as exc:
        return problem_response(exc.status, str(exc))
    except (redis.RedisError, kombu.exceptions.OperationalError, ConnectionError) as exc:
        log.warning("hook could not be handled: %s", exc)
        status, answer = 503, {"error": "songqueue is unavailable; try again"}
    return JSONResponse(answer, status_code=status)


async def _run(hooks: Hooks, provider: str, body: bytes, job: str | None,
               sig: str | None) -> tuple[int, dict[str, Any]]:
    # Redis and the broker are blocking clients: off the event loop.
    return await run_in_threadpool(hooks.handle, provider, body, job, sig)
