"""The `songqueue` parser's manners: did-you-mean for unknown commands and flags, help that
shows every default, and value types that name their rule and echo what they got.

argparse stays (docs/cli.md says why): the request flags are generated from the request
models' fields at run time, which is a loop of `add_argument` calls here.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn


def actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """A parser's actions: argparse has no public accessor, and completion and did-you-mean need them."""
    return list(parser._actions)  # noqa: SLF001


def subcommands(parser: argparse.ArgumentParser) -> tuple[str, dict[str, argparse.ArgumentParser]] | None:
    """(dest, {name: parser}) of a parser's subcommands, or None."""
    for action in actions(parser):
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 - see actions()
            return action.dest, dict(action.choices)
    return None


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)'")


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


# A usage longer than this many lines is replaced by a pointer to --help in error messages.
SHORT_USAGE_LINES = 4


class HelpFormatter(argparse.HelpFormatter):
    """Appends `default: X` to a flag's help when it has a default worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text
        if shown and (action.option_strings or action.nargs in ("?", "*")) and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """The mistake first (with a did-you-mean), then a usage short enough to see it: a
        command whose full usage runs past a few lines points at its --help instead."""
        match = _INVALID_CHOICE.search(message)
        if match:
            found = subcommands(self)
            message += did_you_mean(match.group(1), list(found[1]) if found else [])
        self.exit(2, f"{self.prog}: error: {message}\n{self.short_usage()}")

    def short_usage(self) -> str:
        usage = self.format_usage()
        if usage.count("\n") <= SHORT_USAGE_LINES:
            return usage
        return f"usage: {self.prog} [options]  (`{self.prog} --help` lists them)\n"

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        # Unknown flags are reported by the (sub)command they were given to, with its own usage.
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            target = self._innermost(parsed)
            flags = [s for a in actions(target) for s in a.option_strings]
            told = [f"{e}{did_you_mean(e.split('=', 1)[0], flags)}" if e.startswith("-") else e for e in extras]
            target.error(f"unrecognized arguments: {' '.join(told)}")
        return parsed

    def _innermost(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self
        while True:
            found = subcommands(parser)
            name = getattr(parsed, found[0], None) if found else None
            if found is None or name not in found[1]:
                return parser
            parser = found[1][name]


def whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    """An int type for argparse within [least, most]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < least or (most is not None and value > most):
            span = f"{least}..{most}" if most is not None else f">= {least}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {text!r}")
        return value
    parse.__name__ = "whole number"
    return parse


def seconds(text: str) -> float:
    """A non-negative, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text!r}")
    return value


def upper_choice(text: str) -> str:
    """State names in any case: `--state succeeded` means SUCCEEDED."""
    return text.upper()
