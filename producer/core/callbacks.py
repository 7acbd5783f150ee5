"""Outbound callbacks, the parts both sides share: the URL rule, the signature, the events.

A job may carry a `callback_url`. When it ends (and, if asked, when its progress moves)
a `songqueue.callback` task POSTs its status there (workers/tasks/callback.py), signed in
the Standard Webhooks format (https://www.standardwebhooks.com) with a secret of that
receiver's own:

    webhook-id:        the delivery id, shared by every attempt of one event (receivers dedupe on it)
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of f"{id}.{timestamp}.{body}" with the receiver's secret>
                       (space-separated: also v1,<...> with the previous secret during a rotation's
                       overlap, and v1a,<base64 ed25519 signature> with SONGQUEUE_CALLBACK_SIGNING_KEY)
    X-Songqueue-Event: job.succeeded | job.failed | job.timed_out | job.cancelled | job.progress

The receiver's secret is derived from SONGQUEUE_CALLBACK_SECRET and the callback URL's
origin (scheme, host, port): `receiver_secret`, printed for an operator to hand over by
`songqueue callback-secret URL`; `songqueue callback-secret rotate ORIGIN` moves an origin to
its next generation (producer/core/store/endpoints.py). So a receiver can verify what is sent to it but cannot
forge what is sent to another, nor sign a notify hook (producer/core/derived_keys.py). The
deprecated X-Songqueue-Timestamp, X-Songqueue-Delivery and X-Songqueue-Signature headers
are no longer sent: the last was keyed with SONGQUEUE_CALLBACK_SECRET itself, so a receiver
that verified it held the key to everything else.

The producer sends the task by name (on cancel); the workers send it on every other end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from celery import Celery

from producer.core import derived_keys, task_names
from producer.core.models.job_record import JobRecord, JobState
from producer.core.url_guard import CheckedUrl, UrlPolicy, UrlRefused

log = logging.getLogger("songqueue.callbacks")

EVENT_HEADER = "X-Songqueue-Event"

ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"

PROGRESS = "job.progress"
TERMINAL_EVENTS = {
    JobState.SUCCEEDED: "job.succeeded",
    JobState.FAILED: "job.failed",
    JobState.TIMED_OUT: "job.timed_out",
    JobState.CANCELLED: "job.cancelled",
}


class CallbackUrlError(ValueError):
    """A callback_url that breaks a rule; `rule` says which, without the field name."""

    def __init__(self, rule: str, code: str = "url_bad_syntax") -> None:
        super().__init__(f"callback_url: {rule}")
        self.rule = rule
        self.code = code


def check_callback_url(url: str, policy: UrlPolicy, *, resolve: bool = False) -> CheckedUrl:
    """The URL, stripped and checked by the one outbound guard (producer.core.url_guard); else CallbackUrlError.

    The producer checks without resolving (no DNS at submit); the worker checks again with
    resolution right before each delivery and connects to the address it checked.
    """
    try:
        return policy.check(url.strip(), resolve=resolve)
    except UrlRefused as exc:
        raise CallbackUrlError(exc.rule, exc.code) from None


def origin(url: str) -> str:
    """scheme://host:port of a URL, lower-cased, the port always written: what a receiver's secret is bound to."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def receiver_secret(master: bytes, url: str, generation: int = 0) -> bytes:
    """The key that signs callbacks to `url`'s origin: HMAC-SHA256(master, "songqueue-callback:" + origin),
    and from its first rotation on, + "#<generation>" (producer/core/derived_keys.py). Never stored: a
    rotation stores only the generation number. "#" is in no origin, so no generation of one origin
    spells another origin's input."""
    context = origin(url) if generation == 0 else f"{origin(url)}#{generation}"
    return derived_keys.derive(master, derived_keys.CALLBACK_RECEIVER, context)


def receiver_secret_text(master: bytes, url: str, generation: int = 0) -> str:
    """The receiver's secret as Standard Webhooks libraries take it: whsec_<base64>."""
    return SECRET_PREFIX + base64.b64encode(receiver_secret(master, url, generation)).decode("ascii")


def signing_generations(generation: int, rotated_at: float | None, overlap: float, now: float) -> list[int]:
    """The secret generations that sign a delivery now, newest first: the current one, and during the
    overlap after a rotation the one before it too (Standard Webhooks allows several signatures)."""
    if generation > 0 and rotated_at is not None and now - rotated_at < overlap:
        return [generation, generation - 1]
    return [generation]


