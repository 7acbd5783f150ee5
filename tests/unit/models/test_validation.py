"""UdioRequest against the upstream contract (§1, submit body), field by field, and the CLI's
mapping of flags onto it. Pure unit tests: no Redis, no broker, no network."""

from __future__ import annotations

import json
import math
from typing import Any

import pydantic
import pytest

from producer.cli import exit_codes, jobs
from producer.cli import main as cli
from producer.core.models.udio import UdioRequest
from producer.core.models.validation_errors import describe, field_errors

# The contract's table (upstream-contract.md §1, "Submit body"): every field and its default.
CONTRACT_DEFAULTS: dict[str, Any] = {
    "lyrics": "",
    "lyrics_type": "generate",
    "model_type": "udio32-v1.5",
    "negative_prompt": "",
    "seed": -1,
    "bypass_prompt_optimization": False,
    "song_section_start": 0,
    "song_section_end": 1,
    "lyrics_placement_start": 0,
    "lyrics_placement_end": 0.95,
    "prompt_strength": 0.5,
    "clarity_strength": 0.25,
    "lyrics_strength": 0.5,
    "generation_quality": 0.75,
    "config": {"mode": "regular", "context_length": 130},
}
UNIT_FIELDS = (
    "song_section_start", "song_section_end", "lyrics_placement_start", "lyrics_placement_end",
    "prompt_strength", "clarity_strength", "lyrics_strength",
)
SONG_ID = "db71404a-17d4-4fdf-a781-48381362d31b"  # a real song id from seed 001

# The request bodies of the vendor documents (seeds 000, 001, 004), `gen_params` only.
SEED_000_MOON = {
    "prompt": "a song about the moon", "lyrics": "", "lyrics_type": "generate",
    "bypass_prompt_optimization": False, "seed": -1, "song_section_start": 0,
    "prompt_strength": 0.5, "clarity_strength": 0.25, "lyrics_strength": 0.5,
    "generation_quality": 0.75, "negative_prompt": "", "model_type": "udio32-v1.5",
    "config": {"mode": "regular"},
}
SEED_001_MOTHER = {**SEED_000_MOON, "prompt": "mother", "song_section_start": 0.4}
SEED_001_USER_LYRICS = {
    "prompt": "rock, pop soul, electronic, ", "lyrics": "你的歌词", "lyrics_type": "user",
    "bypass_prompt_optimization": False, "seed": -1, "song_section_start": 0, "song_section_end": 1,
    "lyrics_placement_start": 0, "lyrics_placement_end": 0.95, "prompt_strength": 0.5,
    "clarity_strength": 0.25, "lyrics_strength": 0.5, "generation_quality": 0.75,
    "negative_prompt": "", "model_type": "udio130-v1.5", "config": {"mode": "regular"},
}
SEED_004_PRECEDE = {
    **SEED_000_MOON, "model_type": "udio130-v1.5",
    "config": {"mode": "precede", "context_length": 130,
               "source": {"source_type": "song", "song_id": "xxxx-xxxx-xxxx"}},
}


