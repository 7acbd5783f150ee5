"""The Redis job store: records, idempotency, compare-and-set transitions, indexes.

Uses the private redis-server of conftest (`redis_url`); every test has its own key prefix.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from producer.core.models.job_record import JobError, JobRecord, JobState
from producer.core.store import keys
from producer.core.store.job_store import JobStore

REQUEST = {"prompt": "a song about the moon", "lyrics": "", "config": {"mode": "regular"}}


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str) -> JobStore:
    return JobStore(redis_client, key_prefix)


def _record(job_id: str, created_at: float | None = None, idempotency_key: str | None = None) -> JobRecord:
    record = JobRecord(id=job_id, provider="udio", model="udio32-v1.5", request=REQUEST,
                       idempotency_key=idempotency_key)
    if created_at is not None:
        record.created_at = created_at
    return record


def _raw(store: JobStore, job_id: str) -> bytes | None:
    return store.redis.get(keys.job(store.prefix, job_id))


def test_create_and_get(store: JobStore) -> None:
    record, created = store.create(_record("j1"))
    assert created is True
    assert record.state is JobState.QUEUED and record.version == 0
    assert [(t.state, t.at) for t in record.transitions] == [(JobState.QUEUED, record.created_at)]
    got = store.get("j1")
    assert got == record
    assert got.request == REQUEST
    assert store.ids() == ["j1"] and store.ids(JobState.QUEUED) == ["j1"]
    assert store.get("missing") is None


def test_prefixes_keep_stores_apart(redis_client: redis.Redis, key_prefix: str) -> None:
    a, b = JobStore(redis_client, key_prefix + "a"), JobStore(redis_client, key_prefix + "b")
    a.create(_record("j1"))
    assert b.get("j1") is None and b.ids() == []


def test_idempotency_key_returns_the_first_job(store: JobStore) -> None:
    first, created_first = store.create(_record("j1", idempotency_key="order-42"))
    again, created_again = store.create(_record("j2", idempotency_key="order-42"))
    assert (created_first, created_again) == (True, False)
    assert again.id == "j1" and again == first
    # The loser's record is gone from the record keys and from every index.
    assert store.get("j2") is None
    assert store.ids() == ["j1"] and store.ids(JobState.QUEUED) == ["j1"]
    # Another key is another job.
    other, created_other = store.create(_record("j3", idempotency_key="order-43"))
    assert created_other is True and other.id == "j3"


def test_idempotency_claim_and_record_are_one_transaction(store: JobStore) -> None:
    """The key is never seen without its record, nor a record without its key: a writer
    that dies between two steps cannot leave a QUEUED orphan the watchdog would submit."""
    seen: list[tuple[bool, bool]] = []
    done = threading.Event()
    idem = keys.idempotency(store.prefix, "atomic")

    def watch() -> None:
        while not done.is_set():
            with store.redis.pipeline(transaction=True) as pipe:
                pipe.get(idem)
                pipe.get(keys.job(store.prefix, "a1"))
                owner, raw = pipe.execute()
            seen.append((owner is not None, raw is not None))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = [store.create(_record(f"a{i}", idempotency_key="atomic")) for i in range(1, 4)]
    finally:
        done.set()
        watcher.join()
    assert [created for _, created in results] == [True, False, False]
    assert {r.id for r, _ in results} == {"a1"}
    assert all(key == record for key, record in seen)  # both, or neither
    assert store.ids() == ["a1"] and store.get("a2") is None


def test_idempotency_key_returns_the_first_job_as_it_is_now(store: JobStore) -> None:
    store.create(_record("j1", idempotency_key="k"))
    store.apply("j1", {JobState.QUEUED}, to=JobState.SUBMITTING)
    again, created = store.create(_record("j2", idempotency_key="k"))
    assert created is False and (again.id, again.state) == ("j1", JobState.SUBMITTING)


def test_concurrent_creates_with_one_idempotency_key_make_one_job(store: JobStore) -> None:
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8, timeout=10)

    def create(n: int) -> None:
        barrier.wait()
        record, created = store.create(_record(f"c{n}", idempotency_key="same"))
        results.append((record.id, created))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 8
    winners = [job_id for job_id, created in results if created]
    assert len(winners) == 1
    assert {job_id for job_id, _ in results} == set(winners)
    assert store.ids() == winners


def test_apply_moves_state_and_stamps_transitions_in_order(store: JobStore) -> None:
    store.create(_record("j1"))
    path = [JobState.SUBMITTING, JobState.SUBMITTED, JobState.GENERATING, JobState.DOWNLOADING, JobState.SUCCEEDED]
    previous = JobState.QUEUED
    for version, state in enumerate(path, start=1):
        before = time.time()
        record = store.apply("j1", {previous}, to=state)
        assert record is not None
        assert record.state is state and record.version == version
        assert before <= record.transitions[-1].at <= time.time()
        assert record.updated_at == record.transitions[-1].at
        assert store.get("j1") == record
        previous = state
    transitions = store.get("j1").transitions
    assert [t.state for t in transitions] == [JobState.QUEUED, *path]
    stamps = [t.at for t in transitions]
    assert stamps == sorted(stamps)


def test_apply_from_an_unexpected_state_changes_nothing(store: JobStore) -> None:
    store.create(_record("j1"))
    store.apply("j1", {JobState.QUEUED}, to=JobState.SUBMITTING)
    raw_before = _raw(store, "j1")
    called = []

    def mutate(record: JobRecord) -> None:
        called.append(record.id)
        record.progress = 99

    # Already past QUEUED: a redelivered submit task must be a no-op.
    assert store.apply("j1", {JobState.QUEUED}, mutate=mutate, to=JobState.SUBMITTING) is None
    assert store.apply("j1", {JobState.SUBMITTED, JobState.GENERATING}, to=JobState.FAILED) is None
    assert store.apply("j1", set(), mutate=mutate) is None
    assert called == []
    assert _raw(store, "j1") == raw_before
    assert store.ids(JobState.SUBMITTING) == ["j1"] and store.ids(JobState.FAILED) == []


def test_apply_on_a_missing_job(store: JobStore) -> None:
    assert store.apply("nope", {JobState.QUEUED}, to=JobState.CANCELLED) is None
    assert store.get("nope") is None and store.ids(JobState.CANCELLED) == []


def test_terminal_state_is_final_for_cas_callers(store: JobStore) -> None:
    store.create(_record("j1"))
    assert store.apply("j1", {JobState.QUEUED}, to=JobState.CANCELLED) is not None
    non_terminal = {s for s in JobState if not s.terminal}
    assert store.apply("j1", non_terminal, to=JobState.SUBMITTING) is None
    assert store.get("j1").state is JobState.CANCELLED


def test_mutate_without_move_bumps_version_only(store: JobStore) -> None:
    store.create(_record("j1"))

    def progress(record: JobRecord) -> None:
        record.progress = 40
        record.error = JobError(code="upstream_unavailable", message="HTTP 503")

    record = store.apply("j1", {JobState.QUEUED}, mutate=progress)
    assert (record.state, record.version, record.progress) == (JobState.QUEUED, 1, 40)
    assert len(record.transitions) == 1
    # Moving to the state it is already in is not a transition either.
    record = store.apply("j1", {JobState.QUEUED}, to=JobState.QUEUED)
    assert record.version == 2 and len(record.transitions) == 1
    stored = store.get("j1")
    assert stored.error == JobError(code="upstream_unavailable", message="HTTP 503")
    assert stored.version == 2


def test_state_index_follows_transitions(store: JobStore) -> None:
    for n, job_id in enumerate(["a", "b", "c"]):
        store.create(_record(job_id, created_at=1000.0 + n))
    assert store.ids(JobState.QUEUED) == ["c", "b", "a"]  # newest first
    store.apply("b", {JobState.QUEUED}, to=JobState.SUBMITTING)
    assert store.ids(JobState.QUEUED) == ["c", "a"]
    assert store.ids(JobState.SUBMITTING) == ["b"]
    store.apply("b", {JobState.SUBMITTING}, to=JobState.FAILED)
    assert store.ids(JobState.SUBMITTING) == [] and store.ids(JobState.FAILED) == ["b"]
    # Every job is in exactly one state index.
    for job_id in "abc":
        holders = [s for s in JobState if job_id in store.ids(s)]
        assert holders == [store.get(job_id).state]
    assert store.ids() == ["c", "b", "a"]


def test_list_and_state_filter(store: JobStore) -> None:
    for n in range(5):
        store.create(_record(f"j{n}", created_at=2000.0 + n))
    store.apply("j1", {JobState.QUEUED}, to=JobState.SUBMITTING)
    store.apply("j3", {JobState.QUEUED}, to=JobState.SUBMITTING)
    assert [r.id for r in store.list()] == ["j4", "j3", "j2", "j1", "j0"]
    assert [r.id for r in store.list(limit=2)] == ["j4", "j3"]
    assert [r.id for r in store.list(JobState.QUEUED)] == ["j4", "j2", "j0"]
    assert {r.id for r in store.list(JobState.SUBMITTING)} == {"j1", "j3"}
    assert all(r.state is JobState.SUBMITTING for r in store.list(JobState.SUBMITTING))
    assert store.list(JobState.SUCCEEDED) == []


def test_state_index_follows_each_transition(store: JobStore) -> None:
    """A job leaves its old state's index and joins the new one's, newest entry first."""
    for n in range(3):
        store.create(_record(f"j{n}", created_at=3000.0 + n))
    store.apply("j0", {JobState.QUEUED}, to=JobState.SUBMITTING)
    assert store.ids(JobState.QUEUED) == ["j2", "j1"]
    assert store.ids(JobState.SUBMITTING) == ["j0"]
    store.apply("j1", {JobState.QUEUED}, to=JobState.SUBMITTING)
    # Ordered by when each entered SUBMITTING, not by when it was created.
    assert store.ids(JobState.SUBMITTING) == ["j1", "j0"]
    assert store.ids(JobState.SUBMITTED) == []


def test_concurrent_apply_loses_no_update(store: JobStore) -> None:
    """8 threads read the same version before any writes; optimistic retry must keep all 8."""
    store.create(_record("j1"))
    barrier = threading.Barrier(8, timeout=10)
    local = threading.local()
    calls: list[int] = []
    results: list[JobRecord | None] = []
    errors: list[BaseException] = []

    def bump(record: JobRecord) -> None:
        calls.append(record.version)
        if not getattr(local, "waited", False):
            # Everyone holds a WATCH on the same version before the first write.
            local.waited = True
            barrier.wait()
        record.attempts["poll"] = record.attempts.get("poll", 0) + 1

    def worker() -> None:
        try:
            results.append(store.apply("j1", {JobState.QUEUED, JobState.GENERATING}, mutate=bump))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    final = store.get("j1")
    assert final.attempts == {"poll": 8}
    assert final.version == 8
    assert sorted(r.version for r in results) == list(range(1, 9))
    # The barrier made the first round collide: 7 threads had to retry at least once.
    assert len(calls) >= 8 + 7
    assert calls[:8] == [0] * 8


@pytest.fixture
def other_store(redis_url: str, key_prefix: str):
    """The same store through a connection of its own: another worker."""
    client = redis.Redis.from_url(redis_url)
    yield JobStore(client, key_prefix)
    client.close()


def test_a_conflicting_write_during_mutate_forces_a_retry(store: JobStore, other_store: JobStore) -> None:
    store.create(_record("j1"))
    other = other_store
    seen: list[int] = []

    def mutate(record: JobRecord) -> None:
        seen.append(record.version)
        if len(seen) == 1:  # someone else writes between our read and our write
            assert other.apply("j1", {JobState.QUEUED}, to=JobState.SUBMITTING) is not None
        record.progress = 10

    record = store.apply("j1", {JobState.QUEUED, JobState.SUBMITTING}, mutate=mutate)
    assert seen == [0, 1]  # re-read after the conflict, then applied on top of it
    assert record.state is JobState.SUBMITTING and record.progress == 10 and record.version == 2
    assert store.get("j1") == record


def test_a_conflicting_move_makes_the_retry_refuse(store: JobStore, other_store: JobStore) -> None:
    store.create(_record("j1"))
    other = other_store
    seen: list[int] = []

    def mutate(record: JobRecord) -> None:
        seen.append(record.version)
        if len(seen) == 1:  # cancelled while we were deciding
            other.apply("j1", {JobState.QUEUED}, to=JobState.CANCELLED)
        record.progress = 50

    assert store.apply("j1", {JobState.QUEUED}, mutate=mutate, to=JobState.SUBMITTING) is None
    final = store.get("j1")
    assert seen == [0]
    assert (final.state, final.progress, final.version) == (JobState.CANCELLED, 0, 1)
    assert store.ids(JobState.SUBMITTING) == [] and store.ids(JobState.CANCELLED) == ["j1"]



def test_a_transition_keeps_any_text_byte_for_byte(store: JobStore) -> None:
    """The compare-and-set script carries the record as JSON: CJK, emoji and quotes survive."""
    store.create(_record("j1"))
    text = '晨光 "quoted" \\ 🎵 naïve'

    def note(record: JobRecord) -> None:
        record.error = JobError(code="x", message=text)

    written = store.apply("j1", {JobState.QUEUED}, mutate=note, to=JobState.FAILED)
    assert written is not None and store.get("j1") == written
    assert store.get("j1").error.message == text


def test_forget_due_drops_a_watchdog_entry(store: JobStore) -> None:
    store.create(_record("d1"), check_in=0)
    store.redis.delete(keys.job(store.prefix, "d1"))  # the record expired or was deleted
    assert store.overdue(time.time() + 1) == ["d1"]
    store.forget_due("d1")
    assert store.overdue(time.time() + 1) == []


def test_a_write_of_a_replaced_run_is_refused(store: JobStore) -> None:
    """`run` fences a download's writes: once a replay began another run, the old run's
    writes do nothing; `also` joins the caller's writes to the same atomic step."""
    from producer.client.replay import reset_for_replay

    store.create(_record("j1"))
    store.apply("j1", {JobState.QUEUED}, to=JobState.FAILED)
    assert store.get("j1").run == 0
    store.apply("j1", {JobState.FAILED}, mutate=reset_for_replay, to=JobState.QUEUED)
    before = store.get("j1")
    assert before.run == 1

    assert store.apply("j1", {JobState.QUEUED}, mutate=lambda r: setattr(r, "progress", 50), run=0) is None
    assert store.get("j1") == before
    written = store.apply("j1", {JobState.QUEUED}, mutate=lambda r: setattr(r, "progress", 50), run=1,
                          also=lambda w: w.hincrby(f"{store.prefix}:also", "n", 1))
    assert written is not None and written.progress == 50
    assert store.redis.hget(f"{store.prefix}:also", "n") == b"1"


