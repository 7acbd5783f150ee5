"""What every provider returns, and the protocol an asynchronous provider implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class UpstreamSong:
    id: str
    title: str
    song_path: str
    image_path: str
    duration: float | None
    lyrics: str
    tags: list[str]
    finished: bool


@dataclass(frozen=True)
class UpstreamStatus:
    outcome: Outcome
    raw_status: str
    progress: int
    fail_reason: str = ""
    songs: list[UpstreamSong] = field(default_factory=list)


class AsyncProvider(Protocol):
    """A gateway that takes a job and is polled until it ends."""

    name: str

    def submit(self, request: dict[str, Any]) -> str:
        """Send the paid generation request; return the upstream task id."""

    def fetch(self, task_id: str) -> UpstreamStatus:
        """Ask how the upstream task is doing."""
