"""Nothing grows forever: fill the store, let retention pass, sweep, then every key of every
pattern in producer/core/store/keys.py names or holds only live ids.

Time passing is simulated the only way Redis allows without waiting: every key whose
expiry falls before `later` is deleted (what Redis would have done by then), and the sweep
runs with `now=later`. Each function of keys.py must be classified in `PATTERNS`: a new key
pattern without a rule for what it may hold fails the test until it gets one.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

import redis

from producer.core.models.job_record import JobRecord, JobState
from producer.core.models.playlist_run import PlaylistRun, RunState
from producer.core.store import keys
from producer.core.store.job_store import JobStore
from producer.core.store.playlist_store import PlaylistStore
from tests.support.job_paths import walk

RETENTION = 1000
REQUEST = {"prompt": "a song", "lyrics": "", "config": {"mode": "regular"}}

# How each key pattern refers to jobs or runs:
#   "job-members" / "run-members": a sorted set whose members are job / run ids
#   "tenant-members": a sorted set of "{tenant}:{job id}"; "playlist-members": "{playlist}:{run id}"
#   "job-value": a string holding a job id; "job-in-name": the key names one job (its last part)
#   "run-value": a string holding a run id; "record": the record itself; "other": no job or run ids
PATTERNS: dict[str, str] = {
    "job": "record", "all_jobs": "job-members", "tenant_jobs": "job-members", "tenant_ended": "tenant-members",
    "jobs_in_state": "job-members", "idempotency": "job-value", "due": "job-members", "poll_due": "job-members",
    "watchdog_lock": "other", "watchdog_last_round": "other", "upstream_task": "job-value",
    "poll_link": "job-in-name", "hook_poll": "job-in-name", "in_flight": "job-members",
    "key_in_flight": "job-members", "key_spend": "other", "rate_bucket": "other", "spend": "other",
    "reservations": "other", "metric": "other", "playlist_run": "record", "playlist_runs": "run-members",
    "playlist_ended": "playlist-members", "retention_sweep_lock": "other", "playlist_slot": "run-value",
    "playlist_open": "run-members", "playlist_sweep_lock": "other", "callback_outbox": "job-members",
    "batch_cap": "other", "console_session": "other", "console_sessions_of_key": "other",
    # Parked callback deliveries name a job inside a JSON member, and leave by themselves: each is
    # claimed and sent within the schedule's longest wait, and the task ends at once for a gone job.
    "callback_parked": "other", "callback_endpoints": "other", "callback_endpoint": "other",
    "callback_progress_gate": "job-in-name",
    "parked": "job-members", "key_queued": "job-members", "key_streams": "other", "key_rate": "other",
    "poll_durations": "other", "poll_progress_errors": "other",
}


def _key_functions() -> dict[str, Callable[..., str]]:
    return {name: fn for name, fn in inspect.getmembers(keys, inspect.isfunction)
            if fn.__module__ == keys.__name__ and not name.startswith("_")}


def test_every_key_pattern_has_a_rule() -> None:
    assert sorted(_key_functions()) == sorted(PATTERNS)


def _expire_until(client: redis.Redis, prefix: str, later: float) -> int:
    """Delete every key of `prefix` whose expiry falls before `later`: Redis's work by then."""
    gone = 0
    now = time.time()
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        ttl = client.pttl(key)
        if ttl >= 0 and now + ttl / 1000 <= later:
            client.delete(key)
            gone += 1
    return gone


def _fill(store: JobStore, runs: PlaylistStore) -> None:
    for n in range(12):
        tenant = ("alpha", "beta", "default")[n % 3]
        job_id = f"j{n}"
        store.create(JobRecord(id=job_id, provider="udio", model="udio32-v1.5", request=REQUEST, tenant=tenant,
                               idempotency_key=f"order-{n}", api_key="k1" if n % 2 else None), check_in=60)
        store.index_upstream_task("udio", f"task-{n}", job_id, RETENTION / 2)
        store.claim_hook_poll(job_id, 5)
        ending = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT, None, None)[n % 6]
        if ending is None:
            walk(store, job_id, JobState.GENERATING)  # live: in both in-flight sets, due, indexed
            continue
        walk(store, job_id, ending)
        store.owe_callback(job_id, 5)
        store.callback_settled(job_id)
    for n, ending in enumerate((RunState.SUCCEEDED, None)):
        run = PlaylistRun(id=f"r{n}", playlist="evening", album="evening", provider="udio", storage_prefix="p",
                          trigger="manual", requests=[], min_success=0, timeout=60)
        runs.create(run, check_in=60)
        if ending is not None:
            runs.apply(run.id, {RunState.CREATING}, to=ending)


