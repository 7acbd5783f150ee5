"""Scheduled playlists on the worker side: start a run, wait for its jobs, write the playlist.

- `songqueue.playlist_run(name, slot)`: sent by the beat (workers/playlists/beat.py) once
  per due slot; reads the definition from SONGQUEUE_PLAYLISTS_DIR and starts the run
  (producer/core/playlists/start.py), which claims the slot, so a second message for the same
  slot (two beats, a beat restarted mid-schedule, a redelivery) starts nothing new.
- `songqueue.playlist_check(run_id, token)`: a countdown chain, one link per
  SONGQUEUE_PLAYLIST_CHECK_INTERVAL, holding no worker slot between links. Once every job
  is terminal (or the run's timeout passed: the rest are cancelled) it stores the
  playlist files and ends the run. Failed jobs never block it: they are listed with their
  reasons, and fewer successes than `min_success` make the run FAILED. A storage fault
  while writing the files is retried by the retry policy; every attempt is counted on the
  run first, so after SONGQUEUE_MAX_DELIVERIES + SONGQUEUE_MAX_TRANSIENT_ERRORS of them
  (retries and the sweep's takeovers together) the run ends FAILED with the reason.
- `songqueue.playlist_sweep()`: the watchdog of runs, ticked by every worker's watchdog timer. A run whose check
  chain is overdue (its worker died holding the countdown) gets a new chain under a new
  token; a run left CREATING by a creator that died gets its jobs made.
No Celery chord: the run record in Redis is the batch (docs/architecture.md).
"""

from __future__ import annotations

import time
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import redis
from celery import Task

from producer.core import task_names
from producer.core.enqueue import Enqueuer
from producer.core.models.job_record import CANCELLABLE_STATES, JobError, JobRecord, JobState, StoredObject
from producer.core.models.playlist_run import PlaylistRun, RunFailure, RunSong, RunState
from producer.core.objects.archive import send_archive
from producer.core.playlists.definition import DefinitionError, load_folder
from producer.core.playlists.start import create_jobs, playlist_store, send_check, start_run
from producer.core.store.playlist_store import PlaylistStore
from workers import fault_points, runtime
from workers.celery_app import app
from workers.playlists.output import collect, outcome, write_outputs
from workers.retry_policy import look_again, retry_or_give_up
from workers.steps.common import log
from workers.upstream.errors import PermanentError, TransientError


@lru_cache(maxsize=1)
def _queue() -> Enqueuer:
    """The producer API, for making a run's jobs exactly as `songqueue submit` does."""
    return Enqueuer(runtime.settings())


def _store() -> PlaylistStore:
    return playlist_store(_queue())


@app.task(name=task_names.PLAYLIST_RUN, bind=True, max_retries=None)
def playlist_run(self: Task, name: str, slot: str, faults: int = 0) -> str | None:
    """Start the run of playlist `name` for `slot` (ISO 8601); returns the run id.

    `faults`: transient faults in a row so far, counted by workers.retry_policy."""
    settings = runtime.settings()
    definitions, errors = load_folder(Path(settings.playlists_dir))
    definition = definitions.get(name)
    if definition is None:
        reasons = "; ".join(str(e) for e in errors) or "no such playlist"
        log.error("playlist %s: slot %s not run: no valid definition in %s (%s)", name, slot,
                  settings.playlists_dir, reasons)
        return None
    try:
        run, created = start_run(_queue(), definition, datetime.fromisoformat(slot))
    except DefinitionError as exc:
        log.error("playlist %s: slot %s not run: %s", name, slot, exc)
        return None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning("playlist %s: slot %s: Redis unreachable (%s)", name, slot, exc)
        retry_or_give_up(self, settings, "playlist", f"Redis unreachable: {exc}",
                         give_up=lambda message: log.error("playlist %s: slot %s: %s", name, slot, message))
        raise  # the bound is spent: the fault is the task's result
    if created:
        log.info("playlist %s: slot %s: run %s started, %d jobs", name, slot, run.id, len(run.job_ids))
    else:
        log.info("playlist %s: slot %s already claimed by run %s (%s)", name, slot, run.id, run.state.value)
    return run.id


