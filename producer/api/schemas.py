"""The API's request and response bodies, built from the producer's own request models.

`SubmitJob` is a union tagged by `provider`, one member per `ProviderSpec`, whose `request`
is that provider's request model: the OpenAPI document shows each provider's real fields and
rules, and a new provider appears here without an edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from producer.core.callbacks import EVENTS, check_events
from producer.core.models.job_record import JobError, JobRecord, JobState
from producer.core.models.minimax import MiniMaxRequest
from producer.core.models.providers import PROVIDERS
from producer.core.models.udio import UdioRequest


class _JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_url: str | None = Field(None, description="POST the job's signed status here when it ends (http/https)")
    callback_progress: bool = Field(False, description="with callback_url: also on every progress change")
    callback_events: list[str] | None = Field(
        None, max_length=len(EVENTS),
        description="with callback_url: only these events, of " + ", ".join(EVENTS) + " (default: every end, and "
                    "progress with callback_progress)")

    @field_validator("callback_events")
    @classmethod
    def _known_events(cls, names: list[str] | None) -> list[str] | None:
        try:
            return check_events(names)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("callback_events: ")) from None
    album: str | None = Field(None, max_length=500, description="the ID3 album of its songs")
    deadline: float | str | None = Field(
        None, description="when the songs stop being wanted: seconds from now, a duration (\"10m\") or an RFC 3339 "
                          "time; not submitted upstream by then, the job ends CANCELLED uncharged; submitted, TIMED_OUT "
                          "with its charge kept. The Cancel-After header says the same.")


class JobBody(_JobOptions):
    """What every member of SubmitJob has; the members narrow both fields."""

    provider: str
    request: UdioRequest | MiniMaxRequest


_MEMBERS = tuple(
    create_model(
        f"{spec.request_model.__name__.removesuffix('Request')}Job",
        __base__=JobBody,
        provider=(Literal[name], ...),  # type: ignore[arg-type]
        request=(spec.request_model, ...),
    )
    for name, spec in PROVIDERS.items()
)
if TYPE_CHECKING:
    SubmitJob = JobBody
else:
    SubmitJob = Annotated[Union[_MEMBERS], Field(discriminator="provider")]  # noqa: UP007


class ObjectView(BaseModel):
    """A stored file as a tenant sees it: its link on this API, never a server path or bucket key."""

    size: int
    sha256: str
    content_type: str
    link: str | None = Field(None, description="where the API serves it: /v1/jobs/{id}/songs/{n}/audio|cover")


class SongView(BaseModel):
    id: str
    title: str
    duration: float | None
    audio: ObjectView | None
    cover: ObjectView | None


class JobLinks(BaseModel):
    self: str
    events: str
    songs: list[dict[str, str]] = Field(default_factory=list)


class CallbackReplay(BaseModel):
    """A callback event sent again (POST /v1/jobs/{id}/callbacks/{delivery}/replay): one more attempt,
    same event and webhook-id; its outcome appears in the job's `callbacks`."""

    job_id: str
    delivery: str = Field(description="the webhook-id, the same as the event's first delivery")
    event: str
    attempt: int = Field(description="the number this attempt will carry in the job's `callbacks`")


class JobView(BaseModel):
    """`songqueue status --json` plus when, which provider and model, what it cost, and links."""

    id: str
    state: JobState
    progress: int
    error: JobError | None
    songs: list[SongView]
    waiting_for: str | None = None
    deadline: float | None = Field(None, description="the job's deadline (unix seconds), when it has one")
    expires_at: float | None = Field(
        None, description="when an ended job's record and links go (unix seconds; SONGQUEUE_JOB_RETENTION); null "
                          "while it runs or when kept forever")
    tenant: str
    provider: str
    model: str
    cost: float
    created_at: float
    updated_at: float
    links: JobLinks


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null at the end")


def job_view(record: JobRecord) -> dict[str, Any]:
    """The JobView of a record; object links point at this API, never at a server path."""
    base = f"/v1/jobs/{record.id}"
    view = record.public_view()
    songs = []
    for n, song in enumerate(view["songs"], start=1):
        links = {}
        for asset in ("audio", "cover"):
            if song[asset] is not None:
                song[asset].pop("uri", None)  # a server path or bucket key: the operator's, not the tenant's
                song[asset]["link"] = links[asset] = f"{base}/songs/{n}/{asset}"
        songs.append(links)
    view.update(tenant=record.tenant, provider=record.provider, model=record.model, cost=record.cost,
                created_at=record.created_at, updated_at=record.updated_at,
                links={"self": base, "events": f"{base}/events", "songs": songs})
    return view
