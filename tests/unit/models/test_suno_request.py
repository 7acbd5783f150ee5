"""SunoRequest: both modes, extend, and every refusal naming its field and rule."""

from __future__ import annotations

import pydantic
import pytest

from producer.core.models.suno import SunoRequest
from producer.core.models.validation_errors import field_errors


def _refusal(**data: object) -> tuple[str, str]:
    with pytest.raises(pydantic.ValidationError) as info:
        SunoRequest.model_validate(data)
    return field_errors(info.value)[0]


def test_inspiration_mode() -> None:
    request = SunoRequest(gpt_description_prompt="a calm lo-fi piano piece", mv="chirp-crow")
    assert request.to_gen_params() == {"gpt_description_prompt": "a calm lo-fi piano piece", "mv": "chirp-crow",
                                       "make_instrumental": False}
    assert request.model_name == "chirp-crow"


def test_custom_mode_and_extend_keeps_continue_at_zero() -> None:
    request = SunoRequest(prompt="[Verse]\nla la", title="T", tags="punk", continue_clip_id="clip-1",
                          continue_at=0, task_id="task_" + "a" * 32)
    params = request.to_gen_params()
    assert params["continue_at"] == 0 and params["continue_clip_id"] == "clip-1"
    assert params["prompt"] == "[Verse]\nla la"


def test_instrumental_custom_mode_needs_no_lyrics() -> None:
    assert SunoRequest(tags="ambient drone", make_instrumental=True).make_instrumental


@pytest.mark.parametrize(("data", "field", "rule"), [
    ({}, "gpt_description_prompt", "required"),
    ({"gpt_description_prompt": "x", "title": "t"}, "title", "custom mode only"),
    ({"gpt_description_prompt": "  "}, "gpt_description_prompt", "blank"),
    ({"tags": "punk"}, "prompt", "lyrics"),
    ({"gpt_description_prompt": "x", "mv": "chirp-v9"}, "mv", "chirp-v3-0"),
    ({"gpt_description_prompt": "x", "continue_at": 3}, "continue_clip_id", "required"),
    ({"gpt_description_prompt": "x", "continue_clip_id": "c"}, "continue_at", "required"),
    ({"gpt_description_prompt": "x", "continue_clip_id": "c", "continue_at": -1}, "continue_at", "0"),
    ({"gpt_description_prompt": "x", "negative_tags": "y"}, "negative_tags", "unknown"),
])
def test_refusals_name_field_and_rule(data: dict, field: str, rule: str) -> None:
    key, message = _refusal(**data)
    assert key == field
    assert rule in message