def standard_signature(secret: bytes, delivery: str, timestamp: str, body: bytes) -> str:
    """The webhook-signature value: v1,<base64 HMAC-SHA256 of b"{id}.{timestamp}.{body}">."""
    signed = f"{delivery}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode("ascii")


def asymmetric_signature(seed: bytes, delivery: str, timestamp: str, body: bytes) -> str:
    """The `v1a,<base64 ed25519 signature of b"{id}.{timestamp}.{body}">` of SONGQUEUE_CALLBACK_SIGNING_KEY."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # only where it is set

    signed = f"{delivery}.{timestamp}.".encode() + body
    return "v1a," + base64.b64encode(Ed25519PrivateKey.from_private_bytes(seed).sign(signed)).decode("ascii")


def public_key_text(seed: bytes) -> str:
    """The `whpk_<base64>` public key receivers verify `v1a` signatures with."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def signature_header(secrets: list[bytes], seed: bytes | None, delivery: str, timestamp: str, body: bytes) -> str:
    """The webhook-signature value: a `v1` signature per secret (newest first), then `v1a` when a key is set."""
    signatures = [standard_signature(secret, delivery, timestamp, body) for secret in secrets]
    if seed is not None:
        signatures.append(asymmetric_signature(seed, delivery, timestamp, body))
    return " ".join(signatures)


# Every event a job's callback_events may name, with when it fires (docs/callbacks-and-hooks.md).
EVENTS = (*TERMINAL_EVENTS.values(), PROGRESS)


def check_events(names: list[str] | None) -> list[str] | None:
    """A job's callback_events, deduplicated in order; a name not in EVENTS raises a ValueError naming the field."""
    if names is None:
        return None
    unknown = [n for n in names if n not in EVENTS]
    if unknown:
        raise ValueError(f"callback_events: unknown event {unknown[0]!r}, not one of {', '.join(EVENTS)}")
    return list(dict.fromkeys(names))


def wants(record: JobRecord, event: str, progress_for_all: bool = False) -> bool:
    """Whether `record` asked to be told about `event`: the names in its callback_events when it
    has them (callback_progress adds job.progress), else every end, and progress with
    callback_progress or SONGQUEUE_CALLBACK_PROGRESS (`progress_for_all`)."""
    if not record.callback_url:
        return False
    if event == PROGRESS and record.callback_progress:
        return True
    if record.callback_events is not None:
        return event in record.callback_events
    return event != PROGRESS or progress_for_all


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
    if not wants(record, event, progress_for_all=True):
        return  # not asked for (progress was checked against the fleet setting by the caller)
    delivery = terminal_delivery(record) if record.state.terminal and event != PROGRESS else uuid.uuid4().hex
    try:
        celery.send_task(task_names.CALLBACK, args=[record.id, event, delivery, time.time()],
                         argsrepr=f"job={record.id} event={event} delivery={delivery}")
    except Exception as exc:  # noqa: BLE001 - logged; the job itself is unaffected
        log.warning("job %s: could not send the %s callback: %s", record.id, event, exc)


@dataclass(frozen=True)
class Replay:
    """A replay sent: one more attempt of `event` under its own webhook-id (`delivery`)."""

    job_id: str
    delivery: str
    event: str
    attempt: int


class UnknownDelivery(LookupError):
    """The job has no attempt with that delivery id (or no callback_url)."""


def replay(celery: Celery, record: JobRecord, delivery: str) -> Replay:
    """Send `delivery` of `record` once more: the same event and the same webhook-id, so a
    receiver that has it already drops it. Raises UnknownDelivery; a broker fault propagates
    (the caller asked for this send, unlike announce's)."""
    tried = [a for a in record.callbacks if a.delivery == delivery]
    if not record.callback_url or not tried:
        raise UnknownDelivery(f"job {record.id} has no callback delivery {delivery}")
    event = tried[-1].event
    celery.send_task(task_names.CALLBACK, args=[record.id, event, delivery, time.time()], kwargs={"replay": True},
                     argsrepr=f"job={record.id} event={event} delivery={delivery} replay")
    return Replay(record.id, delivery, event, len(tried) + 1)
