"""JSON from callers we do not trust, parsed within bounds: a size cap and a nesting cap.

`json.loads` recurses once per nesting level: a 200 KB body of `[[[[...` raised
RecursionError (a 500 and a traceback per call). `depth` counts the nesting in one pass
over the bytes, outside strings, before anything is parsed, so no body reaches the parser
nested deeper than `max_depth`.
"""

from __future__ import annotations

import json
from typing import Any

_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class TooLarge(ValueError):
    """The body is over the size cap (a 413)."""


class TooDeep(ValueError):
    """The body nests deeper than the cap (a 422)."""


def depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in `body` (strings skipped)."""
    deepest = level = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            level += 1
            deepest = max(deepest, level)
        elif byte in _CLOSE:
            level -= 1
    return deepest


def loads(body: bytes, max_bytes: int, max_depth: int) -> Any:
    """The parsed body; TooLarge, TooDeep, or ValueError for a body that is not JSON."""
    if len(body) > max_bytes:
        raise TooLarge(f"the body is over {max_bytes} bytes")
    if depth(body) > max_depth:
        raise TooDeep(f"the JSON nests deeper than {max_depth} levels")
    return json.loads(body)
