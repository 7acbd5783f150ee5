"""The Sentinel form of a Redis URL, spelt as kombu spells it, for the broker and the job store alike.

    sentinel://[USER:PASSWORD@]HOST[:PORT][/DB];sentinel://HOST[:PORT][/DB];...

One part per sentinel (port 26379 when left out). kombu reads the credentials and the
database from the first part only, so we do too, and refuse a later part that says
otherwise rather than let the broker and the job store disagree about it. The master's
name is not in the URL (kombu takes it from `broker_transport_options`):
SONGQUEUE_SENTINEL_MASTER names it for both.

Pure parsing, no redis import: the settings validate with it at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEME = "sentinel://"
DEFAULT_PORT = 26379
FORM = "sentinel://[USER:PASSWORD@]HOST[:PORT][/DB] with one part per sentinel, joined by ';'"


@dataclass(frozen=True)
class SentinelAddress:
    nodes: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None


def is_sentinel(url: str) -> bool:
    return url.startswith(SCHEME)


def parse(url: str) -> SentinelAddress:
    """The sentinels, database and credentials of `url`; ValueError naming the rule broken."""
    parts = [part.strip() for part in url.split(";") if part.strip()]
    if not parts:
        raise ValueError(f"must be {FORM}")
    nodes: list[tuple[str, int]] = []
    first_db: int | None = None
    credentials: tuple[str | None, str | None] = (None, None)
    for index, part in enumerate(parts, start=1):
        if not is_sentinel(part):
            # Only the scheme is quoted back: the part may hold a password.
            raise ValueError(f"part {index} must start with {SCHEME} (every part is one sentinel: {FORM})")
        split = urlsplit(part)
        try:
            host, port = split.hostname, split.port
        except ValueError:
            raise ValueError(f"part {index}: the port must be a number from 1 to 65535 ({FORM})") from None
        if not host:
            raise ValueError(f"part {index} names no host ({FORM})")
        db = _db(split.path, index)
        if index == 1:
            first_db = db if db is not None else 0
            credentials = (unquote(split.username) if split.username else None,
                           unquote(split.password) if split.password is not None else None)
        elif db is not None and db != first_db:
            raise ValueError(f"part {index} names database {db} but part 1 uses {first_db}: "
                             "every sentinel serves the same master, so give the database once, on part 1")
        nodes.append((host, port or DEFAULT_PORT))
    return SentinelAddress(tuple(nodes), first_db or 0, *credentials)


def _db(path: str, index: int) -> int | None:
    text = path.strip("/")
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"part {index}: the database after '/' must be a number, e.g. /0 ({FORM})")
    return int(text)
