"""/v1/jobs: submit, look up, list (cursor pages), cancel and retry jobs, through SongQueue; their events;
replays of their callbacks.

GET /v1/jobs/{id}/events: Server-Sent Events of a job, every state and progress change, then the end.

The job store has no change feed, so the stream reads the record every `events_interval`
(0.25 s) and sends an event when its version moved: one Redis GET per open stream per tick.
Events: `job` (data: the JobView) for each change, then `end` (data: the final JobView)
when the job reaches a terminal state; a `: keep-alive` comment every 15 s of quiet. Every
2 s the stream re-reads its key and renews its lease (producer/api/key_caps.py): a revoked
key's stream ends with `closed` (data: {"reason": "key_revoked", "detail": ...}) within
about 2 s of the revocation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from producer.api import key_budget, key_caps
from producer.api.auth import needs, visible_job, visible_job_async
from producer.api.problems import Problem, documented
from producer.api.schemas import CallbackReplay, JobBody, JobPage, JobView, SubmitJob, job_view
from producer.api.state import ApiState, api_state
from producer.client.replay import NotReplayable
from producer.core import callbacks
from producer.core.models.job_record import JobRecord, JobState
from producer.core.request_fingerprint import IdempotencyConflict
from producer.core.store import keys as store_keys
from producer.core.store.api_keys import ApiKey

log = logging.getLogger("songqueue.api")
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
_ERRORS = documented(401, 403, 404, 422)
# A page of the listing reads at most this many ids, so a tenant's filter cannot make one
# request scan the whole store; an unfilled page still carries a cursor to go on from.
_SCAN = 1000


@router.post("", status_code=201, response_model=JobView, responses={**_ERRORS, **documented(400, 429), 200: {"model": JobView}})
def submit(body: SubmitJob, request: Request, response: Response,
           key: Annotated[ApiKey, Depends(needs("submit"))],
           idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
           cancel_after: Annotated[str | None, Header(max_length=40, description=(
               "the job's deadline, as the body's `deadline` takes it (seconds, \"10m\" or a time)"))] = None,
           ) -> dict[str, Any]:
    """Enqueue a job: 201 with the new job and its `Location`; 200 with the first job for a repeated
    Idempotency-Key with the same request; 422 when the key was used for another request."""
    if cancel_after is not None:
        if body.deadline is not None:
            raise Problem(422, "the deadline is given twice", errors=[("Cancel-After", "give it or body.deadline")])
        body = body.model_copy(update={"deadline": cancel_after})
    record, created = submit_job(api_state(request), key, body, idempotency_key)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/jobs/{record.id}"  # the new job's (or the first one's) resource
    return job_view(record)


def submit_job(state: ApiState, key: ApiKey, body: JobBody, idempotency_key: str | None = None) -> tuple[JobRecord, bool]:
    """The submit of the API and the console: the key's budget, then SongQueue.submit under its tenant.

    The key's in-flight limit and its budget are held by the workers (the job waits QUEUED,
    the reason on it), so a job over the in-flight limit is accepted, not refused.
    """
    if not _is_repeat(state, key, idempotency_key):
        # A repeat of an accepted job is answered with that job, never refused for a cap or a
        # budget the first one already counted against (a client retrying a lost 201 would
        # otherwise read 429 for a job that exists). Should the key expire in between, the
        # submit below makes a new job unchecked: one job, once, past a cap.
        key_budget.check(state, key)
        key_caps.check_queued(state.keys.redis, state.settings, key)
    try:
        # create, not submit: the record it wrote (or the first job's) is the answer, not read again.
        record, created = state.queue.create(
            body.request, provider=body.provider,
            # Idempotency keys are per tenant (producer/core/store/keys.py idempotency).
            idempotency_key=idempotency_key,
            callback_url=body.callback_url, callback_progress=body.callback_progress,
            callback_events=body.callback_events, album=body.album,
            tenant=key.tenant, api_key=key.id, deadline=body.deadline,
        )
    except IdempotencyConflict as exc:
        raise Problem(422, f"Idempotency-Key {exc.key!r} was already used for another request; send that request "
                           "again with it, or use a new key", errors=[("Idempotency-Key", "used for another request")]
                      ) from None
    except ValueError as exc:  # callback_url rules; pydantic errors are handled by the app
        field, _, rule = str(exc).partition(": ")
        raise Problem(422, "the request breaks a rule", errors=[(field, rule or str(exc))]) from None
    return record, created


def _is_repeat(state: ApiState, key: ApiKey, idempotency_key: str | None) -> bool:
    """Whether `idempotency_key` already names a job of the key's tenant."""
    if idempotency_key is None:
        return False
    store = state.queue.store
    return bool(store.redis.exists(store_keys.idempotency(store.prefix, idempotency_key, key.tenant)))


@router.get("/{job_id}", response_model=JobView, responses=_ERRORS)
async def get_job(job_id: str, request: Request, key: Annotated[ApiKey, Depends(needs("read"))]) -> dict[str, Any]:
    # Async: one GET in the event loop, no hop to the thread pool (the hop cost more CPU than the read).
    return job_view(await visible_job_async(api_state(request), key, job_id))


