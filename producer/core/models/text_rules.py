"""Control characters: refused in what callers send, stripped from what upstreams said.

Input (prompts, lyrics, album, keys...): C0/C1 control characters other than newline and
tab, and the invisible bidi controls that reorder displayed text (Trojan Source), are
refused with the field and the rule. Output (an upstream's error text or titles, printed
by the CLI, stored in `job.error`, sent in callbacks): ANSI escape sequences and every
control character are removed, whitespace runs become one space, and the text is bounded.
"""

from __future__ import annotations

import re
import unicodedata

# Bidi embeddings, overrides, isolates and marks: they make text display in another order.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS


def control_rule(value: str) -> str | None:
    """Why `value` may not be stored (naming the first offending character), or None."""
    for char in value:
        if char not in "\n\t" and _is_control(char):
            return (f"must not contain control characters other than newline and tab "
                    f"(found U+{ord(char):04X} {unicodedata.name(char, 'control')})")
    return None


def clean_text(text: str, limit: int = 300) -> str:
    """`text` safe to print on a terminal or send on: no escapes or controls, one line, at most `limit` characters."""
    text = _ANSI.sub("", text)
    text = "".join(" " if char in "\n\t\r" else char for char in text if char in "\n\t\r" or not _is_control(char))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def check_label(field: str, value: str | None, max_chars: int) -> None:
    """A short caller-given string we store (idempotency key, album, batch id): bounded, printable; ValueError naming `field`."""
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be a string")
    if not value.strip():
        raise ValueError(f"{field}: must not be blank")
    if len(value) > max_chars:
        raise ValueError(f"{field}: at most {max_chars} characters, got {len(value)}")
    rule = control_rule(value) or ("must be one line" if "\n" in value or "\t" in value else None)
    if rule:
        raise ValueError(f"{field}: {rule}")