def _req(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a song about the moon", **fields}


# (id, input, fields expected in to_gen_params())
VALID: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("prompt-only-gets-defaults", _req(), CONTRACT_DEFAULTS),
    ("seed000-moon", SEED_000_MOON, {"prompt": "a song about the moon", "song_section_end": 1}),
    ("seed001-mother-section-0.4", SEED_001_MOTHER, {"song_section_start": 0.4}),
    ("seed001-user-lyrics-cjk", SEED_001_USER_LYRICS, {"lyrics": "你的歌词", "lyrics_type": "user",
                                                       "model_type": "udio130-v1.5"}),
    ("seed004-precede", SEED_004_PRECEDE, {"config": {"mode": "precede", "context_length": 130, "source": {
        "source_type": "song", "song_id": "xxxx-xxxx-xxxx"}}}),
    ("prompt-cjk", {"prompt": "大风大雨"}, {"prompt": "大风大雨"}),
    ("prompt-5000-chars", {"prompt": "p" * 5000}, {"prompt": "p" * 5000}),
    ("instrumental-empty-lyrics", _req(lyrics_type="instrumental"), {"lyrics_type": "instrumental", "lyrics": ""}),
    ("user-lyrics-verse-markers", _req(lyrics_type="user", lyrics="[Verse]\n夜燈微微閃爍心\n[Chorus]\nla"),
     {"lyrics": "[Verse]\n夜燈微微閃爍心\n[Chorus]\nla"}),
    ("generate-with-lyrics-hint", _req(lyrics="about rain"), {"lyrics": "about rain"}),
    ("model-udio130", _req(model_type="udio130-v1.5"), {"model_type": "udio130-v1.5"}),
    ("quality-0.25", _req(generation_quality=0.25), {"generation_quality": 0.25}),
    ("quality-0.5", _req(generation_quality=0.5), {"generation_quality": 0.5}),
    ("quality-1.0", _req(generation_quality=1.0), {"generation_quality": 1}),
    ("quality-int-1", _req(generation_quality=1), {"generation_quality": 1}),
    ("strengths-at-0", _req(prompt_strength=0, clarity_strength=0, lyrics_strength=0),
     {"prompt_strength": 0, "clarity_strength": 0, "lyrics_strength": 0}),
    ("strengths-at-1", _req(prompt_strength=1, clarity_strength=1, lyrics_strength=1),
     {"prompt_strength": 1, "clarity_strength": 1, "lyrics_strength": 1}),
    ("section-start-equals-end", _req(song_section_start=0.5, song_section_end=0.5),
     {"song_section_start": 0.5, "song_section_end": 0.5}),
    ("section-full-range", _req(song_section_start=0, song_section_end=1), {"song_section_end": 1}),
    ("placement-start-equals-end", _req(lyrics_placement_start=0.3, lyrics_placement_end=0.3),
     {"lyrics_placement_start": 0.3, "lyrics_placement_end": 0.3}),
    ("placement-0-to-1", _req(lyrics_placement_start=0, lyrics_placement_end=1), {"lyrics_placement_end": 1}),
    ("seed-0", _req(seed=0), {"seed": 0}),
    ("seed-largest", _req(seed=2**31 - 1), {"seed": 2**31 - 1}),
    ("bypass-true", _req(bypass_prompt_optimization=True), {"bypass_prompt_optimization": True}),
    ("negative-prompt", _req(negative_prompt="no drums"), {"negative_prompt": "no drums"}),
    ("config-regular-explicit", _req(config={"mode": "regular"}), {"config": {"mode": "regular", "context_length": 130}}),
    ("continuation-with-source", _req(config={"mode": "continuation", "source": {"song_id": SONG_ID}}),
     {"config": {"mode": "continuation", "context_length": 130, "source": {"source_type": "song", "song_id": SONG_ID}}}),
    ("context-length-600", _req(config={"mode": "precede", "context_length": 600, "source": {"song_id": "s1"}}),
     {"config": {"mode": "precede", "context_length": 600, "source": {"source_type": "song", "song_id": "s1"}}}),
    ("context-length-fraction", _req(config={"context_length": 0.5}), {"config": {"mode": "regular", "context_length": 0.5}}),
]

NAN, INF = float("nan"), float("inf")

