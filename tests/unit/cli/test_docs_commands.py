"""Every `songqueue` command and flag the docs show exists in the CLI's parser."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from producer.cli.main import _parser
from sandbox.server import build_parser as sandbox_parser

ROOT = Path(__file__).resolve().parents[3]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# Code spans that start with "songqueue " but are not commands: ID3 tag texts (docs/architecture.md).
NOT_COMMANDS = {"songqueue job {id}", "songqueue job id", "songqueue (PROVIDER MODEL)"}
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_SPAN = re.compile(r"`(songqueue\s[^`]*)`")
_FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")
# Where a shell line stops being this command: a comment, a pipe into another program, `;`, `&&`, `)`.
_END = re.compile(r"\s#|\s\|\s+(?!-)|;|&&|\)\"?$|\)\s")


def _commands(text: str) -> list[str]:
    prose = _FENCE.sub("", text)
    found = [span for span in _SPAN.findall(prose) if " ".join(span.split()) not in NOT_COMMANDS]
    # A command shown without its program name, flags and all: `status --timeline`, `keys create --name N`.
    commands = _subparsers(_parser())
    found += [f"songqueue {span}" for span in re.findall(r"`([^`]+)`", prose)
              if span.split()[0] in commands and _FLAG.search(span)]
    for block in _FENCE.findall(text):
        current: list[str] = []
        for line in block.splitlines()[1:-1]:
            if current and line[:1].isspace() and line.strip():  # a synopsis's continuation line
                current.append(line)
                continue
            if current:
                found.append(" ".join(current))
                current = []
            start = line.find("songqueue ")
            head = line[:start].strip()
            if start >= 0 and head in ("", "$", 'eval "$('):
                current = [line[start:]]
        if current:
            found.append(" ".join(current))
    return [" ".join(_END.split(command.replace("\\\n", " "))[0].split()) for command in found]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - the parser's own table
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _problems(command: str) -> list[str]:
    parser: argparse.ArgumentParser = _parser()
    path = []
    for word in command.split()[1:]:
        word = word.strip("[]()")
        choices = _subparsers(parser)
        if not choices or word.startswith("-"):
            break
        if word not in choices:
            return [f"{command!r}: no command {' '.join([*path, word])!r}"]
        path.append(word)
        parser = sandbox_parser() if path == ["sandbox"] else choices[word]
    known = {flag for action in parser._actions for flag in action.option_strings}  # noqa: SLF001
    return [f"{command!r}: `songqueue {' '.join(path)}` has no flag {flag}"
            for flag in _FLAG.findall(command) if flag not in known]


def test_the_extractor_reads_synopses_spans_and_shell_lines() -> None:
    text = ("Run `songqueue status JOB_ID --json` or:\n\n```\n$ songqueue submit --prompt TEXT\n"
            "                 [--wait | --json]   # and so on\n"
            'eval "$(songqueue completion bash)"\nsongqueue list | head -n 3\n```\n')
    assert _commands(text) == ["songqueue status JOB_ID --json",
                               "songqueue submit --prompt TEXT [--wait | --json]",
                               "songqueue completion bash", "songqueue list"]
    assert _problems("songqueue submit --promt x") == ["'songqueue submit --promt x': `songqueue submit` has no flag --promt"]
    assert _problems("songqueue playlist runs F") == ["'songqueue playlist runs F': no command 'playlist runs'"]


def test_every_command_is_shown_in_the_docs() -> None:
    shown = {tuple(command.split()[1:3]) for page in PAGES for command in _commands(page.read_text(encoding="utf-8"))}
    shown |= {words[:1] for words in shown}
    missing = []
    for name, parser in _subparsers(_parser()).items():
        nested = _subparsers(parser)
        missing += [f"songqueue {name} {sub}" for sub in nested if (name, sub) not in shown]
        if (name,) not in shown:
            missing.append(f"songqueue {name}")
    assert not missing, missing


def test_every_command_and_flag_in_the_docs_exists() -> None:
    problems = [f"{page.relative_to(ROOT)}: {problem}"
                for page in PAGES for command in _commands(page.read_text(encoding="utf-8"))
                for problem in _problems(command)]
    assert not problems, "\n".join(problems)