@router.get("", response_model=JobPage, responses=_ERRORS)
def list_jobs(request: Request, key: Annotated[ApiKey, Depends(needs("read"))],
              state: JobState | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
              cursor: Annotated[str | None, Query(pattern=r"^[0-9]+(\.[0-9]+)?_[0-9a-f]+$")] = None) -> dict[str, Any]:
    """Newest first. An admin key lists every tenant; any other key, its own tenant."""
    api = api_state(request)
    store = api.queue.store
    index = (store_keys.all_jobs(store.prefix) if "admin" in key.scopes
             else store_keys.tenant_jobs(store.prefix, key.tenant))
    high = f"({cursor.split('_')[0]}" if cursor else "+inf"
    rows = store.redis.zrevrangebyscore(index, high, "-inf", start=0, num=_SCAN, withscores=True)
    page: list[dict[str, Any]] = []
    next_cursor = None
    for raw_id, score in rows:
        record = store.get(raw_id.decode())
        if record is not None and (state is None or record.state == state):
            page.append(job_view(record))
        next_cursor = f"{score!r}_{raw_id.decode()}"
        if len(page) == limit:
            break
    if len(rows) < _SCAN and len(page) < limit:
        next_cursor = None
    return {"jobs": page, "next_cursor": next_cursor}


@router.delete("/{job_id}", response_model=JobView, responses={**_ERRORS, **documented(409)})
def cancel(job_id: str, request: Request, key: Annotated[ApiKey, Depends(needs("submit"))]) -> dict[str, Any]:
    """Cancel a job that has not ended; 409 for one that has."""
    api = api_state(request)
    record = visible_job(api, key, job_id)
    if record.state.terminal:
        raise Problem(409, f"job {job_id} already ended ({record.state.value})")
    return job_view(api.queue.cancel(job_id))


@router.post("/{job_id}/retry", response_model=JobView, responses={**_ERRORS, **documented(409)})
def retry(job_id: str, request: Request, key: Annotated[ApiKey, Depends(needs("submit"))]) -> dict[str, Any]:
    """Run a FAILED or TIMED_OUT job again (a new upstream submit); 409 for any other state."""
    api = api_state(request)
    visible_job(api, key, job_id)
    try:
        return job_view(api.queue.retry(job_id))
    except NotReplayable as exc:
        raise Problem(409, str(exc)) from None


@router.post("/{job_id}/callbacks/{delivery}/replay", status_code=202, response_model=CallbackReplay,
             responses={**_ERRORS, **documented(503)})
def replay_callback(job_id: str, delivery: str, request: Request,
                    key: Annotated[ApiKey, Depends(needs("submit"))]) -> dict[str, Any]:
    """Send one callback event of the job again, with the same webhook-id (receivers dedupe on
    it): 202 with the attempt sent; 404 for a job or delivery the key cannot see. One attempt,
    not retried; a disabled receiver origin records it as skipped."""
    api = api_state(request)
    record = visible_job(api, key, job_id)
    try:
        sent = callbacks.replay(api.queue.celery, record, delivery)
    except callbacks.UnknownDelivery as exc:
        raise Problem(404, str(exc)) from None
    except Exception:  # noqa: BLE001 - the broker's own words stay in the log
        log.exception("job %s: could not send the replay of %s", job_id, delivery)
        raise Problem(503, "the broker did not take the replay; try again") from None
    return {"job_id": sent.job_id, "delivery": sent.delivery, "event": sent.event, "attempt": sent.attempt}


_KEEP_ALIVE = 15.0


def _event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream(api: ApiState, request: Request, job_id: str, key: ApiKey, lease: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in _changes(api, request, job_id, key, lease):
            yield chunk
    finally:  # however the stream ends (the client left, the job ended, the key was revoked)
        # In the loop, not a thread: a cancelled stream's task could not await one. One ZREM;
        # were it lost, the lease lapses by itself.
        key_caps.close_stream(api.keys.redis, api.settings, key, lease)


async def _changes(api: ApiState, request: Request, job_id: str, key: ApiKey, lease: str) -> AsyncIterator[bytes]:
    seen: tuple[int, str, int] | None = None
    quiet_since = checked_at = time.monotonic()
    while not await request.is_disconnected():
        if time.monotonic() - checked_at >= key_caps.KEY_CHECK_SECONDS:
            checked_at = time.monotonic()
            ended = await asyncio.to_thread(_key_ended, api, key, lease)
            if ended is not None:
                yield _event("closed", {"reason": ended[0], "detail": ended[1]})
                return
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


def _key_ended(api: ApiState, key: ApiKey, lease: str) -> tuple[str, str] | None:
    """Why the stream's key may no longer stream (reason, detail), or None; renews the lease."""
    current = api.keys.get(key.id)
    if current is None or current.revoked_at is not None:
        return "key_revoked", f"key {key.id} was revoked: the stream ends"
    if not key_caps.renew_stream(api.keys.redis, api.settings, current, lease):
        return "stream_cap", f"key {key.id}: its lease on this stream lapsed and its cap of streams is taken"
    return None


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "the job's events"},
                       **documented(401, 403, 404, 422, 429)})
def events(job_id: str, request: Request, key: Annotated[ApiKey, Depends(needs("read"))]) -> StreamingResponse:
    """429 when the key has its cap of streams open (SONGQUEUE_KEY_MAX_STREAMS, or its own)."""
    api = api_state(request)
    visible_job(api, key, job_id)
    lease = key_caps.open_stream(api.keys.redis, api.settings, key)
    return StreamingResponse(_stream(api, request, job_id, key, lease), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
