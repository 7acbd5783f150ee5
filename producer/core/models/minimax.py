"""What a caller may ask of MiniMax (docs/upstream-contract.md, "MiniMax").

music-01 takes lyrics and references to uploaded audio (a multipart form); the current
models (music-1.5 to music-2.6) take a style prompt and lyrics as JSON. Validated here, at
the producer, before anything is enqueued or paid for. The reference ids come from the
upload API (`producer.client.minimax_upload`); the worker never sees a local file, only
these ids.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from producer.core.models.text_rules import control_rule

MAX_LYRICS_CHARS = 200
REFERENCE_MODEL = "music-01"
PROMPT_MODELS = ("music-2.6", "music-2.5+", "music-2.5", "music-2.0", "music-1.5")
MAX_PROMPT_LYRICS_CHARS = 3500
MAX_PROMPT_CHARS = 2000
# Fields of the current models' JSON body that music-01 does not take.
_PROMPT_MODEL_FIELDS = ("prompt", "is_instrumental", "lyrics_optimizer", "output_format", "audio_setting")
ACCOMPANIMENT = "##"
_REFERENCE_ID = r"^[A-Za-z0-9._:-]+$"


def lyrics_length(lyrics: str) -> int:
    """The length the upstream counts: every character is 1.

    The contract says each CJK character, punctuation mark and letter counts 1 (so CJK is
    not counted in bytes). It names nothing that counts less, so spaces, line breaks and
    the `##` markers count 1 each too: that can only refuse what the upstream might refuse.
    NFC first, so an accented letter typed as letter + combining mark counts once.
    """
    return len(unicodedata.normalize("NFC", lyrics))


class AudioSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_rate: Literal[16000, 24000, 32000, 44100] = 44100
    bitrate: Literal[32000, 64000, 128000, 256000] = 256000
    # Only MP3 can be checked, tagged and stored as a song.
    format: Literal["mp3"] = "mp3"


class MiniMaxRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: Literal["music-01", "music-2.6", "music-2.5+", "music-2.5", "music-2.0", "music-1.5"] = "music-01"
    lyrics: str = Field("", description="music-01: at most 200 characters, `##` around the accompaniment; "
                                         "music-1.5+: up to 3500")
    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="music-1.5+: style and mood")
    is_instrumental: bool | None = Field(None, title="Instrumental",
                                         description="music-1.5+: no vocals (then the prompt is required)")
    lyrics_optimizer: bool | None = Field(None, description="music-1.5+: let MiniMax write the lyrics")
    output_format: Literal["url", "hex"] | None = Field(None, description="music-1.5+: hex (default) or url")
    audio_setting: AudioSetting | None = Field(None, title="Audio settings",
                                               description="music-1.5+: sample rate and bitrate of the MP3")
    refer_voice: str | None = Field(None, title="Reference voice", min_length=1, max_length=200, pattern=_REFERENCE_ID,
                                    description="voice_id from the upload API")
    refer_instrumental: str | None = Field(None, title="Reference instrumental", min_length=1, max_length=200,
                                           pattern=_REFERENCE_ID, description="instrumental_id from the upload API")

    @field_validator("lyrics", mode="before")
    @classmethod
    def _unix_line_breaks(cls, value: Any) -> Any:
        # `\n` separates lines upstream; a lyrics file saved on Windows must not smuggle
        # `\r` characters (each counted) into the song.
        return value.replace("\r\n", "\n") if isinstance(value, str) else value

    @field_validator("lyrics", "prompt")
    @classmethod
    def _no_control_characters(cls, value: str | None, info: ValidationInfo) -> str | None:
        rule = control_rule(value or "")
        if rule:
            raise ValueError(f"{info.field_name}: {rule}")
        return value

    @model_validator(mode="after")
    def _rules_of_the_model(self) -> MiniMaxRequest:
        if self.model == REFERENCE_MODEL:
            given = [name for name in _PROMPT_MODEL_FIELDS if getattr(self, name) is not None]
            if given:
                raise ValueError(f"{given[0]}: only for {', '.join(PROMPT_MODELS)}, not {REFERENCE_MODEL}")
            _reference_lyrics(self.lyrics)
            if self.refer_voice is None and self.refer_instrumental is None:
                raise ValueError(
                    "refer_voice: at least one of refer_voice / refer_instrumental is required "
                    "(an id from the upload API, e.g. songqueue submit --refer-voice-file FILE)"
                )
            return self
        for name in ("refer_voice", "refer_instrumental"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: only for {REFERENCE_MODEL}; {self.model} takes a prompt and lyrics")
        length = lyrics_length(self.lyrics)
        if length > MAX_PROMPT_LYRICS_CHARS:
            raise ValueError(f"lyrics: at most {MAX_PROMPT_LYRICS_CHARS} characters for {self.model}, got {length}")
        if self.is_instrumental:
            if not (self.prompt or "").strip():
                raise ValueError("prompt: required when is_instrumental is true (the style of the piece)")
        elif not self.lyrics.strip() and not self.lyrics_optimizer:
            raise ValueError("lyrics: required for a song with vocals, unless lyrics_optimizer is true")
        if not self.lyrics.strip() and not (self.prompt or "").strip():
            raise ValueError("prompt: required when there are no lyrics")
        return self

    @property
    def model_name(self) -> str:
        return self.model

    def to_gen_params(self) -> dict[str, Any]:
        """The multipart form fields (music-01) or the JSON body (the current models)."""
        return self.model_dump(mode="json", exclude_none=True)


def _reference_lyrics(lyrics: str) -> None:
    """music-01's lyrics rules."""
    length = lyrics_length(lyrics)
    if length > MAX_LYRICS_CHARS:
        raise ValueError(
            f"lyrics: at most {MAX_LYRICS_CHARS} characters (every CJK character, letter, punctuation mark, "
            f"space and line break counts 1), got {length}"
        )
    inner = lyrics.removeprefix(ACCOMPANIMENT).removesuffix(ACCOMPANIMENT)
    if ACCOMPANIMENT in inner:
        raise ValueError("lyrics: '##' adds accompaniment and is only allowed at the very start and the very end")
    if not inner.strip():
        raise ValueError("lyrics: required, the words to sing (line breaks and '##' markers alone are not lyrics)")


# MiniMax's own codes for "rate limit triggered" (its API documentation; unconfirmed
# through 302.ai): worth trying again later, unlike every other non-zero code.
RATE_LIMIT_CODES = frozenset({1002, 1039})


def base_resp(body: Any) -> tuple[int, str] | None:
    """(status_code, status_msg) of a MiniMax answer, or None when it has no usable base_resp."""
    resp = body.get("base_resp") if isinstance(body, dict) else None
    if not isinstance(resp, dict) or not isinstance(resp.get("status_code"), int):
        return None
    return resp["status_code"], str(resp.get("status_msg") or "")
