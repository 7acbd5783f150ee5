"""The record of one playlist run: a batch of song jobs that becomes one playlist.

Stored as JSON in Redis (`producer.core.store.playlist_store`), beside the job records and, like
them, changed only by compare-and-set on its state:

    CREATING   the record holds the expanded requests; jobs are being created
    RUNNING    every job exists; a check task waits (by countdown) for all to end
    SUCCEEDED  all jobs ended, playlist.m3u8 and playlist.json stored, >= min_success songs' jobs succeeded
    FAILED     the same, with fewer successes than min_success (or the files could not be stored)

The record holds everything needed to finish the run (the requests, not the definition
file), so anyone who finds it CREATING can complete it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from producer.core.models.job_record import JobError, JobRecord, StoredObject


class RunState(StrEnum):
    CREATING = "CREATING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED)


class RunSong(BaseModel):
    job_id: str
    request_index: int = Field(description="which request of the run, from 1")
    song_index: int = Field(description="which song of the job, from 1")
    title: str
    duration: float | None
    key: str = Field(description="storage key of the MP3")
    uri: str
    path: str = Field(description="the MP3's path relative to playlist.m3u8")
    sha256: str


class RunFailure(BaseModel):
    job_id: str | None
    request_index: int
    state: str
    error: JobError | None


class PlaylistRun(BaseModel):
    id: str
    playlist: str
    album: str
    provider: str
    storage_prefix: str
    trigger: Literal["schedule", "manual"]
    slot: float | None = Field(None, description="the scheduled time (Unix seconds) a scheduled run belongs to")
    source: str = Field("", description="the definition file it was made from")
    requests: list[dict[str, Any]]
    min_success: int
    state: RunState = RunState.CREATING
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    started_at: float | None = Field(None, description="when every job existed (RUNNING)")
    finished_at: float | None = None
    timeout: float = Field(description="seconds after started_at before the run ends with what it has")
    # Every job's deadline (producer/core/deadlines.py), fixed when the run began.
    job_cancel_after: float | None = None
    # Every job's callback (the definition's callback_url and callback_events).
    callback_url: str | None = None
    callback_events: list[str] | None = None
    job_ids: list[str] = Field(default_factory=list)
    songs: list[RunSong] = Field(default_factory=list)
    failures: list[RunFailure] = Field(default_factory=list)
    succeeded_requests: int = 0
    m3u8: StoredObject | None = None
    document: StoredObject | None = Field(None, description="playlist.json")
    error: JobError | None = None
    version: int = 0
    # Fencing token of the check task, as JobRecord.token: the sweep bumps it when it
    # sends a check again, so an old countdown chain, if it ever returns, stops.
    check_token: int = 0
    # Attempts at storing the playlist files, each counted before it starts: with the
    # sweep sending the check again after every lost one, only this bounds them.
    output_attempts: int = 0

    def run_dir(self) -> str:
        """Storage folder of this run's playlist.m3u8 and playlist.json."""
        return f"{self.storage_prefix}/{self.id}"

    def job_key(self, index: int) -> str:
        """Idempotency key of request `index` (from 1): one job per request, however often created."""
        return f"playlist-run:{self.id}:{index}"


def when(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def run_view(run: PlaylistRun, jobs: list[JobRecord | None]) -> dict[str, Any]:
    """The shape of `playlist status --json`."""
    return {
        "id": run.id,
        "playlist": run.playlist,
        "album": run.album,
        "state": run.state.value,
        "trigger": run.trigger,
        "scheduled_for": when(run.slot),
        "created_at": when(run.created_at),
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at),
        "requests": len(run.requests),
        "succeeded_requests": run.succeeded_requests,
        "min_success": run.min_success,
        "jobs": [
            {"id": job_id, "state": job.state.value if job else "MISSING", "progress": job.progress if job else 0,
             "error": job.error.model_dump() if job and job.error else None}
            for job_id, job in zip(run.job_ids, jobs)
        ],
        "songs": [{"title": s.title, "duration": s.duration, "path": s.path, "uri": s.uri, "job_id": s.job_id}
                  for s in run.songs],
        "failures": [f.model_dump() for f in run.failures],
        "m3u8": run.m3u8.uri if run.m3u8 else None,
        "json": run.document.uri if run.document else None,
        "error": run.error.model_dump() if run.error else None,
    }
