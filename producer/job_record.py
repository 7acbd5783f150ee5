"""The job record: the one source of truth about a job, shared by producer and workers.

Stored as JSON in Redis (see `producer.job_store`). Every write goes through a
compare-and-set on `state`, and bumps `version`, which tasks use as a fencing token.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class JobState(StrEnum):
    QUEUED = "QUEUED"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    GENERATING = "GENERATING"
    DOWNLOADING = "DOWNLOADING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED})
# A job waiting on the upstream; polling continues in these.
WAITING_STATES = frozenset({JobState.SUBMITTED, JobState.GENERATING})


class StoredObject(BaseModel):
    uri: str
    key: str
    size: int
    sha256: str
    content_type: str


class JobError(BaseModel):
    code: str = Field(description="machine-readable, e.g. upstream_failure, submit_uncertain")
    message: str = Field(description="a human sentence, with the upstream's own reason when it gave one")


class Transition(BaseModel):
    state: JobState
    at: float


class SongRecord(BaseModel):
    upstream_id: str
    title: str = ""
    duration: float | None = None
    lyrics: str = ""
    tags: list[str] = Field(default_factory=list)
    song_path: str = ""
    image_path: str = ""
    finished: bool = False
    # Set once the download tasks for this song were sent, so a poll that runs again
    # does not send them twice.
    dispatched: bool = False
    audio: StoredObject | None = None
    cover: StoredObject | None = None


class JobRecord(BaseModel):
    id: str
    provider: str
    model: str
    request: dict[str, Any]
    state: JobState = JobState.QUEUED
    progress: int = 0
    upstream_task_id: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    transitions: list[Transition] = Field(default_factory=list)
    attempts: dict[str, int] = Field(default_factory=dict, description="task runs per step")
    transient_errors: int = 0
    error: JobError | None = None
    songs: list[SongRecord] = Field(default_factory=list)
    idempotency_key: str | None = None
    # Submit ledger: intent recorded before the paid upstream call, task id right after.
    submit_intent_at: float | None = None
    submitted_at: float | None = None
    deadline_at: float | None = None
    manifest: StoredObject | None = None
    version: int = 0

    def expected_assets(self) -> int:
        return 2 * len(self.songs)

    def stored_assets(self) -> int:
        return sum((s.audio is not None) + (s.cover is not None) for s in self.songs)

    def public_view(self) -> dict[str, Any]:
        """The shape of `songqueue status --json` (design.md, public interface)."""
        return {
            "id": self.id,
            "state": self.state.value,
            "progress": self.progress,
            "error": self.error.model_dump() if self.error else None,
            "songs": [
                {
                    "id": s.upstream_id,
                    "title": s.title,
                    "duration": s.duration,
                    "audio": _object_view(s.audio),
                    "cover": _object_view(s.cover),
                }
                for s in self.songs
            ],
        }


def _object_view(obj: StoredObject | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {"uri": obj.uri, "size": obj.size, "sha256": obj.sha256, "content_type": obj.content_type}
