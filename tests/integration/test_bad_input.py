"""Bad input through the CLI and the Python API: a clear error, nothing enqueued, nothing written."""

from __future__ import annotations

import pydantic
import pytest
import redis

from producer.cli import main as cli
from producer.core.models.udio import UdioRequest
from producer.core.models.validation_errors import field_errors
from producer.core.settings import get_settings
from producer.core.task_names import ALL_QUEUES
from tests.unit.models.test_validation import INVALID

pytestmark = pytest.mark.integration

# (argv after `submit`, what stderr must name, a word of the rule)
CLI_CASES: list[tuple[list[str], str, str]] = [
    (["--prompt", ""], "--prompt ''", "at least 1 character"),
    (["--prompt", "   "], "prompt", "blank"),
    (["--prompt", "p" * 5001], "prompt", "at most 5000"),
    (["--prompt", "x", "--lyrics", "l" * 20001], "--lyrics", "at most 20000"),
    (["--prompt", "x", "--negative-prompt", "n" * 5001], "--negative-prompt", "at most 5000"),
    (["--prompt", "x", "--lyrics-type", "custom"], "--lyrics-type 'custom'", "'instrumental'"),
    (["--prompt", "x", "--lyrics-type", "user"], "lyrics", "non-empty"),
    (["--prompt", "x", "--lyrics-type", "instrumental", "--lyrics", "la"], "lyrics", "must be empty"),
    (["--prompt", "x", "--model", "udio64-v1.5"], "--model 'udio64-v1.5'", "udio130-v1.5"),
    (["--prompt", "x", "--seed", "abc"], "--seed 'abc'", "valid integer"),
    (["--prompt", "x", "--seed", "-2"], "--seed '-2'", "greater than or equal to -1"),
    (["--prompt", "x", "--seed", "1.5"], "--seed '1.5'", "valid integer"),
    (["--prompt", "x", "--song-section-start", "1.5"], "--song-section-start", "less than or equal to 1"),
    (["--prompt", "x", "--song-section-start", "-0.1"], "--song-section-start", "greater than or equal to 0"),
    (["--prompt", "x", "--song-section-end", "2"], "--song-section-end", "less than or equal to 1"),
    (["--prompt", "x", "--song-section-start", "0.8", "--song-section-end", "0.2"], "--song-section-end", ">= song_section_start"),
    (["--prompt", "x", "--lyrics-placement-start", "0.9", "--lyrics-placement-end", "0.1"],
     "--lyrics-placement-end", ">= lyrics_placement_start"),
    (["--prompt", "x", "--lyrics-placement-end", "1.2"], "--lyrics-placement-end", "less than or equal to 1"),
    (["--prompt", "x", "--prompt-strength", "1.01"], "--prompt-strength", "less than or equal to 1"),
    (["--prompt", "x", "--prompt-strength", "nan"], "--prompt-strength", "finite"),
    (["--prompt", "x", "--clarity-strength", "-1"], "--clarity-strength", "greater than or equal to 0"),
    (["--prompt", "x", "--lyrics-strength", "2"], "--lyrics-strength", "less than or equal to 1"),
    (["--prompt", "x", "--generation-quality", "0.3"], "--generation-quality", "0.25"),
    (["--prompt", "x", "--generation-quality", "high"], "--generation-quality", "invalid"),
    (["--prompt", "x", "--mode", "precede"], "--extend/--extend-job", "required when config.mode is 'precede'"),
    (["--prompt", "x", "--mode", "continuation"], "--extend/--extend-job", "required"),
    (["--prompt", "x", "--mode", "sideways"], "--mode", "invalid choice"),
    (["--prompt", "x", "--extend", "not an id!"], "--extend 'not an id!'", "pattern"),
    (["--prompt", "x", "--extend", "abc", "--mode", "regular"], "--extend/--extend-job", "only allowed"),
    (["--prompt", "x", "--context-length", "0"], "--context-length", "greater than 0"),
    (["--prompt", "x", "--context-length", "abc"], "--context-length", "valid number"),
    (["--prompt", "x", "--lyrics-file", "/nonexistent/lyrics.txt"], "--lyrics-file", "cannot read"),
    (["--prompt", "x", "--provider", "sunno"], "--provider", "invalid choice"),
    (["--lyrics", "x"], "--prompt", "required"),
]


@pytest.fixture
def bare_stack(make_stack, monkeypatch):
    """A stack with no workers, its settings in this process's environment."""
    s = make_stack()
    for name, value in s.env.items():
        if name.startswith("SONGQUEUE_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield s
    get_settings.cache_clear()


def _nothing_written_or_sent(s) -> None:
    store = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    assert store.keys(s.env["SONGQUEUE_KEY_PREFIX"] + ":*") == []
    if s.env["SONGQUEUE_BROKER_URL"].startswith("redis://"):
        broker = redis.Redis.from_url(s.env["SONGQUEUE_BROKER_URL"])
        assert all(broker.llen(q) == 0 for q in ALL_QUEUES)


def test_every_request_field_has_a_refusal_case():
    """Checked against the model, not the table's own size: a field added to UdioRequest
    without a bad-input case here fails."""
    covered = {field.split(".")[0] for _, _, field, _ in INVALID}
    assert set(UdioRequest.model_fields) <= covered, set(UdioRequest.model_fields) - covered


def test_cli_refuses_bad_input_and_enqueues_nothing(bare_stack, capsys):
    for argv, names, rule in CLI_CASES:
        code = cli.main(["submit", *argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert names in err and rule in err, (argv, err)
    _nothing_written_or_sent(bare_stack)


def test_api_refuses_bad_input_and_enqueues_nothing(bare_stack):
    queue = bare_stack.queue()
    for case_id, data, field, rule in INVALID:
        with pytest.raises(pydantic.ValidationError) as caught:
            queue.submit(data)
        assert (field, ) == tuple(f for f, _ in field_errors(caught.value))[:1], case_id
        assert rule in " ".join(r for _, r in field_errors(caught.value)), case_id
    with pytest.raises(ValueError, match="provider"):
        queue.submit({"prompt": "x"}, provider="sunno")
    _nothing_written_or_sent(bare_stack)
