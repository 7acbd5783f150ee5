"""The Python API a backend service uses: submit, status, wait, cancel, list."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery

from producer import task_names
from producer.celery_config import celery_config
from producer.job_record import TERMINAL_STATES, JobError, JobRecord, JobState
from producer.job_store import JobStore
from producer.settings import Settings, get_settings
from producer.udio_request import UdioRequest

PROVIDERS = {"udio": UdioRequest}
CANCELLABLE = frozenset(
    {JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.GENERATING, JobState.DOWNLOADING}
)


class JobNotFound(LookupError):
    pass


class WaitTimeout(TimeoutError):
    def __init__(self, record: JobRecord) -> None:
        super().__init__(f"job {record.id} still {record.state.value} ({record.progress}%)")
        self.record = record


@dataclass(frozen=True)
class JobHandle:
    id: str
    queue: "SongQueue"
    created: bool = True

    def status(self) -> JobRecord:
        return self.queue.status(self.id)

    def wait(self, timeout: float | None = None) -> JobRecord:
        return self.queue.wait(self.id, timeout=timeout)


class SongQueue:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = JobStore.from_url(self.settings.job_store_url, self.settings.key_prefix)
        self.celery = Celery("songqueue-producer")
        self.celery.conf.update(celery_config(self.settings))

    def submit(
        self,
        request: UdioRequest | dict[str, Any],
        *,
        provider: str = "udio",
        idempotency_key: str | None = None,
    ) -> JobHandle:
        """Validate, record the job QUEUED, and send it to the submit queue.

        A dict is validated here (pydantic.ValidationError names the field and the rule);
        nothing is written or sent for bad input.
        """
        model = PROVIDERS.get(provider)
        if model is None:
            raise ValueError(f"provider: must be one of {', '.join(sorted(PROVIDERS))}, got {provider!r}")
        if not isinstance(request, model):
            request = model.model_validate(request)
        record = JobRecord(
            id=uuid.uuid4().hex,
            provider=provider,
            model=request.model_type,
            request=request.to_gen_params(),
            idempotency_key=idempotency_key,
        )
        record, created = self.store.create(record)
        if created:
            self._send(task_names.SUBMIT, record)
        return JobHandle(record.id, self, created)

    def _send(self, name: str, record: JobRecord) -> None:
        prompt = str(record.request.get("prompt", ""))[:40]
        try:
            self.celery.send_task(
                name,
                args=[record.id],
                argsrepr=f"job={record.id} provider={record.provider} prompt={prompt!r}",
            )
        except Exception as exc:
            # The record exists; say so rather than leave a QUEUED job nobody will run.
            self.store.apply(
                record.id, {JobState.QUEUED},
                mutate=lambda r: setattr(r, "error", JobError(code="enqueue_failed", message=str(exc))),
                to=JobState.FAILED,
            )
            raise

    def status(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None:
            raise JobNotFound(f"no job {job_id}")
        return record

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        on_progress: Callable[[JobRecord], None] | None = None,
        interval: float = 0.5,
    ) -> JobRecord:
        """Block until the job is terminal; raises WaitTimeout past `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.status(job_id)
            if on_progress is not None:
                on_progress(record)
            if record.state in TERMINAL_STATES:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(record)
            time.sleep(interval)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job that has not ended. Its pending tasks find it CANCELLED and stop."""
        def note(r: JobRecord) -> None:
            r.error = JobError(code="cancelled", message="cancelled by request")

        record = self.store.apply(job_id, CANCELLABLE, mutate=note, to=JobState.CANCELLED)
        return record if record is not None else self.status(job_id)

    def list(self, state: JobState | None = None, limit: int = 100) -> list[JobRecord]:
        return self.store.list(state, limit)
