"""The submit form generated from the request models: labels, help, defaults, what is sent back."""

from __future__ import annotations

import pydantic
import pytest
from pydantic import TypeAdapter

from producer.api.console.forms import field_errors, form_inputs, submit_body
from producer.api.problems import pydantic_errors
from producer.api.schemas import SubmitJob

_SUBMIT = TypeAdapter(SubmitJob)


def test_every_field_has_a_human_label() -> None:
    for provider, inputs in form_inputs().items():
        for i in inputs:
            assert "_" not in i.label and i.label not in ("Mv", "Gpt Description Prompt"), (provider, i.name, i.label)


def test_an_optional_choice_starts_at_default_and_a_set_one_at_its_value() -> None:
    minimax = {i.name: i for i in form_inputs()["minimax"]}
    assert minimax["output_format"].blank_choice and minimax["output_format"].default is None
    assert not minimax["model"].blank_choice and minimax["model"].default == "music-01"
    assert minimax["audio_setting.bitrate"].blank_choice  # a nested object is sent only when chosen


def _form(provider: str, **fields: str) -> dict[str, str]:
    """What a browser posts for the untouched form plus `fields`: unticked checkboxes are absent,
    blank choices and empty boxes are empty strings."""
    form = {"provider": provider}
    for i in form_inputs()[provider]:
        if i.kind != "checkbox":
            form[f"{provider}.{i.name}"] = "" if i.blank_choice or i.default is None else str(i.default)
    form.update({f"{provider}.{k}": v for k, v in fields.items()})
    return form


def test_the_untouched_minimax_form_submits_music_01() -> None:
    # The old form sent is_instrumental=false and output_format=url: music-01 refused both.
    body = submit_body("minimax", _form("minimax", lyrics="##\nla la\n##", refer_voice="voice-1"))
    assert body["request"] == {"model": "music-01", "lyrics": "##\nla la\n##", "refer_voice": "voice-1"}
    _SUBMIT.validate_python(body)


@pytest.mark.parametrize("provider, fields", [
    ("udio", {"prompt": "a song"}),
    ("minimax", {"model": "music-2.6", "prompt": "calm piano", "is_instrumental": "on", "audio_setting.bitrate": "128000"}),
    ("suno", {"gpt_description_prompt": "a song about tea"}),
])
def test_each_provider_form_validates(provider: str, fields: dict[str, str]) -> None:
    body = _SUBMIT.validate_python(submit_body(provider, _form(provider, **fields)))
    if provider == "minimax":
        assert body.request.audio_setting.bitrate == 128000 and body.request.is_instrumental is True


def test_errors_go_next_to_the_field_they_name() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        _SUBMIT.validate_python(submit_body("udio", _form("udio", prompt="x", seed="-5")))
    by_field, rest = field_errors("udio", pydantic_errors(caught.value.errors()))
    assert list(by_field) == ["udio.seed"] and rest == []
