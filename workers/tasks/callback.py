"""Deliver a job's callback: its status, signed, POSTed to its callback_url.

Sent by producer.core.callbacks.announce when a job ends (and on progress, if asked). A failed
delivery is tried again on SONGQUEUE_CALLBACK_SCHEDULE (the Standard Webhooks schedule by
default: over 27 hours), never by sleeping in the slot: a wait up to RETRY_MAX_DELAY is a
broker countdown, a longer one is parked in Redis and sent by a watchdog round when due
(a countdown of hours would outlive the Redis broker's visibility timeout). It stops when
delivered, refused for good (a 4xx, a redirect, a URL no longer allowed), or when the
schedule is spent. A 410 Gone also disables the receiver's origin, and so does failing
every delivery for SONGQUEUE_CALLBACK_DISABLE_AFTER (producer/core/store/endpoints.py):
deliveries to a disabled origin are skipped, recorded as such. Every attempt is recorded on
the job (`callbacks`); nothing here changes the job's state, so a receiver that is down
costs the job nothing.

A replay (`replay=True`, POST /v1/jobs/{id}/callbacks/{delivery}/replay) is one more attempt
of an event with its own webhook-id, not retried: whoever asked sees its outcome.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from producer.core import task_names
from producer.core.callbacks import (
    PROGRESS,
    CallbackUrlError,
    check_callback_url,
    origin,
    receiver_secret,
    signing_generations,
)
from producer.core.models.job_record import CallbackAttempt, JobRecord, JobState
from producer.core.objects.links import ObjectLinks
from producer.core.settings import Settings, signing_seed
from producer.core.store import endpoints
from producer.core.url_guard import callback_policy
from workers import fault_points, metrics, runtime
from workers.callback_delivery import GONE, Delivery, post
from workers.callback_schedule import keep, next_delay
from workers.celery_app import app
from workers.retry_policy import retry_in
from workers.steps.common import log
from workers.steps.step import Run, step


@lru_cache(maxsize=1)
def _links() -> ObjectLinks:
    return ObjectLinks(runtime.settings())


def _not_delivered(job: Run, code: str, message: str, permanent: bool) -> None:
    """A fault of the step itself (not the receiver's answer): logged; the job is never moved."""
    log.warning("job %s: callback not delivered: %s", job.job_id, message)


@app.task(name=task_names.CALLBACK, bind=True, max_retries=None)
@step("callback", expect=frozenset(JobState), end=_not_delivered)
def callback(job: Run, event: str, delivery: str, sent_at: float, faults: int = 0, replay: bool = False) -> None:
    """`faults`: failed deliveries of this event so far (its place in the schedule). Any
    state: a delivery never moves the job, and its faults are the receiver's."""
    settings = runtime.settings()
    store = runtime.store()
    record, job_id = job.record, job.job_id
    if not record.callback_url:
        return
    if event == PROGRESS and record.state.terminal and not replay:
        return  # superseded: the job's end has an event of its own
    attempt = faults + 1
    if replay:
        attempt = 1 + sum(1 for a in record.callbacks if a.delivery == delivery)
    endpoint = origin(record.callback_url)
    health = endpoints.get(store.redis, store.prefix, endpoint)
    if health.disabled:
        outcome = Delivery(None, f"skipped: the endpoint {endpoint} is disabled ({health.reason}); "
                                 "`songqueue callbacks endpoints --enable` sends again", retryable=False)
    else:
        fault_points.hit("callback.before_post")
        outcome = _deliver(record, event, delivery, settings, health)
        fault_points.hit("callback.after_post")
        _note_health(outcome, endpoint, settings)
    note = CallbackAttempt(at=time.time(), event=event, delivery=delivery, attempt=attempt,
                           status_code=outcome.status_code, error=outcome.error, replay=replay)
    delays = settings.callback_delays
    # Any state: recording an attempt never moves the job.
    store.apply(job_id, set(JobState), mutate=lambda r: setattr(r, "callbacks", keep(r.callbacks, note, delays)))
    ending = event != PROGRESS and not replay
    if outcome.delivered:
        log.info("job %s: %s callback delivered (attempt %d, HTTP %s)", job_id, event, attempt, outcome.status_code)
        metrics.callback(event, "delivered")
        if ending:
            store.callback_settled(job_id)
        return
    delay = None if replay or not outcome.retryable else next_delay(delays, attempt, outcome.retry_after)
    if delay is None:
        metrics.callback(event, "skipped" if health.disabled else "failed")
        log.warning("job %s: %s callback not delivered, giving up after attempt %d: %s",
                    job_id, event, attempt, outcome.error)
        if ending:
            store.callback_settled(job_id)
        return
    log.info("job %s: %s callback attempt %d failed (%s); next in %gs", job_id, event, attempt, outcome.error, delay)
    if ending:
        # Still owed, but on the schedule: the outbox looks again only after the next attempt is due.
        store.owe_callback(job_id, delay + settings.retry_max_delay + settings.watchdog_grace)
    if delay <= settings.retry_max_delay:
        raise retry_in(job.task, attempt, delay)
    store.park_callback({"job_id": job_id, "event": event, "delivery": delivery, "sent_at": sent_at,
                         "faults": attempt}, time.time() + delay)


def _note_health(outcome: Delivery, endpoint: str, settings: Settings) -> None:
    store = runtime.store()
    now = time.time()
    if outcome.delivered:
        endpoints.succeeded(store.redis, store.prefix, endpoint, now)
    elif outcome.status_code == GONE:
        endpoints.disable(store.redis, store.prefix, endpoint, "answered 410 Gone")
        log.warning("callbacks: %s answered 410 Gone: disabled", endpoint)
    # Only a receiver that is down or erring counts against it: a 4xx is its verdict on one event.
    elif outcome.retryable and endpoints.failed(store.redis, store.prefix, endpoint, now,
                                                settings.callback_disable_after).disabled:
        log.warning("callbacks: %s has failed for %gs: disabled", endpoint, settings.callback_disable_after)


def _deliver(record: JobRecord, event: str, delivery: str, settings: Settings,
             endpoint: endpoints.Endpoint) -> Delivery:
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
    generations = signing_generations(endpoint.generation, endpoint.rotated_at, settings.callback_rotation_overlap,
                                      time.time())
    key = settings.callback_signing_key.get_secret_value()
    return post(checked, body, secrets=[receiver_secret(secret.encode(), checked.url, g) for g in generations],
                seed=signing_seed(key) if key else None, event=event, delivery=delivery,
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

