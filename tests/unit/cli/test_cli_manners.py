"""The command line explains itself: version, help, did-you-mean, validated values, completion.

Nothing here reaches Redis: each case is refused (or answered) by the parser itself.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import get_args

import pytest

from producer.cli import main as cli
from producer.cli.completion import completion_script
from producer.core.models.providers import PROVIDERS


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_and_help_on_a_bare_call(capsys):
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.startswith("songqueue ")
    code, out, _ = _run(capsys)
    assert code == 0 and "usage: songqueue" in out and "doctor" in out


@pytest.mark.parametrize(("argv", "said"), [
    (["sumbit"], "did you mean submit?"),
    (["submit", "--promt", "x"], "unrecognized arguments: --promt (did you mean --prompt?)"),
    (["list", "--limt", "3"], "did you mean --limit?"),
    (["list", "--limit", "-3"], "argument --limit: must be 1..10000, got '-3'"),
    (["list", "--state", "sideways"], "argument --state: invalid choice: 'SIDEWAYS'"),
    (["submit", "--prompt", "x", "--wait", "--timeout", "-1"], "argument --timeout: must be >= 0 seconds, got '-1'"),
    (["wait", "j", "--timeout", "nan"], "argument --timeout: must be >= 0 seconds, got 'nan'"),
    (["metrics", "--port", "70000"], "argument --port: must be 0..65535, got '70000'"),
])
def test_refusals_name_the_flag_echo_the_value_and_suggest(capsys, argv, said):
    code, _, err = _run(capsys, *argv)
    assert code == 2 and said in err, err
    # The usage shown is the subcommand's own, not the top level's.
    if argv[0] != "sumbit":
        assert f"usage: songqueue {argv[0]}" in err


def test_state_names_in_any_case(capsys):
    parsed = cli._parser().parse_args(["list", "--state", "succeeded"])
    assert parsed.state == "SUCCEEDED"


def test_request_flags_show_choices_range_and_default(capsys):
    _, out, _ = _run(capsys, "submit", "--help")
    flat = " ".join(out.split())
    assert "choices: generate, user, instrumental; default 'generate'" in flat
    assert "choices: udio32-v1.5, udio130-v1.5; default 'udio32-v1.5'" in flat
    assert ">= 0.0; <= 1.0; default 0.5" in flat  # --prompt-strength
    assert "--provider {minimax,suno,udio}" in flat and "(default: udio)" in flat


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_name_every_command_and_flag(capsys, shell):
    code, script, _ = _run(capsys, "completion", shell)
    assert code == 0
    for word in ("submit", "doctor", "playlist", "prompt", "timeline"):
        assert word in script
    checker = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}[shell]
    if shutil.which(checker[0]) is None:
        pytest.skip(f"{checker[0]} is not installed: the {shell} script's syntax is not checked")
    done = subprocess.run([*checker], input=script, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_bash_completion_completes_commands_and_flags():
    probe = completion_script(cli._parser(), "bash") + """
COMP_WORDS=(songqueue sub); COMP_CWORD=1; _songqueue; echo "${COMPREPLY[@]}"
COMP_WORDS=(songqueue submit --pro); COMP_CWORD=2; _songqueue; echo "${COMPREPLY[@]}"
COMP_WORDS=(songqueue playlist r); COMP_CWORD=2; _songqueue; echo "${COMPREPLY[@]}"
"""
    lines = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines == ["submit", "--prompt --prompt-strength --provider", "run"]


def test_submit_help_shows_real_defaults_and_every_model(capsys):
    code, out, _ = _run(capsys, "submit", "--help")
    assert code == 0
    assert "PydanticUndefined" not in out and "default None" not in out
    flat = " ".join(out.split()).replace("- ", "-")  # argparse wraps long help lines, some at hyphens
    for spec in PROVIDERS.values():
        field = spec.request_model.model_fields[spec.model_field]
        for model in get_args(field.annotation):
            assert model in flat, f"--model help misses {spec.name}'s {model}"


def test_a_mistyped_flag_is_told_first_with_a_short_usage(capsys):
    code, _, err = _run(capsys, "submit", "--promt", "x")
    lines = err.splitlines()
    assert code == 2 and "did you mean --prompt?" in lines[0]
    assert len(lines) <= 3 and "songqueue submit --help" in err, err


def test_every_server_binds_loopback_unless_told():
    """Flower too: it shows every task's arguments, so it is never open on every interface by default."""
    parser = cli._parser()
    for argv in (["flower"], ["api"], ["metrics"], ["hooks"]):
        parsed = vars(parser.parse_args(argv))
        assert parsed.get("address", parsed.get("host")) == "127.0.0.1", argv
