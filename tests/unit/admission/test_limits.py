"""Shared limits in Redis: upstream tasks in flight, submit and poll rates (workers/admission/limits.py).

The scripts are tested on a real Redis; the in-flight limit also end to end, with two
real workers racing for one place.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import stack

from producer.core.models.job_record import JobRecord, JobState
from producer.core.settings import Settings
from producer.core.store import keys, spend
from producer.core.store.job_store import JobStore
from workers.admission import gate, limits


@pytest.fixture
def store(redis_url: str, key_prefix: str) -> JobStore:
    return JobStore(redis.Redis.from_url(redis_url), key_prefix)


def _settings(store: JobStore, **overrides: object) -> Settings:
    return Settings(redis_url="redis://unused", key_prefix=store.prefix, **overrides)


def _in_flight(store: JobStore) -> int:
    """What `songqueue stats` shows: the size of the set the job store keeps."""
    return int(store.redis.zcard(keys.in_flight(store.prefix, "udio")))


def _queued(store: JobStore) -> JobRecord:
    record, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={}))
    return record


def test_in_flight_admits_up_to_the_limit_and_follows_state_changes(store):
    settings = _settings(store, udio_max_in_flight=2)
    a, b, c = (_queued(store) for _ in range(3))
    assert limits.admit_in_flight(store.redis, settings, a.id, "udio") is None
    assert limits.admit_in_flight(store.redis, settings, a.id, "udio") is None, "admitted twice counts once"
    assert limits.admit_in_flight(store.redis, settings, b.id, "udio") is None
    wait = limits.admit_in_flight(store.redis, settings, c.id, "udio")
    assert wait is not None and wait.limit == "in_flight" and "SONGQUEUE_UDIO_MAX_IN_FLIGHT" in wait.reason
    assert _in_flight(store) == 2

    # The job store keeps the set: going in flight keeps the place, ending frees it.
    store.apply(a.id, {JobState.QUEUED}, to=JobState.SUBMITTING)
    store.apply(a.id, {JobState.SUBMITTING}, to=JobState.SUBMITTED)
    store.apply(a.id, {JobState.SUBMITTED}, to=JobState.GENERATING)
    assert _in_flight(store) == 2
    store.apply(a.id, {JobState.GENERATING}, to=JobState.DOWNLOADING)
    assert limits.admit_in_flight(store.redis, settings, c.id, "udio") is None
    # A job cancelled while admitted but not yet submitted frees its place too.
    store.apply(b.id, {JobState.QUEUED}, to=JobState.CANCELLED)
    assert set(store.redis.zrange(keys.in_flight(store.prefix, "udio"), 0, -1)) == {c.id.encode()}


def test_a_job_that_moved_on_is_never_admitted(store):
    """A cancel between the submit's read and its admission must not leave a place taken."""
    settings = _settings(store, udio_max_in_flight=1)
    job = _queued(store)
    store.apply(job.id, {JobState.QUEUED}, to=JobState.CANCELLED)
    with pytest.raises(limits.JobMovedOn):
        limits.admit_in_flight(store.redis, settings, job.id, "udio")
    assert _in_flight(store) == 0


def test_release_gives_back_only_a_place_not_yet_used(store):
    settings = _settings(store, udio_max_in_flight=1)
    waiting, submitted = _queued(store), _queued(store)
    limits.admit_in_flight(store.redis, settings, waiting.id, "udio")
    limits.release_in_flight(store.redis, settings, waiting.id, "udio")
    assert _in_flight(store) == 0
    limits.admit_in_flight(store.redis, settings, submitted.id, "udio")
    store.apply(submitted.id, {JobState.QUEUED}, to=JobState.SUBMITTING)
    limits.release_in_flight(store.redis, settings, submitted.id, "udio")  # a late, stale release
    assert _in_flight(store) == 1


def test_many_workers_racing_never_overfill(store):
    settings = _settings(store, udio_max_in_flight=3)
    jobs = [_queued(store) for _ in range(40)]
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda j: limits.admit_in_flight(store.redis, settings, j.id, "udio"), jobs))
    assert sum(w is None for w in waits) == 3
    assert _in_flight(store) == 3


def test_token_bucket_paces_calls_across_clients(store, redis_url):
    settings = _settings(store, udio_submit_rate=4.0)
    other = redis.Redis.from_url(redis_url)  # a second worker's connection shares the bucket
    taken = [limits.take_token(client, settings, "udio", "submit") for client in (store.redis, other) * 2]
    assert taken == [None] * 4, "a burst of one second's worth"
    # The bucket refills while this runs, so how long the fifth call must wait depends on the
    # machine's speed; what cannot vary: a call finds the bucket empty within a few more, and
    # its wait is never more than one token's time (1/rate, plus at most 50% jitter).
    waits = (limits.take_token(client, settings, "udio", "submit") for client in (store.redis, other) * 5)
    wait = next((w for w in waits if w is not None), None)
    assert wait is not None and wait.limit == "submit_rate" and 0 < wait.seconds <= 0.25 * 1.5
    stack.wait_until(lambda: limits.take_token(other, settings, "udio", "submit") is None, 2, "a token after 1/rate")
    assert limits.take_token(store.redis, settings, "udio", "poll") is None, "no poll rate set: unlimited"



