"""The Redis Cluster form of the job store's URL.

    redis-cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/0]

Any nodes of the cluster (the client asks one for the slot map and finds the rest), joined
by ','. A cluster has only database 0, so the path may name 0 or nothing. The broker cannot
take it: Celery has no Redis Cluster transport.

Pure parsing, no redis import: the settings validate with it at load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

SCHEME = "redis-cluster://"
DEFAULT_PORT = 6379
FORM = "redis-cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/0]"
# A hash tag: the part between the first '{' and the next '}', when it is not empty
# (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
_HASH_TAG = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class ClusterAddress:
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None


def is_cluster(url: str) -> bool:
    return url.startswith(SCHEME)


def hash_tag(prefix: str) -> str | None:
    """The hash tag Redis Cluster hashes every `prefix:...` key by, or None when it has none.

    Only a tag in the prefix counts: Redis uses the first '{' of a key, and every job-store
    key starts with the prefix."""
    brace = prefix.find("{")
    if brace < 0:
        return None
    match = _HASH_TAG.match(prefix, brace)
    return match.group(1) if match else None


def parse(url: str) -> ClusterAddress:
    """The seed nodes and credentials of `url`; ValueError naming the rule broken (never the password)."""
    if not is_cluster(url):
        raise ValueError(f"must be {FORM}")
    rest = url[len(SCHEME):]
    credentials: tuple[str | None, str | None] = (None, None)
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        user, colon, password = userinfo.partition(":")
        credentials = (unquote(user) or None, unquote(password) if colon else None)
    hosts, slash, path = rest.partition("/")
    if slash and path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0: the path after '/' may be /0 or nothing ({FORM})")
    nodes: list[tuple[str, int]] = []
    for index, part in enumerate((p.strip() for p in hosts.split(",")), start=1):
        if not part:
            raise ValueError(f"node {index} is empty ({FORM})")
        if part.startswith("["):  # [IPv6]:PORT
            host, _, tail = part[1:].partition("]")
            colon, port_text = tail[:1], tail[1:]
        else:
            host, colon, port_text = part.partition(":")
        if not colon:
            port = DEFAULT_PORT
        elif not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"node {index}: the port must be a number from 1 to 65535 ({FORM})")
        else:
            port = int(port_text)
        if not host:
            raise ValueError(f"node {index} names no host ({FORM})")
        nodes.append((host, port))
    return ClusterAddress(tuple(nodes), *credentials)
