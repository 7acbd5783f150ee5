"""Turn a pydantic ValidationError into lines that name the field and the rule.

The one formatter of pydantic errors: requests (CLI, client) and playlist definition files
(`producer.core.playlists.definition`) both read their errors through `field_errors`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pydantic

_PREFIX = "Value error, "


@dataclass(frozen=True)
class Wording:
    """How one kind of input names its parts in an error."""

    unknown: str = "unknown field (not part of the request)"
    missing: str | None = None  # None: pydantic's own "Field required"
    whole: str = "request"  # the location of an error about the input as a whole
    # A "key: rule" message names its key: from any validator (requests, whose field
    # validators name their field), or only from a model-level one (whose location is empty).
    named_by_model_only: bool = False


REQUEST = Wording()


def field_errors(exc: pydantic.ValidationError, wording: Wording = REQUEST) -> list[tuple[str, str]]:
    """(field path, rule) pairs; cross-field rules name their field in the message."""
    pairs = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix(_PREFIX)
        location = ".".join(str(part) for part in error["loc"])
        named = error["type"] == "value_error" and ": " in message
        if named and not (wording.named_by_model_only and location):
            location, message = message.split(": ", 1)
        elif error["type"] == "extra_forbidden":
            message = wording.unknown
        elif error["type"] == "missing" and wording.missing is not None:
            message = wording.missing
        pairs.append((location or wording.whole, message))
    return pairs


def describe(exc: pydantic.ValidationError) -> str:
    return "\n".join(f"  {field}: {rule}" for field, rule in field_errors(exc))
