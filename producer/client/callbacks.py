"""Outbound callbacks, the parts both sides share: the URL rule, the signature, the events.

A job may carry a `callback_url`. When it ends (and, if asked, when its progress moves)
a `songqueue.callback` task POSTs its status there (workers/tasks/callback.py), signed:

    X-Songqueue-Timestamp: <unix seconds>
    X-Songqueue-Signature: sha256=<hex HMAC-SHA256 of f"{timestamp}.{body}" with SONGQUEUE_CALLBACK_SECRET>
    X-Songqueue-Event:     job.succeeded | job.failed | job.timed_out | job.cancelled | job.progress
    X-Songqueue-Delivery:  an id shared by every attempt of one event (receivers dedupe on it)

The producer sends the task by name (on cancel); the workers send it on every other end.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Collection
from urllib.parse import urlsplit

from celery import Celery

from producer import task_names
from producer.models.job_record import JobRecord, JobState

log = logging.getLogger("songqueue.callbacks")

TIMESTAMP_HEADER = "X-Songqueue-Timestamp"
SIGNATURE_HEADER = "X-Songqueue-Signature"
EVENT_HEADER = "X-Songqueue-Event"
DELIVERY_HEADER = "X-Songqueue-Delivery"

PROGRESS = "job.progress"
TERMINAL_EVENTS = {
    JobState.SUCCEEDED: "job.succeeded",
    JobState.FAILED: "job.failed",
    JobState.TIMED_OUT: "job.timed_out",
    JobState.CANCELLED: "job.cancelled",
}
MAX_URL_LENGTH = 2048


class CallbackUrlError(ValueError):
    """A callback_url that breaks a rule; `rule` says which, without the field name."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"callback_url: {rule}")
        self.rule = rule


def check_callback_url(url: str, allowed_hosts: Collection[str] = ()) -> str:
    """The URL, stripped, if songqueue may POST to it; else CallbackUrlError.

    http/https only, with a host, no credentials (the signature authenticates songqueue;
    a password in the URL would sit in the job record), and with an allow-list only those
    hosts and their subdomains.
    """
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlError(f"at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise CallbackUrlError(f"must be an http:// or https:// URL, got {parts.scheme or 'no'} scheme")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise CallbackUrlError("has an invalid port") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise CallbackUrlError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlError("must not carry credentials (user:password@); the signature authenticates songqueue")
    if allowed_hosts and not any(host == h or host.endswith("." + h) for h in allowed_hosts):
        raise CallbackUrlError(f"host {host} is not in SONGQUEUE_CALLBACK_ALLOWED_HOSTS")
    return url


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Songqueue-Signature value: sha256=<hex HMAC-SHA256 of b"{timestamp}.{body}">."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def wants(record: JobRecord, event: str, progress_for_all: bool) -> bool:
    """Whether `record` asked to be told about `event`."""
    if not record.callback_url:
        return False
    return event != PROGRESS or record.callback_progress or progress_for_all


def terminal_delivery(record: JobRecord) -> str:
    """The delivery id of a job's end: the same for every send of it (a resend by the
    watchdog included), so a receiver that got it once can drop the repeats."""
    ended_at = record.transitions[-1].at if record.transitions else record.updated_at
    return uuid.uuid5(uuid.NAMESPACE_URL, f"songqueue:{record.id}:{record.state.value}:{ended_at}").hex


def announce(celery: Celery, record: JobRecord, event: str) -> None:
    """Send the delivery task of `event` for a job with a callback_url.

    Never raises: the job's own step has already happened, and a broker hiccup here must
    not make it look failed (the workers' callback outbox sends a lost end again). The
    message carries ids only; the URL is read from the record.
    """
    if not record.callback_url:
        return
    delivery = terminal_delivery(record) if record.state.terminal and event != PROGRESS else uuid.uuid4().hex
    try:
        celery.send_task(task_names.CALLBACK, args=[record.id, event, delivery, time.time()],
                         argsrepr=f"job={record.id} event={event} delivery={delivery}")
    except Exception as exc:  # noqa: BLE001 - logged; the job itself is unaffected
        log.warning("job %s: could not send the %s callback: %s", record.id, event, exc)