# (id, input, field path that field_errors() must name, text the rule must contain)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    # prompt
    ("prompt-missing", {}, "prompt", "required"),
    ("prompt-empty", {"prompt": ""}, "prompt", "at least 1 character"),
    ("prompt-blank", {"prompt": " \t\n"}, "prompt", "blank"),
    ("prompt-int", {"prompt": 5}, "prompt", "valid string"),
    ("prompt-none", {"prompt": None}, "prompt", "valid string"),
    ("prompt-too-long", {"prompt": "p" * 5001}, "prompt", "at most 5000"),
    # lyrics / lyrics_type
    ("lyrics-none", _req(lyrics=None), "lyrics", "valid string"),
    ("lyrics-int", _req(lyrics=123), "lyrics", "valid string"),
    ("lyrics-type-unknown", _req(lyrics_type="custom"), "lyrics_type", "'instrumental'"),
    ("lyrics-type-uppercase", _req(lyrics_type="USER", lyrics="la"), "lyrics_type", "'user'"),
    ("user-lyrics-empty", _req(lyrics_type="user"), "lyrics", "non-empty when lyrics_type is 'user'"),
    ("user-lyrics-whitespace", _req(lyrics_type="user", lyrics="  \n "), "lyrics", "non-empty"),
    ("instrumental-with-lyrics", _req(lyrics_type="instrumental", lyrics="la la"), "lyrics",
     "empty when lyrics_type is 'instrumental'"),
    # model_type
    ("model-unknown", _req(model_type="udio64-v1.5"), "model_type", "'udio32-v1.5' or 'udio130-v1.5'"),
    ("model-no-version", _req(model_type="udio32"), "model_type", "udio130-v1.5"),
    ("model-none", _req(model_type=None), "model_type", "udio32-v1.5"),
    # negative_prompt, seed, bypass
    ("negative-prompt-int", _req(negative_prompt=1), "negative_prompt", "valid string"),
    ("seed-below-minus-1", _req(seed=-2), "seed", "greater than or equal to -1"),
    ("seed-fraction", _req(seed=1.5), "seed", "fractional"),
    ("seed-text", _req(seed="random"), "seed", "valid integer"),
    ("seed-none", _req(seed=None), "seed", "valid integer"),
    ("seed-over-int32", _req(seed=2**31), "seed", "less than or equal to 2147483647"),
    ("prompt-nul", {"prompt": "a\x00b"}, "prompt", "control characters"),
    ("bypass-text", _req(bypass_prompt_optimization="maybe"), "bypass_prompt_optimization", "valid boolean"),
    ("bypass-none", _req(bypass_prompt_optimization=None), "bypass_prompt_optimization", "valid boolean"),
    # every 0..1 number: just outside each edge, NaN, infinity, text
    *[(f"{name}-below-0", _req(**{name: -0.01}), name, "greater than or equal to 0") for name in UNIT_FIELDS],
    *[(f"{name}-above-1", _req(**{name: 1.01}), name, "less than or equal to 1") for name in UNIT_FIELDS],
    *[(f"{name}-nan", _req(**{name: NAN}), name, "finite number") for name in UNIT_FIELDS],
    ("prompt-strength-inf", _req(prompt_strength=INF), "prompt_strength", "finite number"),
    ("clarity-strength-text", _req(clarity_strength="high"), "clarity_strength", "valid number"),
    ("lyrics-strength-none", _req(lyrics_strength=None), "lyrics_strength", "valid number"),
    # generation_quality: an enum of numbers
    ("quality-0.3", _req(generation_quality=0.3), "generation_quality", "0.25, 0.5, 0.75 or 1"),
    ("quality-0", _req(generation_quality=0), "generation_quality", "0.25, 0.5, 0.75 or 1"),
    ("quality-2", _req(generation_quality=2), "generation_quality", "0.25, 0.5, 0.75 or 1"),
    ("quality-string", _req(generation_quality="0.75"), "generation_quality", "0.25, 0.5, 0.75 or 1"),
    ("quality-none", _req(generation_quality=None), "generation_quality", "0.25, 0.5, 0.75 or 1"),
    # cross-field: end >= start, for both pairs
    ("section-end-before-start", _req(song_section_start=0.6, song_section_end=0.5), "song_section_end",
     ">= song_section_start"),
    ("section-end-0-start-0.1", _req(song_section_start=0.1, song_section_end=0), "song_section_end",
     ">= song_section_start"),
    ("placement-start-after-default-end", _req(lyrics_placement_start=0.96), "lyrics_placement_end",
     ">= lyrics_placement_start"),
    ("placement-end-before-start", _req(lyrics_placement_start=0.5, lyrics_placement_end=0.4), "lyrics_placement_end",
     ">= lyrics_placement_start"),
    # config
    ("config-string", _req(config="regular"), "config", "valid dictionary"),
    ("config-none", _req(config=None), "config", "valid dictionary"),
    ("config-mode-unknown", _req(config={"mode": "extend"}), "config.mode", "'continuation'"),
    ("precede-without-source", _req(config={"mode": "precede"}), "config.source", "required when config.mode is 'precede'"),
    ("continuation-without-source", _req(config={"mode": "continuation"}), "config.source",
     "required when config.mode is 'continuation'"),
    ("regular-with-source", _req(config={"mode": "regular", "source": {"song_id": SONG_ID}}), "config.source",
     "only allowed when config.mode is 'precede' or 'continuation'"),
    ("default-mode-with-source", _req(config={"source": {"song_id": SONG_ID}}), "config.source", "only allowed"),
    ("source-type-not-song", _req(config={"mode": "precede", "source": {"source_type": "clip", "song_id": SONG_ID}}),
     "config.source.source_type", "'song'"),
    ("source-without-song-id", _req(config={"mode": "precede", "source": {"source_type": "song"}}),
     "config.source.song_id", "required"),
    ("source-song-id-empty", _req(config={"mode": "continuation", "source": {"song_id": ""}}),
     "config.source.song_id", "at least 1 character"),
    ("source-song-id-with-space", _req(config={"mode": "continuation", "source": {"song_id": "a b"}}),
     "config.source.song_id", "pattern"),
    ("source-song-id-placeholder-cjk", _req(config={"mode": "precede", "source": {"song_id": "续写ID"}}),
     "config.source.song_id", "pattern"),
    ("context-length-0", _req(config={"context_length": 0}), "config.context_length", "greater than 0"),
    ("context-length-negative", _req(config={"context_length": -5}), "config.context_length", "greater than 0"),
    ("context-length-601", _req(config={"context_length": 601}), "config.context_length", "less than or equal to 600"),
    ("context-length-nan", _req(config={"context_length": NAN}), "config.context_length", "finite number"),
    ("context-length-text", _req(config={"context_length": "long"}), "config.context_length", "valid number"),
    # unknown fields, at every level
    ("unknown-top-level", _req(notify_hook="https://example.com/hook"), "notify_hook", "unknown field"),
    ("whole-envelope-passed", _req(gen_params=SEED_000_MOON), "gen_params", "unknown field"),
    ("unknown-in-config", _req(config={"mode": "regular", "length": 30}), "config.length", "unknown field"),
    ("unknown-in-source", _req(config={"mode": "precede", "source": {"song_id": SONG_ID, "clip_id": "c"}}),
     "config.source.clip_id", "unknown field"),
]


