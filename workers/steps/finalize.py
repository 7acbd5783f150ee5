"""Finalize a job: write its manifest.json and mark it SUCCEEDED, once every asset is stored.

Shared by the download run whose write stored the job's last object (the usual way, no
task run of its own) and the `songqueue.finalize` task (workers/tasks/finalize.py), which
covers what that cannot: the watchdog's resend when a crash lost the finalize, the retry
after a transient fault, a poll that finds every asset already stored, and messages still
queued. Fenced by the job's run like a download: a finalize of a run a replay replaced
writes nothing.
"""

from __future__ import annotations

from celery import Task

from producer.core import task_names
from producer.core.models.job_record import JobRecord, JobState
from producer.core.objects.archive import send_archive
from workers import fault_points, runtime
from workers.artifacts.manifest import write_manifest
from workers.celery_app import app
from workers.retry_policy import backoff_delay, bound, retry_or_give_up
from workers.steps import step_runs
from workers.steps.common import end_job, finish, log, send
from workers.upstream.errors import PermanentError, TransientError

RUNS = "finalize"


def ready(record: JobRecord) -> bool:
    """Whether the job waits for its finalize: DOWNLOADING with every asset stored."""
    return record.state == JobState.DOWNLOADING and record.stored_assets() == record.expected_assets()


def count_run(record: JobRecord) -> None:
    """Count a finalize run, in a write the caller makes anyway (the download's that
    stores the last object), instead of a write of its own."""
    record.attempts[RUNS] = record.attempts.get(RUNS, 0) + 1


def finalize_ready(record: JobRecord, run: int, task: Task | None, counted: bool = False) -> None:
    """Finalize `record`'s job (as just read or written) if it is ready and on run `run`.

    `task`: the finalize task running this, whose retry takes a transient fault; None when
    a download run calls it, and then the finalize task is sent to retry by countdown.
    `counted`: `record` was written with this run counted (`count_run`)."""
    store = runtime.store()
    settings = runtime.settings()
    job_id = record.id
    if not ready(record):
        return
    if record.run != run:
        log.warning("job %s: dropped a finalize of run %d: the job is on run %d", job_id, run, record.run,
                    extra={"job_id": job_id})
        return
    if not counted:
        # Counted like a download's runs: the watchdog resends finalize every round while
        # the job sits in DOWNLOADING, so only a bound makes a finalize that always fails end.
        written = step_runs.begin(job_id, RUNS, {JobState.DOWNLOADING}, check_in=settings.watchdog_grace, run=run)
        if written is None:
            return
        record = written
    spent = step_runs.spent(record, RUNS, settings, "finalize", "manifest")
    if spent is not None:
        end_job(job_id, JobState.FAILED, spent.code, spent.message, expect={JobState.DOWNLOADING}, run=run)
        return
    try:
        fault_points.hit("finalize.before_put")
        manifest = write_manifest(runtime.storage(), record, JobState.SUCCEEDED)
        fault_points.hit("finalize.after_put")
    except TransientError as exc:
        step_runs.fault(job_id, RUNS, {JobState.DOWNLOADING}, run)
        code = exc.code

        def give_up(message: str) -> None:
            end_job(job_id, JobState.FAILED, code, f"manifest: {message}", expect={JobState.DOWNLOADING}, run=run)

        if task is None:
            # In a download run: the finalize task retries from here, under the same
            # bounds (its runs and faults are counted on the record, not the message).
            limit = bound(settings, "finalize")
            send(task_names.FINALIZE, job_id, run, record=record,
                 countdown=backoff_delay(1, limit.base, limit.cap, exc.retry_after))
            return
        retry_or_give_up(task, settings, "finalize", exc.message, retry_after=exc.retry_after, give_up=give_up)
        return
    except PermanentError as exc:
        end_job(job_id, JobState.FAILED, exc.code, f"manifest: {exc.message}", expect={JobState.DOWNLOADING},
                run=run)
        return
    done = finish(lambda debt: store.apply(job_id, {JobState.DOWNLOADING},
                                           mutate=lambda r: setattr(r, "manifest", manifest), to=JobState.SUCCEEDED,
                                           run=run, debt=debt))
    if done is not None:
        log.info("job %s: SUCCEEDED, manifest at %s", job_id, manifest.uri)
        _discard_partials(job_id, manifest.key)
    else:
        # Cancelled meanwhile: the manifest just written says SUCCEEDED; have it rewritten.
        send_archive(app, record)


def _discard_partials(job_id: str, manifest_key: str) -> None:
    """Every object of the job is stored: what a killed run's put left half-written beside
    them goes (it is no object of the job's, and nothing else would ever remove it)."""
    try:
        removed = runtime.storage().discard_partials(manifest_key.rpartition("/")[0])
    except OSError as exc:  # the job has SUCCEEDED; a leftover temp file is not worth failing over
        log.warning("job %s: could not remove half-written files: %s", job_id, exc)
        return
    if removed:
        log.info("job %s: removed %d half-written file(s) left by a killed run", job_id, removed)

