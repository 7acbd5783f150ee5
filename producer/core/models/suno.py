"""What a caller may ask of Suno through a task relay (docs/upstream-contract.md, "Suno").

Two modes, as the relays take them: inspiration (`gpt_description_prompt`, a description;
Suno writes lyrics, title and style) and custom (`prompt` = the lyrics, `title`, `tags` =
style text). Either may extend an earlier clip (`continue_clip_id`, `continue_at`,
`task_id`). Validated here, at the producer, before anything is enqueued or paid for;
field names are the relays' own, so `to_gen_params()` is a plain dump.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SUNO_MODELS = ("chirp-v3-0", "chirp-v3-5", "chirp-v4", "chirp-auk", "chirp-crow")
_UPSTREAM_ID = r"^[A-Za-z0-9._:-]+$"


class SunoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    gpt_description_prompt: str | None = Field(None, max_length=3000, title="Song description",
                                               description="inspiration mode: describe the song")
    prompt: str | None = Field(None, max_length=5000, title="Lyrics", description="custom mode: the lyrics")
    title: str | None = Field(None, max_length=200, description="custom mode: the song's title")
    tags: str | None = Field(None, max_length=1000, title="Style", description='custom mode: style text ("emotional punk")')
    mv: Literal["chirp-v3-0", "chirp-v3-5", "chirp-v4", "chirp-auk", "chirp-crow"] = Field(
        "chirp-v3-5", title="Model", description="the Suno model (`mv` upstream)")
    make_instrumental: bool = False
    continue_clip_id: str | None = Field(None, min_length=1, max_length=200, pattern=_UPSTREAM_ID, title="Clip to continue",
                                         description="extend: the clip to continue")
    continue_at: float | None = Field(None, ge=0, le=3600, title="Continue at (s)", description="extend: seconds into the clip")
    task_id: str | None = Field(None, min_length=1, max_length=200, pattern=_UPSTREAM_ID, title="Task of the clip",
                                description="extend: the upstream task that made the clip")

    @model_validator(mode="after")
    def _one_mode(self) -> SunoRequest:
        described = bool(self.gpt_description_prompt and self.gpt_description_prompt.strip())
        custom = [name for name in ("prompt", "title", "tags") if getattr(self, name) is not None]
        if described and custom:
            raise ValueError(f"{custom[0]}: custom mode only; the relays ignore it beside gpt_description_prompt "
                             "(inspiration mode)")
        if not described:
            if self.gpt_description_prompt is not None:
                raise ValueError("gpt_description_prompt: must not be blank")
            if not (self.tags or "").strip() and not (self.prompt or "").strip():
                raise ValueError("gpt_description_prompt: required, or custom mode's prompt (lyrics) or tags")
            if not self.make_instrumental and not (self.prompt or "").strip():
                raise ValueError("prompt: custom mode needs the lyrics unless make_instrumental is true")
        extending = [n for n in ("continue_clip_id", "continue_at", "task_id") if getattr(self, n) is not None]
        if extending and self.continue_clip_id is None:
            raise ValueError(f"continue_clip_id: required with {extending[0]} (the clip to extend)")
        if self.continue_clip_id is not None and self.continue_at is None:
            raise ValueError("continue_at: required with continue_clip_id (seconds into the clip, 0 allowed)")
        return self

    @property
    def model_name(self) -> str:
        return self.mv

    def to_gen_params(self) -> dict[str, Any]:
        """The submit body. `continue_at: 0` is kept: a relay that drops it would continue
        from the clip's end instead of its start."""
        return self.model_dump(mode="json", exclude_none=True)
