"""GET /v1/jobs/{id}/events: Server-Sent Events of a job, every state and progress change, then the end.

The job store has no change feed, so the stream reads the record every `events_interval`
(0.25 s) and sends an event when its version moved: one Redis GET per open stream per tick.
Events: `job` (data: the JobView) for each change, then `end` (data: the final JobView)
when the job reaches a terminal state; a `: keep-alive` comment every 15 s of quiet.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from producer.api.auth import needs, visible_job
from producer.api.problems import documented
from producer.api.schemas import job_view
from producer.api.state import ApiState, api_state
from producer.store.api_keys import ApiKey

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
_KEEP_ALIVE = 15.0


def _event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream(api: ApiState, request: Request, job_id: str) -> AsyncIterator[bytes]:
    seen: tuple[int, str, int] | None = None
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        record = await asyncio.to_thread(api.queue.store.get, job_id)
        if record is None:  # removed while we watched
            return
        now = (record.version, record.state.value, record.progress)
        if now != seen:
            seen, quiet_since = now, time.monotonic()
            yield _event("job", job_view(record))
            if record.state.terminal:
                yield _event("end", job_view(record))
                return
        elif time.monotonic() - quiet_since > _KEEP_ALIVE:
            quiet_since = time.monotonic()
            yield b": keep-alive\n\n"
        await asyncio.sleep(api.events_interval)


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "the job's events"},
                       **documented(401, 403, 404, 422)})
def events(job_id: str, request: Request, key: Annotated[ApiKey, Depends(needs("read"))]) -> StreamingResponse:
    api = api_state(request)
    visible_job(api, key, job_id)
    return StreamingResponse(_stream(api, request, job_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
