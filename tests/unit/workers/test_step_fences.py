"""One poll chain per job: a link is live only while its name is the one written for its token."""

from __future__ import annotations

import redis

from workers.steps import step


def test_a_link_succeeded_by_another_drops_itself(redis_client: redis.Redis, key_prefix: str) -> None:
    first = ""  # the first link of a token's chain has no name
    assert step.holds(redis_client, key_prefix, "j1", 3, first)

    second = step.name_successor(redis_client, key_prefix, "j1", 3)
    assert not step.holds(redis_client, key_prefix, "j1", 3, first), "redelivered after its retry"
    assert step.holds(redis_client, key_prefix, "j1", 3, second)

    # Two copies of one link both name a successor: the last one named is the chain.
    lost = step.name_successor(redis_client, key_prefix, "j1", 3)
    won = step.name_successor(redis_client, key_prefix, "j1", 3)
    assert not step.holds(redis_client, key_prefix, "j1", 3, lost)
    assert step.holds(redis_client, key_prefix, "j1", 3, won)
    assert not step.holds(redis_client, key_prefix, "j1", 3, second)

    # A new token (the watchdog's new chain) starts with an unnamed first link; the old
    # chain is fenced by the record's token, not here.
    assert step.holds(redis_client, key_prefix, "j1", 4, first)
    assert step.holds(redis_client, key_prefix, "j2", 3, first), "jobs are apart"
