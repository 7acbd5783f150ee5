"""Put a job into the system: validate its request, record it QUEUED, send its submit; cancel
one that has not ended.

The one way a job is created, shared by the Python API (`producer.client.songqueue.SongQueue`
extends this), the HTTP API and the workers' scheduled playlists: tasks go out by name, so
nothing here needs worker code.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any, TypedDict

from producer.core import deadlines, task_names
from producer.core.broker import celery_config
from producer.core.callbacks import TERMINAL_EVENTS, announce, check_callback_url, check_events
from producer.core.models.job_record import CANCELLABLE_STATES, DEFAULT_TENANT, JobError, JobRecord, JobState
from producer.core.models.providers import DEFAULT_PROVIDER, PROVIDERS, REQUEST_MODELS, RequestModel
from producer.core.models.text_rules import check_label
from producer.core.objects.archive import send_archive
from producer.core.quorum_queues import SongqueueCelery
from producer.core.request_fingerprint import fingerprint
from producer.core.settings import Settings, get_settings
from producer.core.store import parking
from producer.core.store.job_store import JobStore
from producer.core.url_guard import callback_policy

# Bounds of the caller's strings stored on a job record.
MAX_KEY_CHARS = 200
MAX_ALBUM_CHARS = 200


class JobOptions(TypedDict, total=False):
    """The options of `Enqueuer.create` (and `SongQueue.submit`), each as `create` documents it."""

    provider: str
    idempotency_key: str | None
    callback_url: str | None
    callback_progress: bool
    callback_events: list[str] | None
    album: str | None
    batch_id: str | None
    tenant: str
    api_key: str | None
    deadline: str | float | datetime | None


class Enqueuer:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = JobStore.from_url(self.settings.job_store_url, self.settings.key_prefix,
                                       self.settings.job_retention, self.settings.sentinel_master)
        self.celery = SongqueueCelery("songqueue-producer")
        self.celery.conf.update(celery_config(self.settings))
        self.store.waker = parking.waker(self.celery)  # a cancel frees a place: wake a parked job

    def create(
        self,
        request: RequestModel | dict[str, Any],
        *,
        provider: str = DEFAULT_PROVIDER,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
        callback_progress: bool = False,
        callback_events: list[str] | None = None,
        album: str | None = None,
        batch_id: str | None = None,
        tenant: str = DEFAULT_TENANT,
        api_key: str | None = None,
        deadline: str | float | datetime | None = None,
    ) -> tuple[JobRecord, bool]:
        """Validate, record the job QUEUED, and send it to the submit queue; returns the
        record and whether this call created it (False: its idempotency key had a job, for
        this same request; another request under a used key raises IdempotencyConflict).

        A dict is validated here with the provider's model (pydantic.ValidationError names
        the field and the rule); nothing is written or sent for bad input.
        `callback_url`: where to POST the job's signed status when it ends (and on every
        progress change with `callback_progress`); a URL that breaks a rule raises
        producer.core.callbacks.CallbackUrlError (a ValueError naming callback_url).
        `callback_events`: only these events (producer.core.callbacks.EVENTS, e.g.
        ["job.succeeded", "job.progress"]); an unknown name raises a ValueError naming the field.
        `album`: the ID3 album of its songs; `batch_id`: the playlist run it belongs to;
        `tenant`: who owns it, and `api_key`: the id of the key that submitted it (the HTTP
        API passes both; the workers hold the job to that key's limits).
        `deadline`: when the caller stops wanting the songs, as seconds from now, a duration
        ("10m") or a time with a zone (producer/core/deadlines.py); not part of the request's
        fingerprint, so a repeat under the same idempotency key may name another.
        """
        check_label("idempotency_key", idempotency_key, MAX_KEY_CHARS)
        check_label("album", album, MAX_ALBUM_CHARS)
        check_label("batch_id", batch_id, MAX_KEY_CHARS)
        try:
            cancel_after = deadlines.cancel_after(deadline, time.time())
        except ValueError as exc:
            raise ValueError(f"deadline: {exc}") from None
        spec = PROVIDERS.get(provider)
        if spec is None:
            raise ValueError(f"provider: must be one of {', '.join(sorted(PROVIDERS))}, got {provider!r}")
        if callback_url is not None:
            callback_url = check_callback_url(callback_url, callback_policy(self.settings)).url
        elif callback_progress:
            raise ValueError("callback_progress: needs a callback_url")
        elif callback_events is not None:
            raise ValueError("callback_events: needs a callback_url")
        callback_events = check_events(callback_events)
        if not isinstance(request, spec.request_model):
            if isinstance(request, REQUEST_MODELS):
                raise ValueError(f"provider: a {type(request).__name__} cannot go to provider {provider!r}")
            request = spec.request_model.model_validate(request)
        gen_params = request.to_gen_params()
        record = JobRecord(
            id=uuid.uuid4().hex,
            provider=provider,
            model=request.model_name,
            request=gen_params,
            request_fingerprint=fingerprint(provider, request.model_name, gen_params, callback_url=callback_url,
                                            callback_progress=callback_progress, album=album, batch_id=batch_id,
                                            **({"callback_events": callback_events} if callback_events is not None
                                               else {})),
            idempotency_key=idempotency_key,
            callback_url=callback_url,
            callback_progress=callback_progress,
            callback_events=callback_events,
            album=album,
            batch_id=batch_id,
            tenant=tenant,
            api_key=api_key,
            cancel_after=cancel_after,
        )
        # If the submit message is lost, the watchdog sends it again after the grace period.
        record, created = self.store.create(record, check_in=self.settings.watchdog_grace)
        if created:
            self.send(task_names.SUBMIT, record)
        return record, created

    def send(self, name: str, record: JobRecord) -> None:
        try:
            self.celery.send_task(
                name,
                # A replayed job's submit carries its new fencing token.
                args=[record.id, record.token] if record.token else [record.id],
                argsrepr=task_names.argsrepr(record.id, provider=record.provider, request=record.request),
            )
        except Exception as exc:  # noqa: BLE001 - re-raised below
            # The record exists; say so rather than leave a QUEUED job nobody will run.
            error = JobError(code="enqueue_failed", message=str(exc))

            def note(r: JobRecord) -> None:
                r.error = error

            self.store.apply(record.id, {JobState.QUEUED}, mutate=note, to=JobState.FAILED)
            raise

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a job that has not ended (its pending tasks find it CANCELLED and stop);
        None when there is no live job of that id."""
        def note(r: JobRecord) -> None:
            r.error = JobError(code="cancelled", message="cancelled by request")
            r.waiting_for = None
            r.parked = None

        record = self.store.apply(job_id, CANCELLABLE_STATES, mutate=note, to=JobState.CANCELLED)
        if record is None:
            return None
        announce(self.celery, record, TERMINAL_EVENTS[JobState.CANCELLED])
        send_archive(self.celery, record)
        return record
