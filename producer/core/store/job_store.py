"""The job store: job records in Redis with atomic, compare-and-set state transitions.

Every write is a compare-and-set (producer/core/store/optimistic.py: read the record, check its
state, then one Lua script writes the new record and the indexes only if the record is
still the one read). A write whose expected state no longer holds is refused
and logged, never applied: that is what makes a task that runs twice a no-op the second
time. An ended job's record leaves Redis `retention` seconds after it ended
(producer/core/store/retention.py).
"""

from __future__ import annotations

import builtins
import json
import logging
import time
import uuid
from collections.abc import Callable, Collection
from typing import Any

import redis
from redis.client import Pipeline

from producer.core.models import job_states
from producer.core.models.job_record import IN_FLIGHT_STATES, JobRecord, JobState, Transition
from producer.core.request_fingerprint import IdempotencyConflict
from producer.core.store import keys, metric_schema, optimistic, parking, redis_client, retention

log = logging.getLogger("songqueue.job_store")

# Records whose last bytes JobStore keeps per process (a run reads its job, then writes it
# a few times); past this many the memory starts afresh.
SEEN_RECORDS = 256

Mutation = Callable[[JobRecord], None]


class JobStore:
    def __init__(self, client: redis.Redis, prefix: str = "songqueue", retention: float = 0) -> None:
        """`retention`: seconds an ended job stays in Redis (SONGQUEUE_JOB_RETENTION); 0 keeps it."""
        self.redis = client
        self.prefix = prefix
        self.retention = retention
        # Sends a woken parked job's submit (producer/core/store/parking.py); None: the watchdog does.
        self.waker: Callable[[JobRecord], None] | None = None
        # Each record's bytes as this process last read or wrote them: the first decision of a
        # compare-and-set is made on them instead of on a GET of its own (a stale copy costs a
        # refused script and a fresh read, never a write; producer/core/store/optimistic.py).
        self._seen: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url: str, prefix: str = "songqueue", retention: float = 0, master: str = "") -> JobStore:
        """`master`: SONGQUEUE_SENTINEL_MASTER, read when `url` is a sentinel:// URL."""
        return cls(redis_client.connect(url, master, socket_timeout=30, health_check_interval=30), prefix, retention)

    def create(self, record: JobRecord, check_in: float | None = None) -> tuple[JobRecord, bool]:
        """Store a new QUEUED record; returns (record, created).

        `check_in`: seconds until the watchdog should look at the job if nothing happens.

        With an idempotency key the first job stored under it wins and a repeat of the same
        request returns it; a different request under it (another `request_fingerprint`)
        raises IdempotencyConflict, whatever entry point it came through.
        """
        record.transitions = [Transition(state=record.state, at=record.created_at)]
        if not record.idempotency_key:
            pipe = self.redis.pipeline(transaction=True)
            self._queue_create(pipe, record, check_in)
            pipe.execute()
            return record, True
        return self._create_claiming(record, check_in)

    def _create_claiming(self, record: JobRecord, check_in: float | None) -> tuple[JobRecord, bool]:
        """Claim the idempotency key and write the record in one transaction.

        A crash or timeout can no longer fall between the two: either both exist, or
        neither does, and a caller's retry with the same key finds the job or creates it.
        """
        idem = keys.idempotency(self.prefix, record.idempotency_key or "", record.tenant)
        while True:
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(idem)
                    owner = pipe.get(idem)
                    if owner is None:
                        pipe.multi()
                        pipe.set(idem, record.id)
                        self._queue_create(pipe, record, check_in)
                        pipe.execute()
                        return record, True
                except redis.WatchError:
                    continue
            existing = self.get(owner.decode())
            if existing is None:
                raise RuntimeError(f"idempotency key {record.idempotency_key!r} points at a missing job")
            if (existing.request_fingerprint and record.request_fingerprint
                    and existing.request_fingerprint != record.request_fingerprint):
                raise IdempotencyConflict(record.idempotency_key or "")
            return existing, False

    def _queue_create(self, pipe: Pipeline, record: JobRecord, check_in: float | None) -> None:
        pipe.set(keys.job(self.prefix, record.id), record.model_dump_json())
        pipe.zadd(keys.all_jobs(self.prefix), {record.id: record.created_at})
        pipe.zadd(keys.tenant_jobs(self.prefix, record.tenant), {record.id: record.created_at})
        pipe.zadd(keys.jobs_in_state(self.prefix, record.state.value), {record.id: record.created_at})
        if record.api_key:
            pipe.zadd(keys.key_queued(self.prefix, record.api_key), {record.id: record.created_at})
        if check_in is not None:
            pipe.zadd(keys.due(self.prefix), {record.id: _due_at(record, record.created_at + check_in)})

    def get(self, job_id: str) -> JobRecord | None:
        key = keys.job(self.prefix, job_id)
        raw = self.redis.get(key)
        if not raw:
            self._seen.pop(key, None)
            return None
        self._remember(key, raw)
        return JobRecord.model_validate_json(raw)

    def get_with_due(self, job_id: str) -> tuple[JobRecord | None, float | None]:
        """The record and its watchdog deadline (epoch seconds; None without one), read in one
        MULTI: every write that moves a job sets both in one transaction (`apply`), so the pair
        is always of the same moment. The watchdog needs that: a job it listed as overdue may
        have been moved on (and given a new deadline) by a running step since."""
        key = keys.job(self.prefix, job_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(key)
        pipe.zscore(keys.due(self.prefix), job_id)
        raw, due = pipe.execute()
        if not raw:
            self._seen.pop(key, None)
            return None, due
        self._remember(key, raw)
        return JobRecord.model_validate_json(raw), due

    def _remember(self, key: str, raw: bytes) -> None:
        if len(self._seen) >= SEEN_RECORDS:
            self._seen.clear()  # a hint, not a cache of record: losing it costs a GET
        self._seen[key] = raw

    def apply(
        self,
        job_id: str,
        expect: Collection[JobState],
        mutate: Mutation | None = None,
        to: JobState | None = None,
        *,
        token: int | None = None,
        version: int | None = None,
        run: int | None = None,
        check_in: float | None = None,
        also: Callable[[optimistic.Writes], None] | None = None,
        debt: Callable[[JobRecord], float | None] | None = None,
    ) -> JobRecord | None:
        """Mutate the record and/or move it to `to`, only if its state is in `expect`.

        `token`, `version` and `run`, when given, must also still match: a stale step message
        (older fencing token, or a download of a run a replay replaced) or a decision made on
        an outdated read is refused.
        `check_in` (seconds) moves the job's watchdog deadline; a terminal job has none.
        `also` adds writes of the caller's to the same atomic step (a budget reservation
        committed with the intent, say).
        `debt`, for a write that ends the job: seconds after which the watchdog sends the
        ended record's callback again unless it is settled first, or None when it owes none;
        the debt goes into the callback outbox in the same atomic step as the end.
        Returns the record as written, or None when the job is missing or has moved on.
        Raises `job_states.IllegalTransition`, writing nothing, when the state read may not
        move to `to` (producer/core/models/job_states.py).
        """
        key = keys.job(self.prefix, job_id)
        freed: list[str] = []  # in-flight sets the write takes the job out of: a place each
        written_bytes: list[bytes] = []
        # Why the last decision refused, logged once it is final (a decision on a stale
        # seed is taken again on a fresh read, and its refusal is not the job's).
        refusal: list[Any] = []

        def refuse(level: int, message: str, *args: object) -> None:
            refusal[:] = [level, message, *args]

        def decide(raw: bytes | None) -> tuple[JobRecord, Callable[[optimistic.Writes], None]] | None:
            if raw is None:
                refuse(logging.WARNING, "job %s: not found", job_id)
                return None
            record = JobRecord.model_validate_json(raw)
            if token is not None and record.token != token:
                refuse(logging.INFO, "job %s: refused a stale step (token %d, now %d)", job_id, token, record.token)
                return None
            if version is not None and record.version != version:
                refuse(logging.INFO, "job %s: refused a write based on version %d (now %d)", job_id, version,
                       record.version)
                return None
            if run is not None and record.run != run:
                refuse(logging.INFO, "job %s: refused a write of run %d (now run %d)", job_id, run, record.run)
                return None
            if record.state not in expect:
                refuse(
                    logging.INFO, "job %s: refused %s in state %s (expected %s)",
                    job_id, f"move to {to.value}" if to else "update", record.state.value,
                    "/".join(sorted(s.value for s in expect)),
                )
                return None
            before = record.state
            if to is not None:
                # Against the state read here, whatever `expect` said: raised before any write.
                job_states.check(job_id, before, to)
            cost_before = record.cost
            if mutate is not None:
                mutate(record)
            now = time.time()
            if to is not None and to != before:
                record.state = to
                record.transitions.append(Transition(state=to, at=now))
                # What the ended record's EXPIREAT says, shown to the client (status, webhooks).
                record.expires_at = now + self.retention if to.terminal and self.retention > 0 else None
            record.version += 1
            record.updated_at = now
            freed[:] = (list(parking.limit_sets(self.prefix, record).values())
                        if before in IN_FLIGHT_STATES and record.state not in IN_FLIGHT_STATES else [])

            def write(pipe: optimistic.Writes) -> None:
                dumped = record.model_dump_json()
                written_bytes[:] = [dumped.encode()]
                pipe.set(key, dumped)
                if record.state != before:
                    pipe.zrem(keys.jobs_in_state(self.prefix, before.value), job_id)
                    pipe.zadd(keys.jobs_in_state(self.prefix, record.state.value), {job_id: now})
                    _track_in_flight(pipe, self.prefix, record, now)
                if record.state != before and record.state.terminal:
                    _count_end(pipe, self.prefix, record, now)
                if record.cost != cost_before:
                    pipe.hincrbyfloat(keys.metric(self.prefix, metric_schema.SPEND), record.provider,
                                      record.cost - cost_before)
                if record.state.terminal:
                    pipe.zrem(keys.due(self.prefix), job_id)
                    retention.expire_job(pipe, self.prefix, record, self.retention)
                    owed = debt(record) if debt is not None else None
                    if owed is not None:
                        pipe.zadd(keys.callback_outbox(self.prefix), {job_id: now + owed})
                elif before.terminal:
                    retention.keep_job(pipe, self.prefix, record)
                if not record.state.terminal and check_in is not None:
                    pipe.zadd(keys.due(self.prefix), {job_id: _due_at(record, now + check_in)})
                if also is not None:
                    also(pipe)

            return record, write

        written = optimistic.update(self.redis, key, decide, seed=self._seen.get(key))
        if written is None:
            self._seen.pop(key, None)
            if refusal:
                log.log(*refusal)
            return None
        self._remember(key, written_bytes[0])
        if freed:
            parking.wake(self, freed)
        return written

    def wake_parked(self, in_flight_sets: builtins.list[str]) -> int:
        """A place freed in each set outside a state change (an admission given back): wake a parked job."""
        return parking.wake(self, in_flight_sets)

    def ids(self, state: JobState | None = None, limit: int = 100) -> list[str]:
        index = keys.jobs_in_state(self.prefix, state.value) if state else keys.all_jobs(self.prefix)
        return [i.decode() for i in self.redis.zrevrange(index, 0, limit - 1)]

    def list(self, state: JobState | None = None, limit: int = 100) -> builtins.list[JobRecord]:
        records = (self.get(i) for i in self.ids(state, limit))
        return [r for r in records if r is not None]

    def prune_ended(self, now: float) -> int:
        """Drop the index entries of jobs whose records expired; returns how many."""
        return retention.prune_jobs(self.redis, self.prefix, self.retention, now)

    def overdue(self, now: float, limit: int = 500) -> builtins.list[str]:
        """Live jobs whose `next_check_at` has passed, most overdue first."""
        return [i.decode() for i in self.redis.zrangebyscore(keys.due(self.prefix), "-inf", now, start=0, num=limit)]

    def check_in(self, job_id: str, seconds: float) -> None:
        """Push back a live job's watchdog deadline (a heartbeat during long steps)."""
        self.redis.zadd(keys.due(self.prefix), {job_id: time.time() + seconds}, xx=True)

    def owe_callback(self, job_id: str, seconds: float) -> None:
        """Note (or push back) that the job's end owes a callback: looked at in `seconds`."""
        self.redis.zadd(keys.callback_outbox(self.prefix), {job_id: time.time() + seconds})

    def owed_callbacks(self, now: float, limit: int = 500) -> builtins.list[str]:
        return [i.decode() for i in
                self.redis.zrangebyscore(keys.callback_outbox(self.prefix), "-inf", now, start=0, num=limit)]

    def callback_settled(self, job_id: str) -> None:
        """The end's callback was delivered or refused for good: nothing owed any more."""
        self.redis.zrem(keys.callback_outbox(self.prefix), job_id)

    def progress_callback_due(self, job_id: str, interval: float) -> bool:
        """Whether a progress callback of the job may go now: at most one per `interval` seconds
        per job, across every worker (one SET NX PX; 0 lets every one through)."""
        if interval <= 0:
            return True
        return bool(self.redis.set(keys.callback_progress_gate(self.prefix, job_id), b"1", nx=True,
                                   px=max(1, int(interval * 1000))))

    def park_callback(self, delivery: dict[str, object], due: float) -> None:
        """Hold a callback delivery (the task's arguments) until the epoch time `due`: for waits
        longer than a broker countdown may last (SONGQUEUE_CALLBACK_SCHEDULE's hours)."""
        member = json.dumps({**delivery, "parked": uuid.uuid4().hex}, sort_keys=True)
        self.redis.zadd(keys.callback_parked(self.prefix), {member: due})

    def claim_due_callbacks(self, now: float, limit: int = 500) -> builtins.list[dict[str, Any]]:
        """The parked deliveries due by `now`, each taken out of the set by whoever claims it
        first (ZREM answers 1 to one caller only), so two watchdog rounds never send one twice."""
        key = keys.callback_parked(self.prefix)
        claimed = []
        for member in self.redis.zrangebyscore(key, "-inf", now, start=0, num=limit):
            if self.redis.zrem(key, member):
                delivery = json.loads(member)
                delivery.pop("parked", None)
                claimed.append(delivery)
        return claimed

    def forget_due(self, job_id: str) -> None:
        """Drop a watchdog entry whose job is gone or has ended."""
        self.redis.zrem(keys.due(self.prefix), job_id)

    def index_upstream_task(self, provider: str, task_id: str, job_id: str, seconds: float) -> None:
        """Remember which job owns an upstream task, for `seconds` (the notify hook's lookup)."""
        self.redis.set(keys.upstream_task(self.prefix, provider, task_id), job_id, ex=max(1, int(seconds)))

    def job_for_upstream_task(self, provider: str, task_id: str) -> str | None:
        raw = self.redis.get(keys.upstream_task(self.prefix, provider, task_id))
        return raw.decode() if raw else None

    def claim_hook_poll(self, job_id: str, seconds: float) -> bool:
        """True for the first hook-triggered poll of a job in `seconds`; False while it is held."""
        return bool(self.redis.set(keys.hook_poll(self.prefix, job_id), "1", nx=True, px=max(1, int(seconds * 1000))))

    def try_watchdog_round(self, seconds: float) -> bool:
        """A lease so one watchdog round runs per interval, even with two beats by mistake."""
        return bool(self.redis.set(keys.watchdog_lock(self.prefix), "1", nx=True, px=max(1, int(seconds * 1000))))

    def note_watchdog_round(self, now: float) -> None:
        self.redis.set(keys.watchdog_last_round(self.prefix), repr(now))

    def last_watchdog_round(self) -> float | None:
        """Unix time of the latest watchdog round, or None if none ever ran."""
        raw = self.redis.get(keys.watchdog_last_round(self.prefix))
        return None if raw is None else float(raw)


def _count_end(pipe: optimistic.Writes, prefix: str, record: JobRecord, now: float) -> None:
    """The finished-jobs counter and the duration histogram (producer/core/store/metric_schema.py)."""
    code = record.error.code if record.error else ""
    series = f"{record.provider}{metric_schema.SEP}{record.state.value}"
    pipe.hincrby(keys.metric(prefix, metric_schema.JOBS_FINISHED), f"{series}{metric_schema.SEP}{code}", 1)
    seconds = max(0.0, now - record.created_at)
    histogram = keys.metric(prefix, metric_schema.JOB_SECONDS)
    pipe.hincrby(histogram, f"{series}{metric_schema.SEP}{metric_schema.bucket(seconds, metric_schema.JOB_BUCKETS)}", 1)
    pipe.hincrbyfloat(histogram, f"{series}{metric_schema.SEP}sum", seconds)


def _track_in_flight(pipe: optimistic.Writes, prefix: str, record: JobRecord, now: float) -> None:
    """Keep the provider's in-flight set in step with a state change, in the same transaction.

    Entering an in-flight state adds the job (a no-op when the submit step's limit already
    admitted it); any other state removes it: so a job that ends, backs off to QUEUED or is
    cancelled frees its place at once, and nothing held by a dead worker can leak. A job that
    leaves QUEUED leaves its park queues (producer/core/store/parking.py) and its key's
    queued set too, so neither holds anything but QUEUED jobs.
    """
    sets = list(parking.limit_sets(prefix, record).values())  # the submitting key's own limit too
    for key in sets:
        if record.state in IN_FLIGHT_STATES:
            pipe.zadd(key, {record.id: now}, nx=True)
        else:
            pipe.zrem(key, record.id)
        if record.state is not JobState.QUEUED:
            pipe.zrem(keys.parked(key), record.id)
    if record.api_key:
        if record.state is JobState.QUEUED:
            pipe.zadd(keys.key_queued(prefix, record.api_key), {record.id: record.created_at})
        else:
            pipe.zrem(keys.key_queued(prefix, record.api_key), record.id)


def _due_at(record: JobRecord, at: float) -> float:
    """When the watchdog looks at a live job: at `at`, or at its deadline if a queued job's
    comes first, so a job whose submit waits (behind a limit, in a backlog) still ends then."""
    if record.state is JobState.QUEUED and record.cancel_after is not None:
        return min(at, record.cancel_after)
    return at

