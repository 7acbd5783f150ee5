"""A key's daily budget (`songqueue keys create --daily-budget X`), enforced at POST /v1/jobs.

What a key spent today is the sum of the `cost` of the jobs it submitted today (UTC), read
from their records: the workers charge `cost` where they make the paid call, so there is
no second ledger to keep in step with them. A key records each job it submits in a set per
UTC day (KeyStore.add_day_job). At or over its budget, a submit is refused with 429 and a
Retry-After that reaches the next UTC day, when the budget is new.

A job's cost lands only once its paid call is made, so jobs still waiting count 0 at the
check: a key can overshoot by what its jobs in flight cost (bound that with
`--max-in-flight`). The provider budgets in the workers (workers/admission/budget.py)
reserve before each call and still hold across all keys.
"""

from __future__ import annotations

import math

from producer.api.problems import Problem
from producer.api.state import ApiState
from producer.models.job_record import JobRecord
from producer.store import keys, spend
from producer.store.api_keys import ApiKey


def spent_today(state: ApiState, key: ApiKey, day: str) -> float:
    job_ids = sorted(state.keys.day_jobs(key.id, day))
    if not job_ids:
        return 0.0
    # One round trip for all of them: a busy key's day may hold many jobs.
    pipe = state.queue.store.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.get(keys.job(state.queue.store.prefix, job_id))
    total = 0.0
    for raw in pipe.execute():
        if raw:
            total += JobRecord.model_validate_json(raw).cost
    return total


def check(state: ApiState, key: ApiKey) -> None:
    """429 when the key's jobs of today have cost its daily budget or more."""
    if key.daily_budget is None:
        return
    day = spend.utc_day()
    spent = spent_today(state, key, day)
    if spent >= key.daily_budget:
        wait = math.ceil(spend.seconds_to_next_day())
        raise Problem(429, f"key {key.id} ({key.name}): its daily budget is spent: {spent:g} of "
                           f"{key.daily_budget:g} on {day} (UTC); submit again after 00:00 UTC",
                      {"Retry-After": str(wait)})


def record(state: ApiState, key: ApiKey, job_id: str) -> None:
    if key.daily_budget is not None:
        state.keys.add_day_job(key.id, spend.utc_day(), job_id)