def test_after_retention_and_a_sweep_every_index_holds_only_live_ids(redis_client: redis.Redis,
                                                                    key_prefix: str) -> None:
    store = JobStore(redis_client, key_prefix, retention=RETENTION)
    runs = PlaylistStore(redis_client, key_prefix, retention=RETENTION)
    _fill(store, runs)
    assert redis_client.zcard(keys.tenant_jobs(key_prefix, "alpha")) == 4  # filled: the check below can fail
    later = time.time() + RETENTION + 1
    assert _expire_until(redis_client, key_prefix, later) > 0
    assert store.prune_ended(later) > 0 and runs.prune_ended(later) > 0

    live_jobs = {k.decode().rsplit(":", 1)[1] for k in redis_client.scan_iter(match=f"{key_prefix}:job:*")}
    live_runs = {k.decode().rsplit(":", 1)[1] for k in redis_client.scan_iter(match=f"{key_prefix}:playlist:run:*")}
    assert live_jobs == {"j4", "j5", "j10", "j11"} and live_runs == {"r1"}
    for name, key_text in _keys_by_pattern(redis_client, key_prefix).items():
        for key in key_text:
            _check(redis_client, PATTERNS[name], key, live_jobs, live_runs)
    assert redis_client.zcard(keys.tenant_jobs(key_prefix, "alpha")) == 0  # j0, j3, j6, j9 ended
    assert redis_client.zcard(keys.tenant_jobs(key_prefix, "beta")) == 2  # j4, j10 live
    assert store.redis.zcard(keys.tenant_ended(key_prefix)) == 0


def _keys_by_pattern(client: redis.Redis, prefix: str) -> dict[str, list[str]]:
    """Every key of the prefix, by the keys.py function whose pattern it matches; a key that
    matches none fails (an unnamed key is a key nobody prunes)."""
    import fnmatch
    globs = []
    for name, fn in _key_functions().items():
        params = list(inspect.signature(fn).parameters.values())[1:]
        required = [p for p in params if p.default is inspect.Parameter.empty]
        for count in {len(required), len(params)}:  # with and without the optional arguments
            globs.append((name, fn(prefix, *["*"] * count)))
    found: dict[str, list[str]] = {}
    for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw.decode()
        # the most specific pattern (the longest literal) wins: "…:job:*" vs "…:jobs"
        matches = sorted((g for g in globs if fnmatch.fnmatchcase(key, g[1])), key=lambda g: -len(g[1].replace("*", "")))
        if (key.startswith(f"{prefix}:apikey:") and not key.endswith((":inflight", ":queued", ":parked"))
                and ":spend:" not in key):
            continue  # the key store's own records (producer/core/store/api_keys.py), not job indexes
        assert matches, f"{key} matches no pattern of keys.py"
        found.setdefault(matches[0][0], []).append(key)
    return found


def _check(client: redis.Redis, rule: str, key: str, live_jobs: set[str], live_runs: set[str]) -> None:
    if rule in ("job-members", "run-members"):
        live = live_jobs if rule == "job-members" else live_runs
        members = {m.decode() for m in client.zrange(key, 0, -1)}
        assert members <= live, f"{key} holds ended ids {sorted(members - live)}"
    elif rule in ("tenant-members", "playlist-members"):
        live = live_jobs if rule == "tenant-members" else live_runs
        ids = {m.decode().partition(":")[2] for m in client.zrange(key, 0, -1)}
        assert ids <= live, f"{key} holds ended ids {sorted(ids - live)}"
    elif rule in ("job-value", "run-value"):
        value = (client.get(key) or b"").decode()
        assert value in (live_jobs if rule == "job-value" else live_runs), f"{key} points at gone {value}"
    elif rule == "job-in-name":
        assert key.rsplit(":", 1)[1] in live_jobs, f"{key} names a gone job"
