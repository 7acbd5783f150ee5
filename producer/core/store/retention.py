"""Retention: an ended job or playlist run leaves Redis a fixed time after it ended.

The record and its idempotency key get an absolute expiry (EXPIREAT ended_at + retention)
in the same transaction as the write that ends the job, and again with every later write
to the ended record (a plain SET clears a key's TTL), so the deadline never moves. A
replayed job (FAILED -> QUEUED) loses both expiries in its own transaction.

Sorted-set members cannot expire, so the index entries of ended jobs (scored by when
they entered their terminal state; each tenant's listing through `keys.tenant_ended`, which
remembers the tenant of an ended job after its record is gone) and runs are pruned by
score by a periodic sweep
(workers/tasks/retention.py). Pruning only ever removes entries whose record has already
expired: their end time is older than the retention, so the record's EXPIREAT has passed.

`manifest.json` in storage is the durable record of an ended job; the producer reads it
when the Redis record is gone (producer/core/objects/archive.py). Retention 0 keeps everything.
"""

from __future__ import annotations

from redis import Redis

from producer.core.models.job_record import TERMINAL_STATES, JobRecord
from producer.core.models.playlist_run import PlaylistRun
from producer.core.store import keys, optimistic

# Entries removed per ZREM batch, and batches per sweep round: a round stays short, and
# a backlog (the first sweep after an upgrade) drains over a few rounds.
BATCH = 1000
MAX_BATCHES = 20


def ended_at(record: JobRecord) -> float:
    last = record.transitions[-1] if record.transitions else None
    return last.at if last is not None and last.state.terminal else record.updated_at


def expire_job(pipe: optimistic.Writes, prefix: str, record: JobRecord, retention: float) -> None:
    """Queue the expiry of an ended job's record and idempotency key on `pipe`."""
    if retention <= 0:
        return
    end = ended_at(record)
    at = int(end + retention)
    pipe.expireat(keys.job(prefix, record.id), at)
    pipe.zadd(keys.tenant_ended(prefix), {_tenant_member(record): end}, nx=True)
    if record.idempotency_key:
        pipe.expireat(keys.idempotency(prefix, record.idempotency_key, record.tenant), at)


def keep_job(pipe: optimistic.Writes, prefix: str, record: JobRecord) -> None:
    """A job that lives again (replay) keeps its idempotency key; its record's SET already
    dropped the record's own expiry."""
    pipe.zrem(keys.tenant_ended(prefix), _tenant_member(record))
    if record.idempotency_key:
        pipe.persist(keys.idempotency(prefix, record.idempotency_key, record.tenant))


def prune_jobs(client: Redis, prefix: str, retention: float, now: float) -> int:
    """Remove the index entries of jobs that ended more than `retention` seconds ago."""
    if retention <= 0:
        return 0
    cutoff = now - retention
    pruned = 0
    for state in TERMINAL_STATES:
        index = keys.jobs_in_state(prefix, state.value)
        for _ in range(MAX_BATCHES):
            ids = client.zrangebyscore(index, "-inf", cutoff, start=0, num=BATCH)
            if not ids:
                break
            pipe = client.pipeline(transaction=True)
            pipe.zrem(index, *ids)
            pipe.zrem(keys.all_jobs(prefix), *ids)
            pipe.execute()
            pruned += len(ids)
    _prune_tenant_listings(client, prefix, cutoff)
    return pruned


def _tenant_member(record: JobRecord) -> str:
    return f"{record.tenant}:{record.id}"


def _prune_tenant_listings(client: Redis, prefix: str, cutoff: float) -> None:
    """Remove ended jobs from their tenant's listing (the tenant is in the member: the record is gone)."""
    ended = keys.tenant_ended(prefix)
    for _ in range(MAX_BATCHES):
        members = client.zrangebyscore(ended, "-inf", cutoff, start=0, num=BATCH)
        if not members:
            break
        pipe = client.pipeline(transaction=True)
        for member in members:
            tenant, _, job_id = member.decode().partition(":")
            pipe.zrem(keys.tenant_jobs(prefix, tenant), job_id)
        pipe.zrem(ended, *members)
        pipe.execute()


def expire_run(pipe: optimistic.Writes, prefix: str, run: PlaylistRun, retention: float) -> None:
    """Queue the expiry of an ended playlist run and note it for the sweep."""
    if retention <= 0:
        return
    pipe.expireat(keys.playlist_run(prefix, run.id), int(run.updated_at + retention))
    pipe.zadd(keys.playlist_ended(prefix), {f"{run.playlist}:{run.id}": run.updated_at}, nx=True)


def prune_runs(client: Redis, prefix: str, retention: float, now: float) -> int:
    """Remove the index entries of playlist runs that ended more than `retention` seconds ago."""
    if retention <= 0:
        return 0
    ended = keys.playlist_ended(prefix)
    pruned = 0
    for _ in range(MAX_BATCHES):
        members = client.zrangebyscore(ended, "-inf", now - retention, start=0, num=BATCH)
        if not members:
            break
        pipe = client.pipeline(transaction=True)
        for member in members:
            playlist, _, run_id = member.decode().partition(":")
            pipe.zrem(keys.playlist_runs(prefix), run_id)
            pipe.zrem(keys.playlist_runs(prefix, playlist), run_id)
        pipe.zrem(ended, *members)
        pipe.execute()
        pruned += len(members)
    return pruned
