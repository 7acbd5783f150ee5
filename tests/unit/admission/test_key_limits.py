"""An API key's own limits, held by the workers' admission step (workers/admission/key_limits.py).

On a real Redis: the key's in-flight set follows the job store's state changes, a job over
its key's limit waits with the reason, and the key's budget is reserved per call so the
jobs in flight of one key cannot together overshoot it.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from producer.core.models.job_record import JobRecord, JobState
from producer.core.settings import Settings
from producer.core.store import keys, spend
from producer.core.store.api_keys import ApiKey, KeyStore
from producer.core.store.job_store import JobStore
from workers.admission import gate


@pytest.fixture
def store(redis_url: str, key_prefix: str) -> JobStore:
    return JobStore(redis.Redis.from_url(redis_url), key_prefix)


def _settings(store: JobStore, **overrides: object) -> Settings:
    return Settings(redis_url="redis://unused", key_prefix=store.prefix, **overrides)


def _key(store: JobStore, **limits: object) -> ApiKey:
    key, _ = KeyStore(store.redis, store.prefix).create("svc", "alpha", ["submit"], **limits)
    return key


def _queued(store: JobStore, key: ApiKey | None) -> JobRecord:
    record, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={},
                                       tenant="alpha", api_key=key.id if key else None))
    return record


def _key_in_flight(store: JobStore, key: ApiKey) -> int:
    return int(store.redis.zcard(keys.key_in_flight(store.prefix, key.id)))


def test_a_keys_in_flight_limit_holds_its_jobs_and_follows_state_changes(store):
    settings = _settings(store)  # no provider limit: only the key's holds
    key = _key(store, max_in_flight=1)
    first, second = _queued(store, key), _queued(store, key)
    unkeyed = _queued(store, None)

    assert isinstance(gate.admit_submit(store.redis, settings, first, 0.0), gate.Admitted)
    held = gate.admit_submit(store.redis, settings, second, 0.0)
    assert isinstance(held, gate.Wait) and held.limit == "key_in_flight"
    assert f"API key {key.id} (svc) in-flight limit: 1" in held.reason and "--max-in-flight" in held.reason
    assert isinstance(gate.admit_submit(store.redis, settings, unkeyed, 0.0), gate.Admitted), "other jobs are not held"
    assert _key_in_flight(store, key) == 1

    # The job store keeps the key's set as it keeps the provider's: in flight keeps the place,
    # leaving the upstream frees it, in the same transaction as the state.
    store.apply(first.id, {JobState.QUEUED}, to=JobState.SUBMITTING)
    store.apply(first.id, {JobState.SUBMITTING}, to=JobState.SUBMITTED)
    assert _key_in_flight(store, key) == 1
    assert isinstance(gate.admit_submit(store.redis, settings, second, 0.0), gate.Wait)
    store.apply(first.id, {JobState.SUBMITTED}, to=JobState.DOWNLOADING)
    assert _key_in_flight(store, key) == 0
    assert isinstance(gate.admit_submit(store.redis, settings, second, 0.0), gate.Admitted)


def test_a_provider_limit_wait_takes_no_place_of_the_keys_and_a_key_wait_none_of_the_providers(store):
    settings = _settings(store, udio_max_in_flight=1)
    key = _key(store, max_in_flight=1)
    running = _queued(store, None)
    assert isinstance(gate.admit_submit(store.redis, settings, running, 0.0), gate.Admitted)
    held = gate.admit_submit(store.redis, settings, _queued(store, key), 0.0)
    assert isinstance(held, gate.Wait) and held.limit == "in_flight"
    assert _key_in_flight(store, key) == 0

    store.apply(running.id, {JobState.QUEUED}, to=JobState.CANCELLED)
    busy = _queued(store, key)
    assert isinstance(gate.admit_submit(store.redis, settings, busy, 0.0), gate.Admitted)
    store.apply(busy.id, {JobState.QUEUED}, to=JobState.SUBMITTING)
    wide = _settings(store, udio_max_in_flight=5)
    waiting = _queued(store, key)
    assert isinstance(gate.admit_submit(store.redis, wide, waiting, 0.0), gate.Wait)
    assert int(store.redis.zscore(keys.in_flight(store.prefix, "udio"), waiting.id) or 0) == 0, \
        "the provider place taken before the key said wait is given back"


def test_a_keys_budget_is_reserved_per_call_so_jobs_in_flight_cannot_overshoot_it(store):
    settings = _settings(store, udio_price_per_call=0.5, budget_policy="fail")
    key = _key(store, daily_budget=1.0)
    jobs = [_queued(store, key) for _ in range(3)]

    # Three jobs admitted before any has been charged: only two calls fit the budget.
    outcomes = [gate.admit_submit(store.redis, settings, job, 0.5) for job in jobs]
    assert [type(o).__name__ for o in outcomes] == ["Admitted", "Admitted", "OverBudget"]
    refused = outcomes[2]
    assert isinstance(refused, gate.OverBudget)
    assert f"API key {key.id} (svc)'s daily budget is spent: 1 of 1" in refused.message()
    assert "songqueue keys create --daily-budget" in refused.message()
    day_key = keys.key_spend(store.prefix, key.id, spend.utc_day())
    assert int(store.redis.get(day_key)) == spend.to_micros(1.0)
    # The provider's counter holds what the key's calls reserved, nothing for the refused one.
    assert spend.spent(store.redis, store.prefix, "udio") == pytest.approx(1.0)

    # A call the upstream refused gives back both reservations.
    first = outcomes[0]
    assert isinstance(first, gate.Admitted) and len(first.reservations) == 2
    gate.settle(store.redis, first.reservations, billed=False)
    assert int(store.redis.get(day_key)) == spend.to_micros(0.5)
    assert spend.spent(store.redis, store.prefix, "udio") == pytest.approx(0.5)

    waiting = gate.admit_submit(store.redis, settings.model_copy(update={"budget_policy": "wait"}), jobs[2], 0.75)
    assert isinstance(waiting, gate.Wait) and waiting.limit == "budget" and f"API key {key.id}" in waiting.reason
    assert spend.spent(store.redis, store.prefix, "udio") == pytest.approx(0.5), "the provider's share went back"
