"""One doctor line: a check's verdict, what it found, and how to fix it when it failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Line:
    check: str
    ok: bool
    detail: str
    fix: str = ""
    # Extra facts for --json (the settings in effect, the workers per queue, ...).
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(check: str, detail: str, **data: Any) -> Line:
    return Line(check, True, detail, data=data)


def failed(check: str, detail: str, fix: str, **data: Any) -> Line:
    return Line(check, False, detail, fix, data=data)


def render(lines: list[Line]) -> str:
    width = max((len(line.check) for line in lines), default=0)
    out = []
    for line in lines:
        out.append(f"{'ok  ' if line.ok else 'FAIL'}  {line.check:<{width}}  {line.detail}")
        if not line.ok and line.fix:
            out.append(f"{'':<{width + 6}}  fix: {line.fix}")
    passing = sum(line.ok for line in lines)
    out.append(f"{passing} of {len(lines)} checks pass")
    return "\n".join(out)


def mask_url(url: str) -> str:
    """A URL with its password (redis://:pw@host, amqp://user:pw@host) replaced by ****.

    A list of URLs joined by ';' (kombu's sentinel://h1;sentinel://h2 form) is masked part by part."""
    if ";" in url:
        return ";".join(mask_url(part) for part in url.split(";"))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:****@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
