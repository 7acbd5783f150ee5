"""What a caller may ask of MiniMax music-01 through 302.ai (docs/upstream-contract.md, "MiniMax music-01").

Validated here, at the producer, before anything is enqueued or paid for. The reference
ids come from the upload API (`producer.client.minimax_upload`); the worker never sees a local
file, only these ids.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from producer.models.text_rules import control_rule

MAX_LYRICS_CHARS = 200
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


class MiniMaxRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: Literal["music-01"] = "music-01"
    lyrics: str
    refer_voice: str | None = Field(None, min_length=1, max_length=200, pattern=_REFERENCE_ID,
                                    description="voice_id from the upload API")
    refer_instrumental: str | None = Field(None, min_length=1, max_length=200, pattern=_REFERENCE_ID,
                                           description="instrumental_id from the upload API")

    @field_validator("lyrics", mode="before")
    @classmethod
    def _unix_line_breaks(cls, value: Any) -> Any:
        # `\n` separates lines upstream; a lyrics file saved on Windows must not smuggle
        # `\r` characters (each counted) into the song.
        return value.replace("\r\n", "\n") if isinstance(value, str) else value

    @field_validator("lyrics")
    @classmethod
    def _lyrics_rules(cls, lyrics: str) -> str:
        rule = control_rule(lyrics)
        if rule:
            raise ValueError(f"lyrics: {rule}")
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
        return lyrics

    @model_validator(mode="after")
    def _at_least_one_reference(self) -> MiniMaxRequest:
        if self.refer_voice is None and self.refer_instrumental is None:
            raise ValueError(
                "refer_voice: at least one of refer_voice / refer_instrumental is required "
                "(an id from the upload API, e.g. songqueue submit --refer-voice-file FILE)"
            )
        return self

    @property
    def model_name(self) -> str:
        return self.model

    def to_gen_params(self) -> dict[str, Any]:
        """The multipart form fields of the generation call."""
        return self.model_dump(mode="json", exclude_none=True)
