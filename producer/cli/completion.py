"""`songqueue completion bash|zsh|fish`: completion scripts generated from the parser itself,
so a new command or request flag completes without an edit here."""

from __future__ import annotations

import argparse

from producer.cli.parser_base import actions, subcommands

SHELLS = ("bash", "zsh", "fish")


def _words(parser: argparse.ArgumentParser) -> list[str]:
    """What may follow a (sub)command: its subcommands and its flags."""
    found = subcommands(parser)
    names = list(found[1]) if found else []
    return names + sorted(s for a in actions(parser) for s in a.option_strings if s.startswith("--"))


def _table(parser: argparse.ArgumentParser, path: str = "") -> dict[str, list[str]]:
    """{"", "submit", "playlist", "playlist run", ...: words} for every (sub)command."""
    table = {path: _words(parser)}
    found = subcommands(parser)
    for name, child in (found[1] if found else {}).items():
        table.update(_table(child, f"{path} {name}".strip()))
    return table


def _bash(table: dict[str, list[str]]) -> str:
    cases = "\n".join(f'    "{path}") words="{" ".join(words)}" ;;' for path, words in table.items() if path)
    return f"""_songqueue() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" word words i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${{COMP_WORDS[i]}}"
    [[ $word == -* ]] && continue
    case " ${{path:+$path }}$word" in
{chr(10).join(f'      " {p}") path="{p}" ;;' for p in table if p)}
    esac
  done
  case "$path" in
    "") words="{" ".join(table[""])}" ;;
{cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _songqueue songqueue"""


def _fish(table: dict[str, list[str]]) -> str:
    lines = ["complete -c songqueue -f"]
    for path, words in table.items():
        parts = path.split()
        condition = ("__fish_use_subcommand" if not parts else
                     " && ".join(f"__fish_seen_subcommand_from {p}" for p in parts))
        known = table.get(path, [])
        for word in words:
            option = f"-l {word[2:]}" if word.startswith("--") else f"-a {word}"
            if not word.startswith("--") and parts and f"{path} {word}" not in table and word not in known:
                continue
            lines.append(f"complete -c songqueue -n '{condition}' {option}")
    return "\n".join(lines)


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    table = _table(parser)
    if shell == "fish":
        return _fish(table)
    script = _bash(table)
    # zsh runs the bash script through its bash-completion emulation.
    return script if shell == "bash" else "autoload -U +X bashcompinit && bashcompinit\n" + script
