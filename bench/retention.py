"""Retention: Redis bytes a job costs while its record is kept, and after it expired.

Real jobs (instant upstream, small songs) run to SUCCEEDED through a real worker, each
with an idempotency key, under a short SONGQUEUE_JOB_RETENTION. Redis `used_memory` is
read on the empty database (the baseline, same run), once every job has ended (records,
idempotency keys and index entries all kept), and once the records expired and the
retention sweep pruned the index entries. Per job = (reading - baseline) / jobs.
"""

from __future__ import annotations

import time

import redis

from bench import harness
from bench.harness import Section, fmt
from producer.core.store import keys
from producer.core.store.job_store import JobStore

RETENTION = 60


def run(quick: bool) -> Section:
    jobs = 50 if quick else 300
    with harness.servers("retention", "--generation-time", "0", "--song-duration", "1") as srv:
        env = srv.env(POLL_INITIAL_DELAY=0, JOB_RETENTION=RETENTION)
        client = harness.producer(env).store.redis
        worker = srv.start_worker(env, "retention", concurrency=2)
        queue = harness.producer(env)
        # Every reading with the worker running and idle: the same connections and broker keys.
        baseline, base_keys = _used(client), _key_bytes(client)
        ids = [queue.submit(harness.UdioRequest(prompt=harness.prompt(f"retention {i}", gen_time=0),
                                                lyrics_type="instrumental"),
                            idempotency_key=f"retention-{i}").id for i in range(jobs)]
        done = harness.wait_for_jobs(queue.store, jobs, timeout=900)
        harness.stack.wait_until(lambda: not client.hlen("unacked") and not any(
            client.llen(q) for q in ("submit", "poll", "download", "callback")), 120, "the queues to empty")
        kept, kept_keys = _used(client), _key_bytes(client)
        live_keys = sum(client.exists(keys.job(queue.store.prefix, i)) for i in ids)
        sample = client.memory_usage(keys.job(queue.store.prefix, ids[-1])) or 0
        idem = client.memory_usage(keys.idempotency(queue.store.prefix, f"retention-{jobs - 1}")) or 0
        harness.stack.wait_until(
            lambda: not any(client.exists(keys.job(queue.store.prefix, i)) for i in ids[-20:]),
            RETENTION + 120, "the records to expire")
        # Keys expire lazily or by Redis's active cycle; ask for the rest, as reads would.
        for i in ids:
            client.exists(keys.job(queue.store.prefix, i))
        store = JobStore(client, queue.store.prefix, RETENTION)
        pruned = store.prune_ended(time.time() + 1)
        expired, expired_keys = _used(client), _key_bytes(client)
        srv.stop_worker(worker)

    rows = [
        ["empty database (baseline)", fmt(baseline), "–", fmt(base_keys), "–"],
        [f"{done} jobs ended, records kept ({live_keys} records)", fmt(kept),
         f"**{fmt((kept - baseline) / jobs, 0)}**", fmt(kept_keys), f"**{fmt((kept_keys - base_keys) / jobs, 0)}**"],
        [f"after expiry and the sweep ({pruned} index entries pruned)", fmt(expired),
         f"**{fmt((expired - baseline) / jobs, 0)}**", fmt(expired_keys),
         f"**{fmt((expired_keys - base_keys) / jobs, 0)}**"],
    ]
    return Section(
        title="Retention: Redis bytes per job",
        setup=(f"{jobs} jobs, instant upstream, 1 s songs, each with an idempotency key; "
               f"`SONGQUEUE_JOB_RETENTION={RETENTION}`; one worker, running and idle at every reading. Redis "
               "`INFO memory` `used_memory` of the whole server; the broker's queues are empty at each reading."),
        table=harness.table(["reading", "used_memory", "per job", "bytes of all keys", "per job"], rows),
        notes=[f"`MEMORY USAGE` of one ended job's record: {fmt(sample)} bytes; of its idempotency key: "
               f"{fmt(idem)} bytes.",
               "Bytes of all keys = the sum of `MEMORY USAGE` over every key (SCAN): what the data costs, "
               "without Redis's own overhead (client buffers, hash-table growth, allocator). After expiry no "
               "key of a job is left (the metric counters are per provider, not per job); what `used_memory` "
               "keeps is Redis's overhead from the run, not data. The manifest in storage is the record."],
    )


def _key_bytes(client: redis.Redis) -> int:
    return sum(client.memory_usage(key) or 0 for key in client.scan_iter(count=1000))


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])
