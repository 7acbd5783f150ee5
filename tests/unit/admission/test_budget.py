"""The budget guard: a daily budget per provider, reserved in Redis before each paid call."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import stack

from producer.core.models.job_record import JobRecord, JobState
from producer.core.settings import Settings
from producer.core.store import keys, spend
from producer.core.store.job_store import JobStore
from workers.admission import budget, gate


def _settings(prefix: str, **overrides: object) -> Settings:
    return Settings(redis_url="redis://unused", key_prefix=prefix, **overrides)


def test_concurrent_reservations_never_overshoot(redis_client, key_prefix):
    settings = _settings(key_prefix, udio_daily_budget=10.0, udio_price_per_call=0.7)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: budget.reserve(redis_client, settings, "udio", 0.7, job_id="j1", version=0), range(40)))
    granted = [r for r in results if isinstance(r, budget.Reservation)]
    refused = [r for r in results if isinstance(r, budget.OverBudget)]
    assert len(granted) == 14 and len(refused) == 26  # 14 x 0.7 = 9.8; a 15th would make 10.5
    assert spend.spent(redis_client, key_prefix, "udio") == pytest.approx(9.8)
    assert "9.8 of 10" in refused[0].message() and "SONGQUEUE_UDIO_DAILY_BUDGET" in refused[0].message()

    gate.settle(redis_client, (granted[0],), billed=False)  # a refused call gives its reservation back
    assert isinstance(budget.reserve(redis_client, settings, "udio", 0.7, job_id="j1", version=0), budget.Reservation)
    assert spend.spent(redis_client, key_prefix, "udio") == pytest.approx(9.8)
    assert redis_client.ttl(keys.spend(key_prefix, "udio", spend.utc_day())) > 7 * 24 * 3600


def test_without_a_budget_spend_is_still_counted(redis_client, key_prefix):
    settings = _settings(key_prefix)
    assert isinstance(budget.reserve(redis_client, settings, "minimax", 2.5, job_id="j1", version=0), budget.Reservation)
    assert budget.reserve(redis_client, settings, "minimax", 0.0, job_id="j1", version=0) is None, "a free call reserves nothing"
    assert spend.spent(redis_client, key_prefix, "minimax") == 2.5


def test_a_reservation_is_committed_by_the_intent_or_given_back_once(redis_client, key_prefix):
    """Pending from reserve to the intent's write, which commits it in the same atomic step;
    one whose intent can no longer be written (its job moved past the version it was made
    on: the worker died between) is given back by the watchdog, exactly once."""
    store = JobStore(redis_client, key_prefix)
    settings = _settings(key_prefix, udio_daily_budget=10.0, udio_price_per_call=1.0)
    pending = keys.reservations(key_prefix)

    def job() -> JobRecord:
        return store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={}))[0]

    def reserve(record: JobRecord) -> budget.Reservation:
        reserved = budget.reserve(redis_client, settings, "udio", 1.0, job_id=record.id, version=record.version)
        assert isinstance(reserved, budget.Reservation)
        return reserved

    committed_job, stranded_job, live_job = job(), job(), job()
    committed, stranded, live = reserve(committed_job), reserve(stranded_job), reserve(live_job)
    assert redis_client.hlen(pending) == 3 and spend.spent(redis_client, key_prefix, "udio") == 3.0

    store.apply(committed_job.id, {JobState.QUEUED}, to=JobState.SUBMITTING, version=committed_job.version,
                also=lambda w: w.hdel(committed.pending, committed.id))  # the intent
    store.apply(stranded_job.id, {JobState.QUEUED}, mutate=lambda r: setattr(r, "token", r.token + 1))  # a resend
    assert budget.return_stranded(redis_client, store) == 1
    assert spend.spent(redis_client, key_prefix, "udio") == 2.0
    assert [k.decode() for k in redis_client.hkeys(pending)] == [live.id], "the live one may still be committed"

    gate.settle(redis_client, (stranded,), billed=False, committed=False)  # its run, had it lived on
    assert spend.spent(redis_client, key_prefix, "udio") == 2.0, "never given back twice"
    gate.settle(redis_client, (committed,), billed=True)
    assert spend.spent(redis_client, key_prefix, "udio") == 2.0, "a billed call keeps its price"


@pytest.mark.integration
def test_fail_policy_fails_a_submit_over_budget_before_the_paid_call(make_stack, sandbox):
    s = make_stack(udio_price_per_call="1", udio_daily_budget="1.5", budget_policy="fail")
    s.start_worker(concurrency=1)
    tag = uuid.uuid4().hex[:8]
    first = s.cli("submit", "--prompt", f"budget ok {tag}", "--wait", "--timeout", "60")
    assert first.returncode == 0, first.stderr
    over = s.cli("submit", "--prompt", f"budget over {tag}", "--wait", "--timeout", "60", "--json")

    assert over.returncode == 1, over.stderr
    view = json.loads(over.stdout)
    assert view["state"] == "FAILED" and view["error"]["code"] == "budget_exceeded"
    assert "udio's daily budget is spent: 1 of 1.5" in view["error"]["message"]
    submits = sandbox.stats()["submits_by_prompt"]
    assert submits[f"budget ok {tag}"] == 1 and f"budget over {tag}" not in submits
    stats = json.loads(s.cli("stats", "--json").stdout)
    assert stats["providers"]["udio"]["spent_today"] == 1.0 and stats["providers"]["udio"]["daily_budget"] == 1.5
    assert stats["jobs"]["SUCCEEDED"] == 1 and stats["jobs"]["FAILED"] == 1


@pytest.mark.integration
def test_wait_policy_holds_the_job_without_submitting(make_stack, sandbox):
    s = make_stack(udio_price_per_call="1", udio_daily_budget="0.5", budget_policy="wait", budget_wait="0.3")
    s.start_worker(concurrency=1)
    queue = s.queue()
    prompt = f"budget wait {uuid.uuid4().hex[:8]}"
    job = queue.submit({"prompt": prompt}).id
    waits = keys.metric(queue.store.prefix, "limit_waits")
    # Several rounds of waiting by countdown, each one refused again.
    stack.wait_until(lambda: int(queue.store.redis.hget(waits, "udio|budget") or 0) >= 3, 30, "three budget waits")

    record = queue.status(job)
    assert record.state == JobState.QUEUED and record.attempts.get("submit") is None
    assert "udio daily budget: 0 of 0.5 spent" in record.waiting_for
    shown = s.cli("status", job)
    assert "waiting for: udio daily budget" in shown.stdout, shown.stdout
    assert json.loads(s.cli("status", job, "--json").stdout)["waiting_for"] == record.waiting_for
    assert prompt not in sandbox.stats()["submits_by_prompt"]
    cancelled = queue.cancel(job)
    assert cancelled.state == JobState.CANCELLED and cancelled.waiting_for is None
    assert redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"]).get(
        keys.spend(queue.store.prefix, "udio", spend.utc_day())) is None, "nothing was reserved"
