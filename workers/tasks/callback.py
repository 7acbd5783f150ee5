"""Deliver a job's callback: its status, signed, POSTed to its callback_url.

Sent by producer.core.callbacks.announce when a job ends (and on progress, if asked). A failed
delivery is retried by countdown with backoff, never by sleeping in the slot, until it is
delivered, refused for good (a 4xx, a redirect, a URL no longer allowed), or past
SONGQUEUE_CALLBACK_MAX_ATTEMPTS or SONGQUEUE_CALLBACK_MAX_SECONDS from the event. Every
attempt is recorded on the job (`callbacks`); nothing here changes the job's state, so a
receiver that is down costs the job nothing.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from producer.core import task_names
from producer.core.callbacks import PROGRESS, CallbackUrlError, check_callback_url
from producer.core.models.job_record import CallbackAttempt, JobRecord, JobState
from producer.core.objects.links import ObjectLinks
from producer.core.settings import Settings
from producer.core.url_guard import callback_policy
from workers import fault_points, metrics, runtime
from workers.callback_delivery import Delivery, post
from workers.celery_app import app
from workers.retry_policy import retry_or_give_up
from workers.steps.common import log
from workers.steps.step import Run, step

# The record keeps the latest attempts only: a long-lived job with progress callbacks
# must not grow without bound.
KEPT_ATTEMPTS = 100


@lru_cache(maxsize=1)
def _links() -> ObjectLinks:
    return ObjectLinks(runtime.settings())


def _not_delivered(job: Run, code: str, message: str, permanent: bool) -> None:
    """A fault of the step itself (not the receiver's answer): logged; the job is never moved."""
    log.warning("job %s: callback not delivered: %s", job.job_id, message)


@app.task(name=task_names.CALLBACK, bind=True, max_retries=None)
@step("callback", expect=frozenset(JobState), end=_not_delivered)
def callback(job: Run, event: str, delivery: str, sent_at: float, faults: int = 0) -> None:
    """`faults`: failed deliveries so far, counted by workers.retry_policy. Any state: a
    delivery never moves the job, and its faults are the receiver's, not the upstream's."""
    settings = runtime.settings()
    store = runtime.store()
    record, job_id = job.record, job.job_id
    if not record.callback_url:
        return
    if event == PROGRESS and record.state.terminal:
        return  # superseded: the job's end has an event of its own
    attempt = faults + 1
    fault_points.hit("callback.before_post")
    outcome = _deliver(record, event, delivery, settings)
    fault_points.hit("callback.after_post")
    note = CallbackAttempt(at=time.time(), event=event, delivery=delivery, attempt=attempt,
                           status_code=outcome.status_code, error=outcome.error)
    # Any state: recording an attempt never moves the job.
    store.apply(job_id, set(JobState), mutate=lambda r: _keep(r, note))
    ending = event != PROGRESS
    if outcome.delivered:
        log.info("job %s: %s callback delivered (attempt %d, HTTP %s)", job_id, event, attempt, outcome.status_code)
        metrics.callback(event, "delivered")
        if ending:
            store.callback_settled(job_id)
        return

    def give_up(_: str) -> None:
        metrics.callback(event, "failed")
        log.warning("job %s: %s callback not delivered, giving up after attempt %d: %s",
                    job_id, event, attempt, outcome.error)
        if ending:
            store.callback_settled(job_id)

    if not outcome.retryable:
        give_up(outcome.error or "")
        return
    log.info("job %s: %s callback attempt %d failed (%s)", job_id, event, attempt, outcome.error)
    if ending:
        # Still owed, but being retried: the outbox waits past the longest backoff.
        store.owe_callback(job_id, settings.retry_max_delay + settings.watchdog_grace)
    retry_or_give_up(job.task, settings, "callback", outcome.error or "", retry_after=outcome.retry_after,
                     not_after=sent_at + settings.callback_max_seconds, give_up=give_up)


def _deliver(record: JobRecord, event: str, delivery: str, settings: Settings) -> Delivery:
    secret = settings.callback_secret.get_secret_value()
    if not secret:
        return Delivery(None, "not sent: SONGQUEUE_CALLBACK_SECRET is not set", retryable=False)
    try:
        # Checked again: the allow-list may have changed since the job was submitted.
        checked = check_callback_url(record.callback_url or "", callback_policy(settings), resolve=True)
    except CallbackUrlError as exc:
        return Delivery(None, f"not sent ({exc.code}): {exc.rule}", retryable=False)
    payload = {**_view(record), "event": event, "delivery": delivery}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return post(checked, body, secret=secret.encode(), event=event, delivery=delivery,
                timeout=settings.callback_timeout)


def _view(record: JobRecord) -> dict[str, Any]:
    """The body's job view, links only: a receiver (a tenant's service) never learns a server
    path or a bucket key. An object on S3 links by a presigned URL; one on file storage by
    its route on the HTTP API (its absolute path is the operator's)."""
    view = record.public_view(link=_links().link, locations=False)
    for n, (song, shown) in enumerate(zip(record.songs, view["songs"]), start=1):
        for asset in ("audio", "cover"):
            stored = getattr(song, asset)
            if stored is not None and urlparse(stored.uri).scheme == "file":
                shown[asset]["link"] = f"/v1/jobs/{record.id}/songs/{n}/{asset}"
    return view


def _keep(record: JobRecord, attempt: CallbackAttempt) -> None:
    record.callbacks = [*record.callbacks, attempt][-KEPT_ATTEMPTS:]