def _counting_gets(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every GET the store sends from now on, by key."""
    sent: list[str] = []
    real = store.redis.get

    def get(key: str) -> bytes | None:
        sent.append(key)
        return real(key)

    monkeypatch.setattr(store.redis, "get", get)
    return sent


def test_a_write_after_a_read_decides_on_the_bytes_read(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record a step just read (or wrote) seeds its compare-and-set: no GET of its own."""
    store.create(_record("j1"))
    store.get("j1")
    gets = _counting_gets(store, monkeypatch)
    first = store.apply("j1", {JobState.QUEUED}, to=JobState.SUBMITTING)
    second = store.apply("j1", {JobState.SUBMITTING}, to=JobState.SUBMITTED)
    assert gets == []
    assert (first.version, second.version) == (1, 2)
    assert store.get("j1") == second


def test_a_stale_seed_is_read_again_and_never_written_from(
    store: JobStore, other_store: JobStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Another worker moved and changed the job after this one read it: the decision made on
    the stale bytes is refused by the script, and taken again on the fresh record."""
    store.create(_record("j1"))
    store.get("j1")  # QUEUED, version 0: the seed
    other_store.apply("j1", {JobState.QUEUED}, to=JobState.SUBMITTING)

    def note(record: JobRecord) -> None:
        record.progress = 5

    assert other_store.apply("j1", {JobState.SUBMITTING}, mutate=note) is not None
    gets = _counting_gets(store, monkeypatch)
    seen: list[tuple[JobState, int]] = []

    def mutate(record: JobRecord) -> None:
        seen.append((record.state, record.version))
        record.attempts["x"] = 1

    with caplog.at_level("INFO", logger="songqueue.job_store"):
        # Refused on the seed (QUEUED is not expected), so read again: SUBMITTING is.
        written = store.apply("j1", {JobState.SUBMITTING}, mutate=mutate)
    assert written is not None and (written.version, written.progress, written.attempts) == (3, 5, {"x": 1})
    assert seen == [(JobState.SUBMITTING, 2)]  # never decided on the stale copy's state
    assert len(gets) == 1 and "refused" not in caplog.text
    # The seed matched the expected state but is stale: the script refuses, the retry reads.
    store.get("j1")
    assert other_store.apply("j1", {JobState.SUBMITTING}, mutate=note) is not None
    gets.clear()
    again = store.apply("j1", {JobState.SUBMITTING}, mutate=lambda r: r.attempts.update(y=2))
    assert again is not None and again.attempts == {"x": 1, "y": 2} and again.version == 5
    assert len(gets) == 1
    assert store.get("j1") == again


def test_a_refusal_on_a_current_seed_is_read_once_and_logged_once(
    store: JobStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    store.create(_record("j1"))
    store.get("j1")
    gets = _counting_gets(store, monkeypatch)
    with caplog.at_level("INFO", logger="songqueue.job_store"):
        assert store.apply("j1", {JobState.GENERATING}, to=JobState.DOWNLOADING) is None
    assert len(gets) == 1  # the refusal is confirmed on a fresh read before it stands
    assert caplog.text.count("refused update in state QUEUED") + caplog.text.count("refused move") == 1


def test_the_end_notes_its_callback_debt_in_the_same_write(store: JobStore) -> None:
    outbox = keys.callback_outbox(store.prefix)
    for job_id in ("owes", "owes-none", "moved-on"):
        store.create(_record(job_id))
    store.apply("moved-on", {JobState.QUEUED}, to=JobState.CANCELLED)
    asked: list[JobState] = []

    def debt(record: JobRecord) -> float | None:
        asked.append(record.state)
        return 30.0 if record.id == "owes" else None

    # A write that does not end the job owes nothing yet, whatever `debt` would say.
    assert store.apply("owes", {JobState.QUEUED}, to=JobState.SUBMITTING, debt=debt) is not None
    assert store.redis.zscore(outbox, "owes") is None and asked == []
    before = time.time()
    ended = store.apply("owes", {JobState.SUBMITTING}, to=JobState.FAILED, debt=debt)
    assert ended is not None and asked == [JobState.FAILED]
    assert before + 30 <= store.redis.zscore(outbox, "owes") <= time.time() + 30
    assert store.apply("owes-none", {JobState.QUEUED}, to=JobState.FAILED, debt=debt) is not None
    assert store.apply("moved-on", {JobState.QUEUED}, to=JobState.FAILED, debt=debt) is None  # refused
    assert [m.decode() for m in store.redis.zrange(outbox, 0, -1)] == ["owes"]
