"""Every problem of a playlist file at once, each naming its key, with a did-you-mean.

pydantic stops before the cross-field rules (templates, the sample run) when a key is
already wrong, so a file with three mistakes would take three tries to fix. `all_problems`
validates again without the keys already found wrong, until nothing new turns up.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel

from producer.core.models.validation_errors import field_errors

PLACEHOLDERS = ("date", "time", "datetime", "index", "count", "name")
# Passes over one file: each can only drop keys, and a file has a handful of them.
_MAX_PASSES = 4
# A model-level rule that finds several problems joins its "key: rule" lines with this.
JOINED = "\n"


class DefinitionError(ValueError):
    """A playlist file that cannot be used: each problem names the key and the rule."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {key}: {rule}" for key, rule in problems))


def did_you_mean(word: str, known: Iterable[str], shown: Callable[[str], str] = str) -> str:
    """" (did you mean X?)" when one known word is close to `word`, else ""."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {shown(close[0])}?)" if close else ""


def split_joined(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Undo JOINED: "k1: r1\\nk2: r2" arrives as (k1, "r1\\nk2: r2")."""
    out: list[tuple[str, str]] = []
    for key, rule in pairs:
        first, *rest = rule.split(JOINED)
        out.append((key, first))
        out.extend(tuple(line.split(": ", 1)) if ": " in line else (key, line) for line in rest)  # type: ignore[misc]
    return out


def all_problems(validate: Callable[[dict[str, Any]], Any],
                 to_pairs: Callable[[pydantic.ValidationError], list[tuple[str, str]]],
                 data: dict[str, Any], known_keys: Iterable[str]) -> tuple[Any, list[tuple[str, str]]]:
    """(the model, []) or (None, every problem found), unknown keys with a did-you-mean."""
    known = list(known_keys)
    problems: list[tuple[str, str]] = []
    dropped: set[str] = set()
    for _ in range(_MAX_PASSES):
        try:
            model = validate({k: v for k, v in data.items() if k not in dropped})
        except pydantic.ValidationError as exc:
            found = split_joined(to_pairs(exc))
        else:
            if not problems:
                return model, []
            break
        new = [(k, r) for k, r in found if (k, r) not in problems
               and not (k.split(".")[0].split("[")[0] in dropped and r == "required")]
        if not new:
            break
        problems.extend(new)
        wrong = {k.split(".")[0].split("[")[0] for k, _ in new} & set(data)
        if not wrong - dropped:
            break  # nothing more to take away: what is left is about the file as a whole
        dropped |= wrong
    return None, [(k, r + did_you_mean(k, known) if r == "unknown key" else r) for k, r in problems]


def request_problems(exc: pydantic.ValidationError, request_model: type[BaseModel], slot: int, text: str,
                      model_key: str) -> list[str]:
    """A sample request's errors as "key: rule" lines naming the definition's keys."""
    lines = []
    for key, rule in field_errors(exc):
        head = key.split(".")[0]
        if head == text:
            lines.append(f"prompts[{slot}]: {rule}")
        elif head == model_key:
            lines.append(f"model: {rule}")
        else:
            hint = did_you_mean(head, request_model.model_fields) if key not in request_model.model_fields else ""
            lines.append(f"request.{key}: {rule}{hint}")
    return lines


def template_problem(template: str) -> str | None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"not a valid template ({exc}); write {{{{ and }}}} for literal braces"
    for field in fields:
        if field not in PLACEHOLDERS:
            hint = did_you_mean(field, PLACEHOLDERS, lambda p: "{" + p + "}")
            return (f"unknown placeholder {{{field}}}{hint} (known: "
                    f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
    try:
        template.format(date="", time="", datetime="", index=1, count=1, name="")
    except (ValueError, TypeError) as exc:
        return f"not a valid template: {exc}"
    return None
