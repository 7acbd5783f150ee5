"""One poll chain per job: a poll message redelivered after it published its successor
does nothing.

Polling is a chain of `retry(countdown=...)` links. With acks_late, a worker killed after
`retry()` published the next link but before the running one was acked gets the running
one redelivered; that copy would publish a successor of its own, and two chains would
poll the same job under the same fencing token for the rest of its life.

So each link is named: before a link publishes its successor, it writes the successor's
name, under the job's token, to `{prefix}:polllink:{job_id}` and the successor carries it
(the `link` argument). A link whose name is not the one written there has been
succeeded already (or lost a race to another copy of itself) and drops itself. The first
link of a token's chain (sent by the submit or the watchdog) has no name; it runs unless
a successor was already named under its token. The notify hook's one-shot polls never
publish a successor and are not checked.
"""

from __future__ import annotations

import uuid

import redis

from producer.core.store import keys

# Refreshed by every link; a chain that has not moved for this long is over (its job
# timed out long before), and a missing key lets the next link through.
KEEP_SECONDS = 2 * 24 * 3600


def holds(client: redis.Redis, prefix: str, job_id: str, token: int, link: str) -> bool:
    """True when `link` is the job's live link under `token` (or the first one of its chain)."""
    raw = client.get(keys.poll_link(prefix, job_id))
    if raw is None:
        return True
    named_token, _, named = raw.decode().partition(":")
    if int(named_token) != token:
        return True  # a chain under another token: the record's token fences that one
    return named == link


def name_successor(client: redis.Redis, prefix: str, job_id: str, token: int) -> str:
    """Name the next link (written before it is published); returns its name."""
    link = uuid.uuid4().hex[:12]
    client.set(keys.poll_link(prefix, job_id), f"{token}:{link}", ex=KEEP_SECONDS)
    return link
