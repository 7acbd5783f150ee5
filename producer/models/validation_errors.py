"""Turn a pydantic ValidationError into lines that name the field and the rule."""

from __future__ import annotations

import pydantic

_PREFIX = "Value error, "


def field_errors(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    """(field path, rule) pairs; cross-field rules name their field in the message."""
    pairs = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix(_PREFIX)
        location = ".".join(str(part) for part in error["loc"])
        if ": " in message and error["type"] == "value_error":
            location, message = message.split(": ", 1)
        elif error["type"] == "extra_forbidden":
            message = "unknown field (not part of the request)"
        pairs.append((location or "request", message))
    return pairs


def describe(exc: pydantic.ValidationError) -> str:
    return "\n".join(f"  {field}: {rule}" for field, rule in field_errors(exc))
