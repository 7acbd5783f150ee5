"""The Python API a backend service uses: submit, status, wait, cancel, list, link, fetch."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from producer import task_names
from producer.client import replay
from producer.client.callbacks import TERMINAL_EVENTS, announce, check_callback_url
from producer.client.celery_config import celery_config
from producer.client.minimax_upload import Purpose, upload_reference
from producer.client.quorum_queues import SongqueueCelery
from producer.client.url_guard import callback_policy
from producer.client.wait_loop import Deadline, poll_until
from producer.models.job_record import (
    CANCELLABLE_STATES,
    DEFAULT_TENANT,
    REPLAYABLE_STATES,
    JobError,
    JobRecord,
    JobState,
    StoredObject,
)
from producer.models.providers import DEFAULT_PROVIDER, PROVIDERS, REQUEST_MODELS, RequestModel
from producer.models.text_rules import check_label
from producer.objects.archive import archived_ids, manifest_object, read_manifest, record_from_manifest, send_archive
from producer.objects.fetch import fetch_job
from producer.objects.links import ObjectLinks
from producer.settings import Settings, get_settings
from producer.store.job_store import JobStore


class JobNotFound(LookupError):
    pass


class WaitTimeout(TimeoutError):
    def __init__(self, record: JobRecord) -> None:
        super().__init__(f"job {record.id} still {record.state.value} ({record.progress}%)")
        self.record = record


@dataclass(frozen=True)
class JobHandle:
    id: str
    queue: SongQueue
    created: bool = True

    def status(self) -> JobRecord:
        return self.queue.status(self.id)

    def wait(self, timeout: float | None = None) -> JobRecord:
        return self.queue.wait(self.id, timeout=timeout)

# Bounds of the caller's strings stored on a job record.
MAX_KEY_CHARS = 200
MAX_ALBUM_CHARS = 200


class SongQueue:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = JobStore.from_url(self.settings.job_store_url, self.settings.key_prefix,
                                       self.settings.job_retention, self.settings.sentinel_master)
        self.celery = SongqueueCelery("songqueue-producer")
        self.celery.conf.update(celery_config(self.settings))

    def submit(
        self,
        request: RequestModel | dict[str, Any],
        *,
        provider: str = DEFAULT_PROVIDER,
        idempotency_key: str | None = None,
        callback_url: str | None = None,
        callback_progress: bool = False,
        album: str | None = None,
        batch_id: str | None = None,
        tenant: str = DEFAULT_TENANT,
        api_key: str | None = None,
    ) -> JobHandle:
        """Validate, record the job QUEUED, and send it to the submit queue.

        A dict is validated here with the provider's model (pydantic.ValidationError names
        the field and the rule); nothing is written or sent for bad input.
        `callback_url`: where to POST the job's signed status when it ends (and on every
        progress change with `callback_progress`); a URL that breaks a rule raises
        producer.client.callbacks.CallbackUrlError (a ValueError naming callback_url).
        `album`: the ID3 album of its songs; `batch_id`: the playlist run it belongs to;
        `tenant`: who owns it, and `api_key`: the id of the key that submitted it (the HTTP
        API passes both; the workers hold the job to that key's limits).
        """
        check_label("idempotency_key", idempotency_key, MAX_KEY_CHARS)
        check_label("album", album, MAX_ALBUM_CHARS)
        check_label("batch_id", batch_id, MAX_KEY_CHARS)
        spec = PROVIDERS.get(provider)
        if spec is None:
            raise ValueError(f"provider: must be one of {', '.join(sorted(PROVIDERS))}, got {provider!r}")
        if callback_url is not None:
            callback_url = check_callback_url(callback_url, callback_policy(self.settings)).url
        elif callback_progress:
            raise ValueError("callback_progress: needs a callback_url")
        if not isinstance(request, spec.request_model):
            if isinstance(request, REQUEST_MODELS):
                raise ValueError(f"provider: a {type(request).__name__} cannot go to provider {provider!r}")
            request = spec.request_model.model_validate(request)
        record = JobRecord(
            id=uuid.uuid4().hex,
            provider=provider,
            model=request.model_name,
            request=request.to_gen_params(),
            idempotency_key=idempotency_key,
            callback_url=callback_url,
            callback_progress=callback_progress,
            album=album,
            batch_id=batch_id,
            tenant=tenant,
            api_key=api_key,
        )
        # If the submit message is lost, the watchdog sends it again after the grace period.
        record, created = self.store.create(record, check_in=self.settings.watchdog_grace)
        if created:
            self._send(task_names.SUBMIT, record)
        return JobHandle(record.id, self, created)

    def upload_reference(self, path: str | Path, purpose: Purpose) -> str:
        """Upload a local reference audio file to MiniMax; returns its voice_id or instrumental_id.

        Done here, not by a worker: the file is on this machine. Raises OSError when the file
        cannot be read and minimax_upload.UploadError when the upstream refuses or fails.
        """
        return upload_reference(self.settings, Path(path), purpose)

    def _send(self, name: str, record: JobRecord) -> None:
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

    def status(self, job_id: str) -> JobRecord:
        """The job's record; once Redis has let an ended job go (SONGQUEUE_JOB_RETENTION),
        the record its manifest.json tells (producer/objects/archive.py)."""
        record = self.store.get(job_id)
        if record is None:
            record = self.archived(job_id)
        if record is None:
            raise JobNotFound(f"no job {job_id}")
        return record

    def archived(self, job_id: str) -> JobRecord | None:
        """The job as its manifest in storage tells it, or None when it has none."""
        try:
            document = read_manifest(self.settings, self.links, job_id)
        except ValueError:  # not a job id at all
            return None
        return None if document is None else record_from_manifest(document, manifest_object(self.settings, job_id))

    def list_archived(self, limit: int = 100) -> builtins.list[JobRecord]:
        """Jobs found in storage whose records have left Redis, newest first on file storage."""
        found: builtins.list[JobRecord] = []
        for job_id in archived_ids(self.settings):
            if len(found) >= limit:
                break
            if self.store.get(job_id) is None and (record := self.archived(job_id)) is not None:
                found.append(record)
        return found

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        on_progress: Callable[[JobRecord], None] | None = None,
        interval: float = 0.5,
    ) -> JobRecord:
        """Block until the job is terminal; raises WaitTimeout past `timeout` seconds."""
        try:
            return poll_until(lambda: self.status(job_id), lambda r: r.state.terminal, timeout,
                              on_progress=on_progress, interval=interval)
        except Deadline as exc:
            raise WaitTimeout(exc.last) from None

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job that has not ended. Its pending tasks find it CANCELLED and stop."""
        def note(r: JobRecord) -> None:
            r.error = JobError(code="cancelled", message="cancelled by request")
            r.waiting_for = None

        record = self.store.apply(job_id, CANCELLABLE_STATES, mutate=note, to=JobState.CANCELLED)
        if record is None:
            return self.status(job_id)
        announce(self.celery, record, TERMINAL_EVENTS[JobState.CANCELLED])
        send_archive(self.celery, record)
        return record

    def retry(self, job_id: str) -> JobRecord:
        """Replay a FAILED or TIMED_OUT job: a new upstream submit (producer/client/replay.py).

        Raises JobNotFound, or replay.NotReplayable for a job in any other state."""
        record = self.store.apply(job_id, REPLAYABLE_STATES, mutate=replay.reset_for_replay, to=JobState.QUEUED,
                                  check_in=self.settings.watchdog_grace)
        if record is None:
            raise replay.refusal(self.status(job_id))
        self._send(task_names.SUBMIT, record)
        return record

    def list(self, state: JobState | None = None, limit: int = 100) -> builtins.list[JobRecord]:
        return self.store.list(state, limit)

    @cached_property
    def links(self) -> ObjectLinks:
        return ObjectLinks(self.settings)

    def link(self, obj: StoredObject) -> str:
        """A usable link to a stored object: a local path (file storage) or a presigned
        URL valid for SONGQUEUE_LINK_EXPIRY seconds (S3)."""
        return self.links.link(obj)

    def view(self, job_id: str) -> dict[str, Any]:
        """The job as `songqueue status --json` shows it, with a link per object."""
        return self.status(job_id).public_view(link=self.link)

    def fetch(self, job_id: str, to: Path | str) -> builtins.list[Path]:
        """Copy the job's stored songs and covers into folder `to` under readable, safe
        names ("01 - Title.mp3"); returns the paths written or found already there."""
        return fetch_job(self.status(job_id), self.links, Path(to))
