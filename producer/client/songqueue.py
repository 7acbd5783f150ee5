"""The Python API a backend service uses: submit, status, wait, cancel, list, link, fetch."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Unpack

from producer.client import replay
from producer.client.fetch import fetch_job
from producer.client.minimax_upload import Purpose, upload_reference
from producer.client.wait_loop import Deadline, poll_until
from producer.core import callbacks, task_names
from producer.core.enqueue import Enqueuer, JobOptions
from producer.core.models.job_record import (
    REPLAYABLE_STATES,
    JobRecord,
    JobState,
    StoredObject,
)
from producer.core.models.providers import RequestModel
from producer.core.objects.archive import archived_ids, manifest_object, read_manifest, record_from_manifest
from producer.core.objects.links import ObjectLinks


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

class SongQueue(Enqueuer):
    """The Python API: what the kernel's Enqueuer does (create, cancel) and the rest a caller
    needs (status, wait, retry, list, links, fetch, reference uploads)."""

    def submit(self, request: RequestModel | dict[str, Any], **options: Unpack[JobOptions]) -> JobHandle:
        """Validate, record the job QUEUED and send it to the submit queue; a handle to follow it.

        Bad input raises before anything is written or sent; `Enqueuer.create` says what
        each option means.
        """
        record, created = self.create(request, **options)
        return JobHandle(record.id, self, created)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job that has not ended; an ended one is returned as it is."""
        return super().cancel(job_id) or self.status(job_id)

    def upload_reference(self, path: str | Path, purpose: Purpose) -> str:
        """Upload a local reference audio file to MiniMax; returns its voice_id or instrumental_id.

        Done here, not by a worker: the file is on this machine. Raises OSError when the file
        cannot be read and minimax_upload.UploadError when the upstream refuses or fails.
        """
        return upload_reference(self.settings, Path(path), purpose)

    def status(self, job_id: str) -> JobRecord:
        """The job's record; once Redis has let an ended job go (SONGQUEUE_JOB_RETENTION),
        the record its manifest.json tells (producer/core/objects/archive.py)."""
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

    def retry(self, job_id: str) -> JobRecord:
        """Replay a FAILED or TIMED_OUT job: a new upstream submit (producer/client/replay.py).

        Raises JobNotFound, or replay.NotReplayable for a job in any other state."""
        record = self.store.apply(job_id, REPLAYABLE_STATES, mutate=replay.reset_for_replay, to=JobState.QUEUED,
                                  check_in=self.settings.watchdog_grace)
        if record is None:
            raise replay.refusal(self.status(job_id))
        self.send(task_names.SUBMIT, record)
        return record

    def replay_callback(self, job_id: str, delivery: str) -> callbacks.Replay:
        """Send a job's callback `delivery` once more, same event and webhook-id (producer/core/callbacks.py).

        Raises JobNotFound, or callbacks.UnknownDelivery when the job has no such delivery."""
        record = self.store.get(job_id)
        if record is None:
            raise JobNotFound(f"no job {job_id}")
        return callbacks.replay(self.celery, record, delivery)

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