def test_table_sizes() -> None:
    assert len(VALID) >= 20 and len(INVALID) >= 40
    assert len({case[0] for case in VALID}) == len(VALID)
    assert len({case[0] for case in INVALID}) == len(INVALID)


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid(data: dict[str, Any], expected: dict[str, Any]) -> None:
    params = UdioRequest.model_validate(data).to_gen_params()
    for name, value in expected.items():
        assert params[name] == value, name
    # What goes upstream is plain JSON and validates again to the same thing.
    assert UdioRequest.model_validate(json.loads(json.dumps(params))).to_gen_params() == params


@pytest.mark.parametrize(("data", "field", "rule"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid(data: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        UdioRequest.model_validate(data)
    pairs = field_errors(caught.value)
    assert [name for name, _ in pairs] == [field]
    assert rule in pairs[0][1]
    assert f"  {field}: " in describe(caught.value)


def test_gen_params_has_every_contract_field_with_contract_defaults() -> None:
    params = UdioRequest(prompt="a song about the moon").to_gen_params()
    assert params == {"prompt": "a song about the moon", **CONTRACT_DEFAULTS}
    assert set(params) == {"prompt", *CONTRACT_DEFAULTS}
    assert "source" not in params["config"]  # None is left out, not sent as null
    assert json.loads(json.dumps(params)) == params


def test_gen_params_keeps_what_the_vendor_examples_send() -> None:
    for example in (SEED_000_MOON, SEED_001_MOTHER, SEED_001_USER_LYRICS, SEED_004_PRECEDE):
        params = UdioRequest.model_validate(example).to_gen_params()
        for name, value in example.items():
            if name == "config":
                assert params["config"].items() >= value.items()
            else:
                assert params[name] == value, name


def test_nan_is_never_accepted_anywhere() -> None:
    for name in UNIT_FIELDS:
        with pytest.raises(pydantic.ValidationError):
            UdioRequest(prompt="x", **{name: math.nan})


def test_assignment_is_validated_including_cross_field_rules() -> None:
    request = UdioRequest(prompt="x")
    with pytest.raises(pydantic.ValidationError):
        request.prompt_strength = 1.5
    with pytest.raises(pydantic.ValidationError) as caught:
        request.lyrics_type = "user"
    assert field_errors(caught.value)[0][0] == "lyrics"


def test_field_errors_reports_every_broken_field() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        UdioRequest.model_validate({"prompt": "", "seed": "x", "extra": 1, "config": {"mode": "nope"}})
    fields = [name for name, _ in field_errors(caught.value)]
    assert sorted(fields) == ["config.mode", "extra", "prompt", "seed"]


# --- CLI -------------------------------------------------------------------------------------


class FakeQueue:
    """Stands in for SongQueue so a valid submit never needs Redis or a broker."""

    made: list[FakeQueue] = []

    def __init__(self) -> None:
        self.submitted: list[tuple[UdioRequest, str, str | None]] = []
        FakeQueue.made.append(self)

    def submit(self, request: UdioRequest, *, provider: str, idempotency_key: str | None,
               callback_url: str | None = None, callback_progress: bool = False, deadline: str | None = None,
               callback_events: list[str] | None = None) -> Any:
        self.submitted.append((request, provider, idempotency_key))
        return type("Handle", (), {"id": "job-1"})()


@pytest.fixture
def fake_queue(monkeypatch: pytest.MonkeyPatch) -> type[FakeQueue]:
    FakeQueue.made = []
    monkeypatch.setattr(jobs, "SongQueue", FakeQueue)
    return FakeQueue


BAD_CLI: list[tuple[str, list[str], str]] = [
    ("prompt-strength-1.5", ["--prompt", "x", "--prompt-strength", "1.5"], "--prompt-strength '1.5'"),
    ("clarity-negative", ["--prompt", "x", "--clarity-strength", "-0.01"], "--clarity-strength '-0.01'"),
    ("seed-not-a-number", ["--prompt", "x", "--seed", "abc"], "seed"),
    ("quality-0.3", ["--prompt", "x", "--generation-quality", "0.3"], "--generation-quality"),
    ("quality-not-a-number", ["--prompt", "x", "--generation-quality", "high"], "--generation-quality"),
    ("model-unknown", ["--prompt", "x", "--model", "udio64-v1.5"], "--model 'udio64-v1.5'"),
    ("lyrics-type-unknown", ["--prompt", "x", "--lyrics-type", "rap"], "--lyrics-type 'rap'"),
    ("user-without-lyrics", ["--prompt", "x", "--lyrics-type", "user"], "lyrics: must be non-empty"),
    ("instrumental-with-lyrics", ["--prompt", "x", "--lyrics-type", "instrumental", "--lyrics", "la"], "lyrics"),
    ("blank-prompt", ["--prompt", "   "], "prompt: must not be blank"),
    ("section-end-before-start", ["--prompt", "x", "--song-section-start", "0.7", "--song-section-end", "0.2"],
     "--song-section-end"),
    ("precede-without-extend", ["--prompt", "x", "--mode", "precede"], "--extend/--extend-job"),
    ("extend-with-regular", ["--prompt", "x", "--extend", SONG_ID, "--mode", "regular"], "--extend/--extend-job"),
    ("extend-bad-id", ["--prompt", "x", "--extend", "a/b c"], "--extend"),
    ("context-length-0", ["--prompt", "x", "--context-length", "0"], "--context-length"),
    ("lyrics-file-missing", ["--prompt", "x", "--lyrics-file", "/nonexistent/lyrics.txt"], "--lyrics-file"),
    ("lyrics-and-lyrics-file", ["--prompt", "x", "--lyrics", "a", "--lyrics-file", "f.txt"], "--lyrics-file"),
    ("prompt-flag-missing", [], "--prompt"),
    ("mode-not-a-choice", ["--prompt", "x", "--mode", "sideways"], "--mode"),
]


@pytest.mark.parametrize(("args", "named"), [c[1:] for c in BAD_CLI], ids=[c[0] for c in BAD_CLI])
def test_cli_bad_input_exits_2_naming_the_field(
    args: list[str], named: str, fake_queue: type[FakeQueue], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["submit", *args]) == exit_codes.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert named in captured.err
    assert captured.out == ""
    assert fake_queue.made == []  # refused before any queue was even opened


def test_cli_lyrics_file_not_utf8(tmp_path, fake_queue: type[FakeQueue], capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lyrics.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    assert cli.main(["submit", "--prompt", "x", "--lyrics-type", "user", "--lyrics-file", str(path)]) == 2
    assert "--lyrics-file" in capsys.readouterr().err
    assert fake_queue.made == []


# A bare `songqueue` prints the help and exits 0 (tests/unit/cli/test_cli_manners.py).
@pytest.mark.parametrize("argv", [["frobnicate"], ["status"], ["list", "--state", "DONE"]],
                         ids=["unknown-command", "status-without-id", "list-bad-state"])
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == exit_codes.EXIT_BAD_INPUT
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "mentions"), [
    (["--help"], "submit"),
    (["submit", "--help"], "--generation-quality"),
    (["list", "--help"], "--state"),
], ids=["top", "submit", "list"])
def test_cli_help_exits_0(argv: list[str], mentions: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == exit_codes.EXIT_OK
    assert mentions in capsys.readouterr().out


def test_cli_maps_every_flag_onto_gen_params(fake_queue: type[FakeQueue], capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "submit", "--prompt", "rock, pop soul", "--lyrics", "[Verse]\n你的歌词", "--lyrics-type", "user",
        "--model", "udio130-v1.5", "--negative-prompt", "no drums", "--seed", "42",
        "--bypass-prompt-optimization", "--song-section-start", "0.1", "--song-section-end", "0.9",
        "--lyrics-placement-start", "0.2", "--lyrics-placement-end", "0.8", "--prompt-strength", "0.6",
        "--clarity-strength", "0.3", "--lyrics-strength", "0.7", "--generation-quality", "1",
        "--extend", SONG_ID, "--mode", "precede", "--context-length", "60", "--idempotency-key", "k-1",
    ]
    assert cli.main(argv) == exit_codes.EXIT_OK
    assert capsys.readouterr().out.strip() == "job-1"
    [queue] = fake_queue.made
    [(request, provider, key)] = queue.submitted
    assert (provider, key) == ("udio", "k-1")
    assert request.to_gen_params() == {
        "prompt": "rock, pop soul", "lyrics": "[Verse]\n你的歌词", "lyrics_type": "user",
        "model_type": "udio130-v1.5", "negative_prompt": "no drums", "seed": 42,
        "bypass_prompt_optimization": True, "song_section_start": 0.1, "song_section_end": 0.9,
        "lyrics_placement_start": 0.2, "lyrics_placement_end": 0.8, "prompt_strength": 0.6,
        "clarity_strength": 0.3, "lyrics_strength": 0.7, "generation_quality": 1,
        "config": {"mode": "precede", "context_length": 60,
                   "source": {"source_type": "song", "song_id": SONG_ID}},
    }


@pytest.mark.parametrize("quality", ["0.25", "0.5", "0.75", "1", "1.0"])
def test_cli_generation_quality_accepts_every_allowed_value(quality: str, fake_queue: type[FakeQueue]) -> None:
    assert cli.main(["submit", "--prompt", "x", "--generation-quality", quality]) == exit_codes.EXIT_OK
    [(request, _, _)] = fake_queue.made[0].submitted
    assert request.generation_quality == float(quality)


def test_cli_defaults_and_extend_alone_means_continuation(fake_queue: type[FakeQueue]) -> None:
    assert cli.main(["submit", "--prompt", "x"]) == exit_codes.EXIT_OK
    assert cli.main(["submit", "--prompt", "x", "--extend", SONG_ID]) == exit_codes.EXIT_OK
    first, second = (q.submitted[0][0].to_gen_params() for q in fake_queue.made)
    assert first == {"prompt": "x", **CONTRACT_DEFAULTS}
    assert second["config"] == {"mode": "continuation", "context_length": 130,
                                "source": {"source_type": "song", "song_id": SONG_ID}}


def test_cli_reads_lyrics_file_as_utf8(tmp_path, fake_queue: type[FakeQueue]) -> None:
    path = tmp_path / "lyrics.txt"
    path.write_text("[Verse]\n夜燈微微閃爍心\n", encoding="utf-8")
    assert cli.main(["submit", "--prompt", "x", "--lyrics-type", "user", "--lyrics-file", str(path)]) == 0
    [(request, _, _)] = fake_queue.made[0].submitted
    assert request.lyrics == "[Verse]\n夜燈微微閃爍心\n"
