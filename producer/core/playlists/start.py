"""Start a playlist run: claim its slot, create its jobs, hand it to the check task.

Shared by `songqueue playlist run` (a run now, in the producer) and the worker's
`songqueue.playlist_run` task (a scheduled slot). Every step can be repeated safely:

1. The run record (CREATING, with the expanded requests) is stored and, for a scheduled
   run, claims its (playlist, slot): a second attempt at the slot gets the first run.
2. Each request becomes a job under the idempotency key `playlist-run:{run}:{i}`, so a
   repeat (a redelivered task, the sweep finishing a run whose creator died) finds the
   jobs already made instead of making and paying for new ones.
3. CREATING -> RUNNING (compare-and-set: only one creator gets it) and that one sends the
   first `songqueue.playlist_check`, a countdown task; no worker slot waits on the batch.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from producer.core import deadlines, task_names
from producer.core.callbacks import CallbackUrlError, check_callback_url
from producer.core.enqueue import Enqueuer
from producer.core.models.playlist_run import PlaylistRun, RunState
from producer.core.playlists.definition import DefinitionError, PlaylistDefinition
from producer.core.store.playlist_store import PlaylistStore
from producer.core.url_guard import callback_policy


def playlist_store(queue: Enqueuer) -> PlaylistStore:
    return PlaylistStore(queue.store.redis, queue.settings.key_prefix, queue.settings.playlist_run_retention)


def start_run(queue: Enqueuer, definition: PlaylistDefinition, slot: datetime | None = None) -> tuple[PlaylistRun, bool]:
    """Start the run of `definition` for `slot` (None: a manual run, now).

    Returns (run, created); `created` is False when the slot was already claimed, and the
    run is then the one that claimed it. Raises DefinitionError when a request of this run
    breaks a rule of its provider (a template may expand differently on another date).
    """
    at = slot or datetime.now(UTC)
    try:
        requests = definition.expand(at)
    except ValueError as exc:
        key, _, rule = str(exc).partition(": ")
        raise DefinitionError(definition.source or definition.name, [(key, rule)]) from None
    run = PlaylistRun(
        id=f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        playlist=definition.name,
        album=definition.album_name,
        provider=definition.provider,
        storage_prefix=definition.prefix,
        trigger="manual" if slot is None else "schedule",
        slot=None if slot is None else slot.timestamp(),
        source=definition.source,
        requests=requests,
        min_success=definition.min_success_requests,
        timeout=definition.timeout_seconds,
        job_cancel_after=deadlines.cancel_after(definition.deadline, at.timestamp()),
        callback_url=_callback_url(queue, definition),
        callback_events=definition.callback_events,
    )
    store = playlist_store(queue)
    # Should the creator die before RUNNING, the sweep finishes the run after the grace.
    run, created = store.create(run, check_in=queue.settings.watchdog_grace)
    if run.state == RunState.CREATING:
        run = create_jobs(queue, store, run) or store.get(run.id) or run
    return run, created


def _callback_url(queue: Enqueuer, definition: PlaylistDefinition) -> str | None:
    """The definition's callback_url as the outbound guard admits it, checked before the run is stored."""
    if definition.callback_url is None:
        return None
    try:
        return check_callback_url(definition.callback_url, callback_policy(queue.settings)).url
    except CallbackUrlError as exc:
        raise DefinitionError(definition.source or definition.name, [("callback_url", exc.rule)]) from None


def create_jobs(queue: Enqueuer, store: PlaylistStore, run: PlaylistRun) -> PlaylistRun | None:
    """Make the run's jobs (idempotently) and move it to RUNNING; returns the run if this
    call moved it, None if another creator had."""
    job_ids = [
        queue.create(request, provider=run.provider, idempotency_key=run.job_key(i), album=run.album,
                     batch_id=run.id, deadline=None if run.job_cancel_after is None
                     else datetime.fromtimestamp(run.job_cancel_after, UTC),
                     callback_url=run.callback_url, callback_events=run.callback_events)[0].id
        for i, request in enumerate(run.requests, 1)
    ]

    def started(r: PlaylistRun) -> None:
        r.job_ids = job_ids
        r.started_at = time.time()

    interval = queue.settings.playlist_check_interval
    running = store.apply(run.id, {RunState.CREATING}, mutate=started, to=RunState.RUNNING,
                          check_in=interval + queue.settings.watchdog_grace)
    if running is not None:
        send_check(queue, running, countdown=interval)
    return running


def send_check(queue: Enqueuer, run: PlaylistRun, countdown: float) -> None:
    queue.celery.send_task(task_names.PLAYLIST_CHECK, args=[run.id, run.check_token], countdown=countdown,
                           argsrepr=f"run={run.id} playlist={run.playlist} token={run.check_token}")