def test_admission_outcomes_and_the_budget_policy(store):
    """One step: limits, then budget; a job held back by a later check keeps no place in flight."""
    spent = keys.spend(store.prefix, "udio", spend.utc_day())
    settings = _settings(store, udio_max_in_flight=1, udio_daily_budget=1.0, udio_price_per_call=1.0,
                         budget_policy="fail")
    over = _queued(store)
    store.redis.set(spent, spend.to_micros(0.8))
    refused = gate.admit_submit(store.redis, settings, over, 0.5)
    assert isinstance(refused, gate.OverBudget) and "daily budget is spent" in refused.message()
    assert _in_flight(store) == 0, "the place is given back"
    waiting = gate.admit_submit(store.redis, settings.model_copy(update={"budget_policy": "wait"}), over, 0.5)
    assert isinstance(waiting, gate.Wait) and waiting.limit == "budget" and _in_flight(store) == 0

    admitted = gate.admit_submit(store.redis, settings, over, 0.2)
    assert isinstance(admitted, gate.Admitted) and _in_flight(store) == 1
    assert spend.spent(store.redis, store.prefix, "udio") == pytest.approx(1.0)
    full = gate.admit_submit(store.redis, settings, _queued(store), 0.0)
    assert isinstance(full, gate.Wait) and full.limit == "in_flight"

    gate.settle(store.redis, admitted.reservations, billed=True)
    assert spend.spent(store.redis, store.prefix, "udio") == pytest.approx(1.0), "a billed call keeps its price"
    gate.settle(store.redis, admitted.reservations, billed=False)
    assert spend.spent(store.redis, store.prefix, "udio") == pytest.approx(0.8), "an unbilled one gives it back"
    store.apply(over.id, {JobState.QUEUED}, to=JobState.CANCELLED)
    assert isinstance(gate.admit_submit(store.redis, settings, over, 0.2), gate.MovedOn)


def test_the_scripts_take_state_names_from_their_arguments(store, monkeypatch):
    settings = _settings(store, udio_max_in_flight=1)
    job = _queued(store)
    store.apply(job.id, {JobState.QUEUED}, to=JobState.SUBMITTING)
    store.apply(job.id, {JobState.SUBMITTING}, to=JobState.SUBMITTED)
    with pytest.raises(limits.JobMovedOn):  # SUBMITTED is not among ADMISSIBLE_STATES
        limits.admit_in_flight(store.redis, settings, job.id, "udio")
    assert _in_flight(store) == 1, "the job store keeps a SUBMITTED job in flight"
    limits.release_in_flight(store.redis, settings, job.id, "udio")
    assert _in_flight(store) == 1, "an IN_FLIGHT_STATES job keeps its place"
    monkeypatch.setattr(limits, "ADMISSIBLE_STATES", frozenset({JobState.SUBMITTED}))
    assert limits.admit_in_flight(store.redis, settings, job.id, "udio") is None, "the names come from Python"

@pytest.mark.integration
def test_two_workers_keep_one_upstream_task_in_flight(make_stack, sandbox):
    s = make_stack(udio_max_in_flight="1", limit_wait="0.3")
    s.start_worker(concurrency=2)
    s.start_worker(concurrency=2)
    queue = s.queue()
    tag = uuid.uuid4().hex[:8]
    prompts = [f"limit {tag} {i} sandbox:gen_time=6" for i in range(3)]
    ids = [queue.submit({"prompt": p}).id for p in prompts]

    # One runs, the others wait, and `status` says why. Each upstream task takes 6 s, so the
    # others wait for about 12 s: room for the CLI's process start on a loaded machine. A job
    # may still be admitted between the check and the CLI's answer, so ask again.
    def status_of_a_waiting_job() -> str | None:
        waiting = next((i for i in ids if queue.status(i).waiting_for), None)
        shown = s.cli("status", waiting) if waiting else None
        return shown.stdout if shown and shown.returncode == 0 and "waiting for:" in shown.stdout else None

    shown = stack.wait_until(status_of_a_waiting_job, 40, "`status` of a job waiting for the in-flight limit")
    assert "waiting for: udio in-flight limit: 1 upstream task(s) at once" in shown, shown

    records = [queue.wait(i, timeout=90) for i in ids]
    assert [r.state for r in records] == [JobState.SUCCEEDED] * 3
    assert all(r.waiting_for is None for r in records)
    tasks = {t["prompt"]: t for t in sandbox.stats()["tasks"].values() if tag in t["prompt"]}
    assert sorted(tasks) == sorted(prompts) and all(sandbox.stats()["submits_by_prompt"][p] == 1 for p in prompts)
    spans = sorted((t["submitted_at"], t["finished_at"]) for t in tasks.values())
    for (_, finished), (next_submitted, _) in zip(spans, spans[1:]):
        assert next_submitted >= finished, f"two upstream tasks in flight at once: {spans}"
    assert _in_flight(queue.store) == 0, "nothing leaked"
    logs = s.worker_logs()
    assert "parked: udio in-flight limit" in logs
    # Parked, not polling: each job's submit runs about once, then once more when woken (a
    # countdown of 0.3 s made some 80 runs over the 12 s of waiting).
    runs = sum(1 for line in logs.splitlines() if "Task songqueue.submit[" in line and "succeeded" in line)
    assert runs <= 3 * len(ids), f"{runs} submit task runs for {len(ids)} jobs"
