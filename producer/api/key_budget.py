"""A key's daily budget at the door: POST /v1/jobs is refused once the key has spent it today.

The budget itself is held by the workers (workers/admission/key_limits.py): each paid call
reserves its price in the key's spend counter for the UTC day before it is made, so the
key's jobs together cannot overshoot it, however many are in flight. This check only spares
a caller a job that could not run today: at or over the budget, a submit is refused with 429
and a Retry-After that reaches the next UTC day, when the budget is new. Jobs accepted
before the budget ran out wait for the next day or fail, by SONGQUEUE_BUDGET_POLICY, with
the reason on the job.
"""

from __future__ import annotations

import math

from producer.api.problems import Problem
from producer.api.state import ApiState
from producer.core.store import keys, spend
from producer.core.store.api_keys import ApiKey


def spent_today(state: ApiState, key: ApiKey) -> float:
    """What the key's paid calls of today (UTC) cost, calls under way included."""
    raw = state.queue.store.redis.get(keys.key_spend(state.queue.store.prefix, key.id, spend.utc_day()))
    return int(raw or 0) / spend.MICROS


def check(state: ApiState, key: ApiKey) -> None:
    """429 when the key's paid calls of today have cost its daily budget or more."""
    if key.daily_budget is None:
        return
    spent = spent_today(state, key)
    if spent >= key.daily_budget:
        wait = math.ceil(spend.seconds_to_next_day())
        raise Problem(429, f"key {key.id} ({key.name}): its daily budget is spent: {spent:g} of "
                           f"{key.daily_budget:g} on {spend.utc_day()} (UTC); submit again after 00:00 UTC",
                      {"Retry-After": str(wait)})
