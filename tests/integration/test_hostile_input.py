"""Hostile input through the CLI and the Python API: refused naming the field and the rule,
nothing written, nothing enqueued, no request to any callback address (a canary counts)."""

from __future__ import annotations

import pydantic
import pytest

from producer.cli import main as cli
from producer.core.models.validation_errors import field_errors
from producer.core.settings import get_settings
from tests.integration.test_bad_input import _nothing_written_or_sent
from tests.support.http_fixture import LocalServer

pytestmark = pytest.mark.integration

CONTROL = "control characters other than newline and tab"
PRIVATE = "private networks are refused"


def cli_cases(port: int) -> list[tuple[list[str], str, str]]:
    """(argv after `submit`, the field stderr must name, words of the rule)."""
    x = ["--prompt", "x"]
    return [
        (["--prompt", "a\x00b"], "prompt", CONTROL),
        (["--prompt", "\x1b[31mred\x1b[0m"], "prompt", CONTROL),
        (["--prompt", "abc\u202eevil"], "prompt", CONTROL),
        (["--prompt", "x\u2066y"], "prompt", CONTROL),
        (["--prompt", "\u0085x"], "prompt", CONTROL),
        (["--prompt", "x\ry"], "prompt", CONTROL),
        ([*x, "--lyrics", "la\x07la"], "lyrics", CONTROL),
        ([*x, "--negative-prompt", "n\x7f"], "--negative-prompt", CONTROL),
        ([*x, "--seed", "2147483648"], "seed", "less than or equal to 2147483647"),
        ([*x, "--seed", str(10**30)], "seed", "less than or equal to 2147483647"),
        ([*x, "--seed", "-2147483649"], "seed", "greater than or equal to -1"),
        ([*x, "--context-length", "601"], "--context-length", "less than or equal to 600"),
        ([*x, "--context-length", "inf"], "--context-length", "finite"),
        ([*x, "--prompt-strength", "1e308"], "--prompt-strength", "less than or equal to 1"),
        ([*x, "--idempotency-key", "k" * 201], "--idempotency-key", "at most 200"),
        ([*x, "--idempotency-key", "a\x00"], "--idempotency-key", CONTROL),
        ([*x, "--idempotency-key", "   "], "--idempotency-key", "blank"),
        ([*x, "--idempotency-key", "a\nb"], "--idempotency-key", "one line"),
        ([*x, "--callback-url", "http://169.254.169.254/latest/"], "--callback-url", PRIVATE),
        ([*x, "--callback-url", f"http://2130706433:{port}/"], "--callback-url", PRIVATE),
        ([*x, "--callback-url", f"http://a.test\\@127.0.0.1:{port}/"], "--callback-url", "backslash"),
        ([*x, "--callback-url", f"http://[::1]:{port}/"], "--callback-url", PRIVATE),
        ([*x, "--callback-url", f"gopher://127.0.0.1:{port}/"], "--callback-url", "http:// or https://"),
        ([*x, "--callback-url", f"http://u:p@127.0.0.1:{port}/"], "--callback-url", "user:password@"),
    ]


def api_cases(port: int) -> list[tuple[dict, str, str]]:
    """(keyword arguments of SongQueue.submit, the field the error must name, words of the rule)."""
    ok = {"prompt": "x"}
    return [
        ({"request": {"prompt": "a\x00"}}, "prompt", CONTROL),
        ({"request": {"prompt": "x", "seed": 2**31}}, "seed", "less than or equal to 2147483647"),
        ({"request": {"prompt": "x", "seed": 10**30}}, "seed", "less than or equal to 2147483647"),
        ({"request": {"prompt": "x", "config": {"context_length": 1e9}}}, "config.context_length", "less than"),
        ({"request": {"prompt": "x", "lyrics": "\x1b]0;title\x07"}}, "lyrics", CONTROL),
        ({"request": {"prompt": "x", "negative_prompt": "\u202d"}}, "negative_prompt", CONTROL),
        ({"request": {"prompt": "x", "prompt_strength": float("inf")}}, "prompt_strength", "finite"),
        ({"request": ok, "idempotency_key": "k" * 201}, "idempotency_key", "at most 200"),
        ({"request": ok, "idempotency_key": "a\x1b"}, "idempotency_key", CONTROL),
        ({"request": ok, "album": "a" * 201}, "album", "at most 200"),
        ({"request": ok, "album": "\u202eevil"}, "album", CONTROL),
        ({"request": ok, "album": ""}, "album", "blank"),
        ({"request": ok, "batch_id": "b" * 201}, "batch_id", "at most 200"),
        ({"request": ok, "batch_id": "x\x00"}, "batch_id", CONTROL),
        ({"request": ok, "callback_url": f"http://10.0.0.7:{port}/"}, "callback_url", PRIVATE),
        ({"request": ok, "callback_url": f"http://0x7f.1:{port}/"}, "callback_url", PRIVATE),
        ({"request": ok, "callback_url": f"http://[::ffff:127.0.0.1]:{port}/"}, "callback_url", PRIVATE),
        ({"request": ok, "callback_url": f"http://127.0.0.1:{port}/"}, "callback_url", PRIVATE),
        ({"request": ok, "callback_url": "file:///etc/passwd"}, "callback_url", "http:// or https://"),
        ({"request": ok, "callback_url": "https://example.com/" + "a" * 3000}, "callback_url", "over the limit"),
        ({"request": {"lyrics": "la\x00", "refer_voice": "v"}, "provider": "minimax"}, "lyrics", CONTROL),
        ({"request": {"lyrics": "la", "refer_voice": "v\x00"}, "provider": "minimax"}, "refer_voice", "pattern"),
    ]


@pytest.fixture
def guarded_stack(make_stack, monkeypatch):
    """No workers; private networks refused (the default outside tests); settings in this process."""
    s = make_stack(allow_private_networks="false")
    for name, value in s.env.items():
        if name.startswith("SONGQUEUE_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield s
    get_settings.cache_clear()


@pytest.fixture
def canary():
    with LocalServer() as server:
        yield server


def test_hostile_cli_input_is_refused_naming_field_and_rule(guarded_stack, canary, capsys):
    cases = cli_cases(canary.port)
    for argv, field, rule in cases:
        code = cli.main(["submit", *argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert field in err and rule in err, (argv, err)
        assert "\x1b" not in err and "\x00" not in err, argv
    _nothing_written_or_sent(guarded_stack)
    assert canary.requests == []


def test_hostile_api_input_is_refused_naming_field_and_rule(guarded_stack, canary):
    queue = guarded_stack.queue()
    cases = api_cases(canary.port)
    for kwargs, field, rule in cases:
        with pytest.raises(ValueError) as caught:
            queue.submit(**kwargs)
        if isinstance(caught.value, pydantic.ValidationError):
            named = field_errors(caught.value)
            assert named[0][0] == field and rule in named[0][1], (kwargs, named)
        else:
            assert str(caught.value).startswith(f"{field}: ") and rule in str(caught.value), (kwargs, caught.value)
    _nothing_written_or_sent(guarded_stack)
    assert canary.requests == []
    assert len(cases) + len(cli_cases(canary.port)) >= 40
