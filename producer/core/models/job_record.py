"""The job record: the one source of truth about a job, shared by producer and workers.

Stored as JSON in Redis (see `producer.core.store.job_store`). Every write goes through a
compare-and-set on `state`, and bumps `version`, which tasks use as a fencing token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from producer.core.models.text_rules import clean_text

# A job's error sentence (it may quote an upstream) is cut to this many characters.
MAX_ERROR_CHARS = 600


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


DEFAULT_TENANT = "default"

# The sets of states every module asks about, defined here and nowhere else.
TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED})
# A job that has not ended: what a task may still move, and what `cancel` may stop.
LIVE_STATES = frozenset(JobState) - TERMINAL_STATES
CANCELLABLE_STATES = LIVE_STATES
# A job waiting on the upstream; polling continues in these.
WAITING_STATES = frozenset({JobState.SUBMITTED, JobState.GENERATING})
# A job whose upstream call or task is under way: what SONGQUEUE_{PROVIDER}_MAX_IN_FLIGHT counts.
IN_FLIGHT_STATES = frozenset({JobState.SUBMITTING, JobState.SUBMITTED, JobState.GENERATING})
# An ended job `songqueue retry` may run again (producer/client/replay.py).
REPLAYABLE_STATES = frozenset({JobState.FAILED, JobState.TIMED_OUT})


class StoredObject(BaseModel):
    uri: str
    key: str
    size: int
    sha256: str = Field(description="of the stored bytes (for an MP3: after tagging)")
    content_type: str
    upstream_sha256: str | None = Field(None, description="of the bytes as the upstream served them")
    stored_at: float | None = None


class JobError(BaseModel):
    code: str = Field(description="machine-readable, e.g. upstream_failure, submit_uncertain")
    message: str = Field(description="a human sentence, with the upstream's own reason when it gave one")

    @field_validator("code", "message")
    @classmethod
    def _printable(cls, text: str, info: ValidationInfo) -> str:
        # The message may quote an upstream: it reaches terminals, logs and callbacks.
        return clean_text(text, MAX_ERROR_CHARS if info.field_name == "message" else 80)


class UncertainSubmit(BaseModel):
    """A submit whose paid call may have gone through, waiting for the gateway's notify hook
    to name its task (workers/steps/uncertain.py) until `since` + SONGQUEUE_UNCERTAIN_HOOK_WAIT."""

    since: float
    reason: str = Field(description="why the outcome is unknown, for the error if no hook comes")
    # The call's price is already on the job (a lost answer is charged when it comes back
    # uncertain); a worker that died mid-call charged nothing, so reconciling charges it then.
    charged: bool = False


class Transition(BaseModel):
    state: JobState
    at: float


class PreviousRun(BaseModel):
    """An earlier run of a job that `songqueue retry` replayed: what it reached and why it ended."""

    state: JobState
    upstream_task_id: str | None = None
    error: JobError | None = None
    submitted_at: float | None = None
    ended_at: float
    retried_at: float


class CallbackAttempt(BaseModel):
    """One delivery of a job's callback (workers/tasks/callback.py)."""

    at: float
    event: str
    delivery: str = Field(description="the same for every attempt of one event (its webhook-id)")
    attempt: int
    status_code: int | None = Field(None, description="the receiver's HTTP status; None when it did not answer")
    error: str | None = None
    replay: bool = Field(False, description="sent again by request (POST .../callbacks/{delivery}/replay)")


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
    # Audio the upstream returned inline (MiniMax's hex answer), staged in storage under
    # this key by the submit step; the download step takes it from there, not from a URL.
    staged_audio_key: str = ""

    def assets(self) -> tuple[str, ...]:
        """What this song has to store: its audio, and a cover when the upstream made one."""
        return ("audio", "cover") if self.image_path else ("audio",)


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
    error: JobError | None = None
    songs: list[SongRecord] = Field(default_factory=list)
    idempotency_key: str | None = None
    # sha256 of what was asked (producer/core/request_fingerprint.py): a repeat of the
    # idempotency key with another fingerprint is another request, refused.
    request_fingerprint: str | None = None
    # Who the job belongs to: the tenant of the API key that submitted it (producer/api/),
    # "default" for the CLI and the Python API, trusted in-cluster clients without keys.
    tenant: str = DEFAULT_TENANT
    # The id of the API key that submitted it (None for the CLI and the Python API): the
    # workers hold the job to that key's own in-flight limit and daily budget, as they do
    # to the provider's (workers/admission/key_limits.py).
    api_key: str | None = None
    # Why a live job is not moving (a shared limit or the budget; workers/admission/limits.py), for
    # `songqueue status`; None when nothing holds it back.
    waiting_for: str | None = None
    # The in-flight limit the job is parked behind ("in_flight": its provider's, "key_in_flight":
    # its API key's; producer/core/store/parking.py): no message of its own until a place frees.
    parked: str | None = None
    # Earlier runs replayed by `songqueue retry`, oldest first.
    history: list[PreviousRun] = Field(default_factory=list)
    # Submit ledger: intent recorded before the paid upstream call, task id right after.
    submit_intent_at: float | None = None
    # The latest intent's id: names its paid call, so the call is charged once however
    # many writes (a redelivered copy's end, the late answer, a retried write) charge it.
    submit_intent_id: str | None = None
    # The intents whose paid call is in `cost` already (workers/steps/ledger.py).
    charged_calls: list[str] = Field(default_factory=list)
    # Set while an uncertain submit waits for the notify hook; cleared by the next submit.
    uncertain_submit: UncertainSubmit | None = None
    # The upstream task id a signed notify hook named while the job had none (it may come
    # before the lost answer does): what an uncertain submit is reconciled from.
    notified_task_id: str | None = None
    submitted_at: float | None = None
    # The last poll that saw the upstream task running, and the finish its progress then
    # predicted (linearly, when 0 < progress < 100): what the poll schedule learns from
    # (workers/poll_learning.py).
    polled_at: float | None = None
    predicted_finish: float | None = None
    # When polling gives up: the provider's deadline from the submit, or the job's own
    # `cancel_after` if that comes first (workers/steps/paid.py).
    deadline_at: float | None = None
    # The caller's deadline (producer/core/deadlines.py): past it, a job not yet submitted
    # ends CANCELLED uncharged, a submitted one TIMED_OUT with its charge kept.
    cancel_after: float | None = None
    # When the record leaves Redis: its end plus SONGQUEUE_JOB_RETENTION, set by the write
    # that ends it (producer/core/store/job_store.py); None while live or kept forever.
    expires_at: float | None = None
    manifest: StoredObject | None = None
    # Price of the paid upstream calls that answered: SONGQUEUE_{PROVIDER}_PRICE_PER_CALL
    # times the model's factor, per call (workers.providers.registry.call_price).
    cost: float = 0.0
    # The ID3 album; a playlist sets its name here. None means "songqueue job {id}".
    album: str | None = None
    # The playlist run (producer.core.models.playlist_run) this job belongs to, if any.
    batch_id: str | None = None
    # Where songqueue POSTs the job's status when it ends (and on progress, if asked);
    # checked at the producer (producer.core.callbacks.check_callback_url).
    callback_url: str | None = None
    callback_progress: bool = False
    # The events the caller asked for (producer/core/callbacks.py EVENTS); None: every end (and
    # progress by callback_progress or SONGQUEUE_CALLBACK_PROGRESS).
    callback_events: list[str] | None = None
    callbacks: list[CallbackAttempt] = Field(default_factory=list, description="the latest delivery attempts")
    version: int = 0
    # Fencing token: the step message that carries the current token is the live one. The
    # watchdog bumps it when it reschedules a step, so the original message, should the
    # broker deliver it again later, finds a newer token and does nothing.
    token: int = 0

    @property
    def run(self) -> int:
        """Which run of the job this is: 0, then one more per replay (`songqueue retry`).
        Download and finalize messages carry it (workers/tasks/download.py)."""
        return len(self.history)

    def expected_assets(self) -> int:
        return sum(len(s.assets()) for s in self.songs)

    def stored_assets(self) -> int:
        return sum((s.audio is not None) + (s.cover is not None) for s in self.songs)

    def public_view(self, link: Callable[[StoredObject], str] | None = None, *,
                    locations: bool = True) -> dict[str, Any]:
        """The shape of `songqueue status --json` (docs/cli.md).

        `link` makes each object's "link" (a path, or a presigned URL: producer.core.objects.links);
        without it "link" is None. `locations=False` leaves out each object's "uri" (a server
        path or a bucket key: the operator's, for a view that leaves the fleet, as a callback does).
        """
        view: dict[str, Any] = {
            "id": self.id,
            "state": self.state.value,
            "progress": self.progress,
            "provider": self.provider,
            "model": self.model,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "cost": self.cost,
            "error": self.error.model_dump() if self.error else None,
            "songs": [
                {
                    "id": s.upstream_id,
                    "title": clean_text(s.title),
                    "duration": s.duration,
                    "audio": _object_view(s.audio, link, locations),
                    "cover": _object_view(s.cover, link, locations),
                }
                for s in self.songs
            ],
        }
        view["expires_at"] = self.expires_at
        if self.cancel_after is not None:
            view["deadline"] = self.cancel_after
        # Only while a limit or the budget holds the job back, so the documented shape stays.
        if self.waiting_for:
            view["waiting_for"] = self.waiting_for
        return view


def _object_view(obj: StoredObject | None, link: Callable[[StoredObject], str] | None,
                 locations: bool = True) -> dict[str, Any] | None:
    if obj is None:
        return None
    view = {"uri": obj.uri, "size": obj.size, "sha256": obj.sha256, "content_type": obj.content_type,
            "link": link(obj) if link else None}
    if not locations:
        del view["uri"]
    return view
