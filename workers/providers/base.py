"""What every provider returns, and the two protocols a provider implements.

An asynchronous provider (Udio) takes a job and is polled until it ends; a synchronous
one (MiniMax) answers with the songs in the same call. Both describe songs with
`UpstreamSong`, so everything after the upstream call is provider-blind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class Outcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class InlineAudio:
    """Inline audio decoded into a spool file as it arrived; whoever stages it deletes the file."""

    path: Path
    size: int
    sha256: str
    head: bytes  # the first bytes, for sniffing the format without reopening


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
    # Audio the upstream returned inline (MiniMax's hex answer), decoded; `song_path` is
    # then empty. Never stored on the job record: it goes to storage at once.
    audio_bytes: bytes | None = field(default=None, repr=False)
    # The same, decoded as a stream into a spool file (MiniMax's provider does this).
    audio_file: InlineAudio | None = field(default=None, repr=False)


@dataclass(frozen=True)
class UpstreamStatus:
    outcome: Outcome
    raw_status: str
    progress: int
    fail_reason: str = ""
    songs: list[UpstreamSong] = field(default_factory=list)
    # What the upstream's own clock says the task took (`finish_time - submit_time`, whole
    # seconds), once it has ended; None when it does not say (workers/poll_schedule.py
    # finish_estimate weighs it against what the polls saw).
    took: float | None = None


@runtime_checkable
class AsyncProvider(Protocol):
    """A gateway that takes a job and is polled until it ends."""

    name: str
    # Read timeout of the paid call, seconds: how long a submit may be in flight.
    timeout: float
    # Price of one paid call per model, in multiples of SONGQUEUE_{NAME}_PRICE_PER_CALL.
    price_factors: Mapping[str, float]

    def submit(self, request: dict[str, Any], notify_hook: str = "") -> str:
        """Send the paid generation request; return the upstream task id.

        `notify_hook`: the job's signed notify URL (producer/core/hook_link.py), "" for none;
        sent only by a gateway whose spec says it calls hooks."""

    def fetch(self, task_id: str) -> UpstreamStatus:
        """Ask how the upstream task is doing."""


@runtime_checkable
class BatchProvider(AsyncProvider, Protocol):
    """An asynchronous gateway that can also fetch many tasks in one call (Suno's relays).

    The poll step then fetches every due task of the provider at once
    (docs/providers.md, "Batch polling")."""

    def fetch_many(self, task_ids: list[str]) -> dict[str, UpstreamStatus]:
        """The status of each task the upstream answered for, by task id; absent ones are left out."""


@runtime_checkable
class SyncProvider(Protocol):
    """A gateway that generates in the one paid call and answers with the songs."""

    name: str
    timeout: float
    price_factors: Mapping[str, float]

    def generate(self, request: dict[str, Any]) -> list[UpstreamSong]:
        """Send the paid generation request; return the finished songs (audio as a URL or bytes)."""
