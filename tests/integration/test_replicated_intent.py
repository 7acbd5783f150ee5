"""SONGQUEUE_REDIS_MIN_REPLICAS: no paid call on a submit intent that only the master holds.

Real worker, Redis and sandbox. This Redis has no replica, so the intent never reaches one:
the worker must back off without calling the upstream (the sandbox counts no submit for
the prompt) and, past its transient-error bound, fail the job with a reason that names
the setting. The probe key the check writes proves the WAIT ran. Each try's budget
reservation is given back by the write that takes its intent back, so nothing stays
spent for calls never made.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from producer.core.models.job_record import JobRecord, JobState
from producer.core.settings import get_settings
from producer.core.store import keys
from workers import runtime
from workers.admission import budget
from workers.steps.step import Run
from workers.tasks.submit import _undo_intent
from workers.upstream.errors import TransientError

pytestmark = pytest.mark.integration


def test_an_intent_no_replica_holds_is_never_paid_for(make_stack, sandbox) -> None:
    s = make_stack(redis_min_replicas="1", max_transient_errors="1", udio_price_per_call="0.25")
    s.start_worker()
    queue = s.queue()
    prompt = f"unreplicated {uuid.uuid4().hex[:8]}"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=90)

    prefix = s.env["SONGQUEUE_KEY_PREFIX"]
    client = redis.Redis.from_url(s.env["SONGQUEUE_REDIS_URL"])
    assert client.exists(f"{prefix}:replication-probe")
    assert sandbox.stats()["submits_by_prompt"].get(prompt, 0) == 0
    assert record.state.value == "FAILED", record
    assert record.error.code == "redis_not_replicated"
    assert "0 of SONGQUEUE_REDIS_MIN_REPLICAS=1" in record.error.message
    assert "the upstream was not called" in record.error.message
    # Reserved for each try (the day's spend key exists), all of it given back, none pending.
    spent = list(client.scan_iter(match=keys.spend(prefix, "udio", "*")))
    assert spent and [int(client.get(k) or 0) for k in spent] == [0] * len(spent)
    assert not client.hlen(keys.reservations(prefix))
    assert record.cost == 0


@pytest.fixture
def worker_runtime(redis_db_url, key_prefix, monkeypatch):
    """The worker's runtime (settings, job store) in this process, on a database of its own."""
    for name, value in {"REDIS_URL": redis_db_url, "BROKER_URL": redis_db_url, "KEY_PREFIX": key_prefix}.items():
        monkeypatch.setenv(f"SONGQUEUE_{name}", value)
    get_settings.cache_clear()
    runtime.store.cache_clear()
    yield runtime.store()
    runtime.store.cache_clear()
    get_settings.cache_clear()


def _intent_with_reservation(store) -> tuple[JobRecord, budget.Reservation]:
    """A job whose submit intent committed a reservation of 0.25, as the submit task writes it."""
    record, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={}))
    day = keys.spend(store.prefix, "udio", "2026-12-05")
    reservation = budget.reserve_under(store.redis, store.prefix, day, None, 0.25, "udio", "knob",
                                       job_id=record.id, version=record.version)
    assert isinstance(reservation, budget.Reservation)

    def intend(r: JobRecord) -> None:
        r.submit_intent_at, r.submit_intent_id = time.time(), "intent-1"

    written = store.apply(record.id, {JobState.QUEUED}, mutate=intend, to=JobState.SUBMITTING,
                          also=lambda w: w.hdel(reservation.pending, reservation.id))
    assert written is not None
    return written, reservation


def test_a_taken_back_intent_gives_its_reservation_back_only_if_it_is_still_the_record(worker_runtime) -> None:
    # The intent reached no replica (WAIT short), so the run takes it back before its retry.
    # Across a partition, a replica may hold it all the same (its acknowledgement lost), and
    # the side that holds it may move the job on and charge it for the call; the ledger must
    # keep the reservation then. So the give-back rides on the write that takes back this very
    # intent, and only when the record is still the one the intent wrote.
    store = worker_runtime
    short = TransientError("redis_not_replicated", "the submit intent reached 0 of 1 replicas")

    kept, reservation = _intent_with_reservation(store)
    store.apply(kept.id, {JobState.SUBMITTING}, mutate=lambda r: setattr(r, "cost", 0.25))  # the other side
    run = Run(None, kept, "submit", {}, {JobState.SUBMITTING}, "token")  # type: ignore[arg-type]
    assert int(store.redis.get(reservation.key)) == 250_000  # reserved, and committed by the intent
    assert _undo_intent(run, short, version=kept.version, give_back=(reservation,)) is False
    assert int(store.redis.get(reservation.key)) == 250_000  # kept: the job is charged for it
    assert store.get(kept.id).state is JobState.SUBMITTING

    taken, reservation = _intent_with_reservation(store)
    assert int(store.redis.get(reservation.key)) == 500_000  # the same day: 0.25 more
    run = Run(None, taken, "submit", {}, {JobState.SUBMITTING}, "token")  # type: ignore[arg-type]
    assert _undo_intent(run, short, version=taken.version, give_back=(reservation,)) is True
    assert int(store.redis.get(reservation.key)) == 250_000  # this one's 0.25 given back
    assert store.get(taken.id).state is JobState.QUEUED
