"""What a caller may ask of Udio: every `gen_params` field of the upstream contract.

Validation happens here, at the producer, before anything is enqueued. Field names are the
contract's own so `to_gen_params()` is a plain dump; unknown fields are refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from producer.core.models.text_rules import control_rule

# The gateways pass the seed on as a signed 32-bit integer; a larger one is refused or wrapped upstream.
MAX_SEED = 2**31 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SongSource(_Strict):
    source_type: Literal["song"] = "song"
    song_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")


class UdioConfig(_Strict):
    mode: Literal["regular", "precede", "continuation"] = "regular"
    context_length: float = Field(130, gt=0, le=600)
    source: SongSource | None = None

    @model_validator(mode="after")
    def _source_matches_mode(self) -> UdioConfig:
        if self.mode in ("precede", "continuation") and self.source is None:
            raise ValueError(
                f"config.source: required when config.mode is '{self.mode}' "
                "(the song_id of the song to extend)"
            )
        if self.mode == "regular" and self.source is not None:
            raise ValueError("config.source: only allowed when config.mode is 'precede' or 'continuation'")
        return self


class UdioRequest(_Strict):
    prompt: str = Field(min_length=1, max_length=5000)
    lyrics: str = Field("", max_length=20000)
    lyrics_type: Literal["generate", "user", "instrumental"] = "generate"
    model_type: Literal["udio32-v1.5", "udio130-v1.5"] = "udio32-v1.5"
    negative_prompt: str = Field("", max_length=5000)
    seed: int = Field(-1, ge=-1, le=MAX_SEED, description="-1 means random; else within a signed 32-bit integer")
    bypass_prompt_optimization: bool = False
    song_section_start: float = Field(0.0, ge=0.0, le=1.0)
    song_section_end: float = Field(1.0, ge=0.0, le=1.0)
    lyrics_placement_start: float = Field(0.0, ge=0.0, le=1.0)
    lyrics_placement_end: float = Field(0.95, ge=0.0, le=1.0)
    prompt_strength: float = Field(0.5, ge=0.0, le=1.0)
    clarity_strength: float = Field(0.25, ge=0.0, le=1.0)
    lyrics_strength: float = Field(0.5, ge=0.0, le=1.0)
    # Float literals are not valid typing, but pydantic enforces them and puts them in the schema.
    generation_quality: Literal[0.25, 0.5, 0.75, 1.0] = 0.75  # type: ignore[valid-type]
    config: UdioConfig = Field(default_factory=UdioConfig)

    @field_validator("prompt", "lyrics", "negative_prompt", mode="before")
    @classmethod
    def _unix_line_breaks(cls, value: Any) -> Any:
        # A text file saved on Windows must not be refused for its `\r` characters.
        return value.replace("\r\n", "\n") if isinstance(value, str) else value

    @field_validator("prompt", "lyrics", "negative_prompt")
    @classmethod
    def _no_control_characters(cls, text: str, info: ValidationInfo) -> str:
        rule = control_rule(text)
        if rule:
            raise ValueError(f"{info.field_name}: {rule}")
        return text

    @model_validator(mode="after")
    def _cross_field_rules(self) -> UdioRequest:
        if not self.prompt.strip():
            raise ValueError("prompt: must not be blank")
        if self.lyrics_type == "user" and not self.lyrics.strip():
            raise ValueError("lyrics: must be non-empty when lyrics_type is 'user'")
        if self.lyrics_type == "instrumental" and self.lyrics.strip():
            raise ValueError("lyrics: must be empty when lyrics_type is 'instrumental'")
        for start, end in (("song_section_start", "song_section_end"),
                           ("lyrics_placement_start", "lyrics_placement_end")):
            if getattr(self, end) < getattr(self, start):
                raise ValueError(f"{end}: must be >= {start}")
        return self

    @property
    def model_name(self) -> str:
        return self.model_type

    def to_gen_params(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