@app.task(name=task_names.PLAYLIST_CHECK, bind=True, max_retries=None)
def playlist_check(self: Task, run_id: str, token: int = 0, faults: int = 0) -> None:
    """`faults`: transient faults in a row so far, counted by workers.retry_policy."""
    settings = runtime.settings()
    store = _store()
    run = store.get(run_id)
    if run is None or run.state != RunState.RUNNING or run.check_token != token:
        return  # ended, or the sweep handed the check to a newer chain
    jobs = [runtime.store().get(job_id) for job_id in run.job_ids]
    still_open = [job.id for job in jobs if job is not None and not job.state.terminal]
    if still_open:
        if time.time() < (run.started_at or run.created_at) + run.timeout:
            store.check_in(run_id, settings.playlist_check_interval + settings.watchdog_grace)
            raise look_again(self, settings.playlist_check_interval)
        _cancel_late_jobs(run, still_open)
        jobs = [runtime.store().get(job_id) for job_id in run.job_ids]
    state, succeeded = outcome(run, jobs)
    songs, failed = collect(run, jobs)
    counted = store.apply(run_id, {RunState.RUNNING}, mutate=_count_output_attempt, token=token)
    if counted is None:
        return
    most = settings.max_deliveries + settings.max_transient_errors
    if counted.output_attempts > most:
        _finish(store, run, token, RunState.FAILED, succeeded, songs, failed, error=JobError(
            code="playlist_output_exhausted",
            message=f"playlist files: {counted.output_attempts - 1} attempts did not store them "
                    f"(SONGQUEUE_MAX_DELIVERIES + SONGQUEUE_MAX_TRANSIENT_ERRORS = {most})"))
        return
    try:
        fault_points.hit("playlist.before_put")
        m3u8, document = write_outputs(runtime.storage(), run, songs, failed, state, succeeded)
    except TransientError as exc:
        store.check_in(run_id, settings.retry_max_delay + settings.watchdog_grace)
        code = exc.code

        def give_up(message: str) -> None:
            _finish(store, run, token, RunState.FAILED, succeeded, songs, failed,
                    error=JobError(code=code, message=f"playlist files: {message}"))

        retry_or_give_up(self, settings, "playlist", str(exc), retry_after=exc.retry_after, give_up=give_up)
        return
    except PermanentError as exc:
        _finish(store, run, token, RunState.FAILED, succeeded, songs, failed,
                error=JobError(code=exc.code, message=f"playlist files: {exc}"))
        return
    error = None if state == RunState.SUCCEEDED else JobError(
        code="too_few_songs",
        message=f"{succeeded} of {len(run.job_ids)} requests succeeded; min_success is {run.min_success}")
    _finish(store, run, token, state, succeeded, songs, failed, error=error, m3u8=m3u8, document=document)


def _count_output_attempt(run: PlaylistRun) -> None:
    run.output_attempts += 1


def _cancel_late_jobs(run: PlaylistRun, job_ids: list[str]) -> None:
    def note(record: JobRecord) -> None:
        record.error = JobError(code="playlist_timeout",
                                message=f"playlist run {run.id} ended after its timeout of {run.timeout:.0f}s")

    for job_id in job_ids:
        cancelled = runtime.store().apply(job_id, CANCELLABLE_STATES, mutate=note, to=JobState.CANCELLED)
        if cancelled is not None:
            send_archive(app, cancelled)
    log.warning("playlist run %s: timeout; cancelled %d jobs still open", run.id, len(job_ids))


def _finish(store: PlaylistStore, run: PlaylistRun, token: int, state: RunState, succeeded: int,
            songs: list[RunSong], failed: list[RunFailure], *, error: JobError | None,
            m3u8: StoredObject | None = None, document: StoredObject | None = None) -> None:
    def record(r: PlaylistRun) -> None:
        r.songs, r.failures, r.succeeded_requests = songs, failed, succeeded
        r.m3u8, r.document, r.error = m3u8, document, error
        r.finished_at = time.time()

    done = store.apply(run.id, {RunState.RUNNING}, mutate=record, to=state, token=token)
    if done is not None:
        log.info("playlist run %s (%s): %s, %d of %d requests succeeded, %d songs%s", run.id, run.playlist,
                 state.value, succeeded, len(run.job_ids), len(songs),
                 f", playlist at {m3u8.uri}" if m3u8 is not None else "")


@app.task(name=task_names.PLAYLIST_SWEEP)
def playlist_sweep() -> int:
    """One round; returns how many runs it took over."""
    settings = runtime.settings()
    store = _store()
    if not store.try_sweep_round(settings.watchdog_interval * 0.9):
        return 0
    taken = 0
    for run_id in store.overdue(time.time()):
        run = store.get(run_id)
        if run is None:
            continue
        if run.state == RunState.CREATING:
            log.warning("playlist run %s: still CREATING past the grace; making its jobs", run_id)
            try:
                create_jobs(_queue(), store, run)
            except Exception:  # noqa: BLE001 - the next round tries again; one run must not stop the rest
                log.exception("playlist run %s: could not make its jobs", run_id)
                continue
            taken += 1
        elif run.state == RunState.RUNNING:
            def bump(r: PlaylistRun) -> None:
                r.check_token += 1

            fresh = store.apply(run_id, {RunState.RUNNING}, mutate=bump,
                                check_in=settings.playlist_check_interval + settings.watchdog_grace)
            if fresh is not None:
                log.warning("playlist run %s: check overdue; checking again", run_id)
                send_check(_queue(), fresh, countdown=0)
                taken += 1
    return taken
