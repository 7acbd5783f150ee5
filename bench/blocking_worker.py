"""Baseline for the worker-slot benchmark: the naive worker that waits inside its slot.

One task per job (`bench.blocking_job`, queue `blocking`) submits to the upstream, then
sleeps between polls *inside the task* on the same schedule songqueue uses
(`poll_initial_delay`, then `next_poll_delay`), then stores every asset one after another
(`workers.artifacts.assets.store_asset`: download, verify, tag, store) and writes the manifest. It
reuses songqueue's provider, asset step, storage and job store, so the only difference
measured is where the waiting happens: here it holds a worker slot; in songqueue it is a
countdown retry that frees the slot.

Run by a real worker: `celery -A bench.blocking_worker worker -Q blocking -c 2`.
"""

from __future__ import annotations

import time

from celery import Celery

from producer.core.broker import celery_config
from producer.core.models.job_record import WAITING_STATES, JobError, JobRecord, JobState, SongRecord
from producer.core.settings import get_settings
from workers import runtime
from workers.artifacts.assets import store_asset
from workers.artifacts.manifest import write_manifest
from workers.providers.base import Outcome, UpstreamStatus
from workers.retry_policy import next_poll_delay

BLOCKING_JOB = "bench.blocking_job"
QUEUE = "blocking"

app = Celery("songqueue-bench-blocking")
app.conf.update(celery_config(get_settings()))
app.conf.task_routes = {BLOCKING_JOB: {"queue": QUEUE}}


@app.task(name=BLOCKING_JOB)
def blocking_job(job_id: str) -> None:
    store = runtime.store()
    try:
        _run(job_id)
    except Exception as exc:  # noqa: BLE001 - a baseline: any fault ends the job, visibly
        def note(r: JobRecord, exc: Exception = exc) -> None:
            r.error = JobError(code="bench_blocking_error", message=f"{type(exc).__name__}: {exc}")

        store.apply(job_id, set(JobState) - {JobState.SUCCEEDED}, mutate=note, to=JobState.FAILED)
        raise


def _run(job_id: str) -> None:
    store = runtime.store()
    settings = runtime.settings()
    record = store.apply(job_id, {JobState.QUEUED}, to=JobState.SUBMITTING)
    if record is None:
        return
    provider = runtime.provider(record.provider)
    task_id = provider.submit(record.request)
    submitted = time.time()

    def note_task(r: JobRecord) -> None:
        r.upstream_task_id, r.submitted_at = task_id, submitted

    store.apply(job_id, {JobState.SUBMITTING}, mutate=note_task, to=JobState.SUBMITTED)
    time.sleep(settings.poll_initial_delay)
    while True:
        status = provider.fetch(task_id)
        if status.outcome is not Outcome.RUNNING:
            break
        store.apply(job_id, WAITING_STATES, mutate=lambda r, status=status: setattr(r, "progress", status.progress),
                    to=JobState.GENERATING)
        time.sleep(next_poll_delay(time.time() - submitted, status.progress,
                                   settings.poll_min_interval, settings.poll_max_interval))
    if status.outcome is Outcome.FAILED:
        raise RuntimeError(f"upstream FAILURE: {status.fail_reason}")
    record = store.apply(job_id, WAITING_STATES, mutate=lambda r: _songs(r, status), to=JobState.DOWNLOADING)
    assert record is not None
    storage = runtime.storage()
    stored = [tuple(store_asset(storage, settings, record, index, asset) for asset in ("audio", "cover"))
              for index in range(len(record.songs))]

    def attach(r: JobRecord) -> None:
        for song, (audio, cover) in zip(r.songs, stored, strict=True):
            song.audio, song.cover = audio, cover

    record = store.apply(job_id, {JobState.DOWNLOADING}, mutate=attach)
    assert record is not None
    manifest = write_manifest(storage, record)
    store.apply(job_id, {JobState.DOWNLOADING}, mutate=lambda r: setattr(r, "manifest", manifest),
                to=JobState.SUCCEEDED)


def _songs(record: JobRecord, status: UpstreamStatus) -> None:
    record.progress = 100
    record.songs = [
        SongRecord(upstream_id=s.id, title=s.title, duration=s.duration, lyrics=s.lyrics, tags=s.tags,
                   song_path=s.song_path, image_path=s.image_path, finished=True, dispatched=True)
        for s in status.songs
    ]
