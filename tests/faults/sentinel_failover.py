"""Sentinel failover: the Redis master SIGKILLed while jobs are in flight.

A real master, replica and three sentinels (tests/support/sentinel_cluster.py), real
Celery workers and the sandbox gateway; the broker and the job store both reach Redis
through the sentinels (SONGQUEUE_BROKER_URL = SONGQUEUE_REDIS_URL = sentinel://...). Once
every job is generating upstream the master is SIGKILLed; the fault counts only when the
master really died of it and every sentinel names the replica as the new master. Then
every job must end: none lost, none submitted twice (the sandbox counts the submits of
each prompt). Measured from the kill: the failover (all sentinels agree), the first job
change written after it, and the last job's end.

`make faults` runs it after the other rows (default watchdog settings, as production);
tests/faults/test_sentinel_failover.py runs it small and fast.

    python tests/faults/sentinel_failover.py [--jobs N] [--fast-watchdog]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "deploy" / "local")]  # run as a script by `make faults`
import stack  # noqa: E402

from producer import JobState, Settings, SongQueue  # noqa: E402
from tests.faults.fault_scenarios import FAST  # noqa: E402
from tests.faults.harness import SANDBOX_KEY  # noqa: E402
from tests.support import sentinel_cluster  # noqa: E402

NAME = "Redis master SIGKILL, Sentinel failover"
LIVE = {JobState.SUBMITTED, JobState.GENERATING}


@dataclass
class FailoverResult:
    jobs: int
    succeeded: int
    lost: int
    submitted_twice: int
    master_exit: int  # the killed master's exit status: -9 proves the SIGKILL landed
    failover_s: float  # kill -> every sentinel names the replica
    first_change_s: float | None  # kill -> the first job change written after the failover
    all_ended_s: float | None  # kill -> the last job terminal
    details: list[str]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.submitted_twice == 0 and self.succeeded == self.jobs


def run(tmp: Path, sandbox_url: str, jobs: int, settings: dict[str, str], timeout: float = 240) -> FailoverResult:
    import requests

    cluster = sentinel_cluster.start(tmp / "redis")
    workers = []
    try:
        overrides = {
            "BROKER_URL": cluster.url, "REDIS_URL": cluster.url, "SENTINEL_MASTER": cluster.name,
            "KEY_PREFIX": f"s{uuid.uuid4().hex[:8]}", "UDIO_BASE_URL": sandbox_url, "UDIO_API_KEY": SANDBOX_KEY,
            "STORAGE_URL": (tmp / "objects").as_uri(), "ALLOW_PRIVATE_NETWORKS": "true",
            # What docs/operations.md asks of a Sentinel deployment: no paid call on an
            # intent that only the master holds.
            "REDIS_MIN_REPLICAS": "1", **settings,
        }
        env = stack.worker_env({f"SONGQUEUE_{k}": v for k, v in overrides.items()})
        queue = SongQueue(Settings(**{k.lower(): v for k, v in overrides.items()}))
        workers.append(stack.start_worker(env, tmp / "w0.log", name="w0", concurrency=2))
        tag = uuid.uuid4().hex[:8]
        prompts = [f"sentinel failover {tag} {i} sandbox:gen_time=8" for i in range(jobs)]
        ids = [queue.submit({"prompt": p}).id for p in prompts]

        def seen() -> list[tuple[JobState, float] | None]:
            try:
                return [(r.state, r.progress) for r in (queue.store.get(i) for i in ids)]
            except redis.RedisError:  # the master is gone and no replica promoted yet
                return [None] * len(ids)

        stack.wait_until(lambda: all(s is not None and s[0] in LIVE for s in seen()), 90, "every job in flight")
        before = seen()
        killed_at = time.monotonic()
        master_exit = cluster.kill_master()
        stack.wait_until(lambda: cluster.all_agree(cluster.replica.port), 60, "every sentinel to name the replica")
        failover_s = time.monotonic() - killed_at

        first_change_s = all_ended_s = None
        deadline = killed_at + timeout
        while time.monotonic() < deadline:
            now = seen()
            if first_change_s is None and any(n is not None and n != b for n, b in zip(now, before)):
                first_change_s = time.monotonic() - killed_at
            if all(n is not None and n[0].terminal for n in now):
                all_ended_s = time.monotonic() - killed_at
                break
            time.sleep(0.1)
        records = [queue.store.get(i) for i in ids]
        submits = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json()["submits_by_prompt"]
    finally:
        for proc in workers:
            stack.stop(proc)
        cluster.stop()
    return FailoverResult(
        jobs=jobs, succeeded=sum(r.state == JobState.SUCCEEDED for r in records),
        lost=sum(not r.state.terminal for r in records),
        submitted_twice=sum(submits.get(p, 0) > 1 for p in prompts), master_exit=master_exit,
        failover_s=failover_s, first_change_s=first_change_s, all_ended_s=all_ended_s,
        details=[f"{r.id} {r.state.value} {r.error.code if r.error else ''}" for r in records
                 if r.state != JobState.SUCCEEDED])


def table(result: FailoverResult) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"
    return "\n".join([
        "| scenario | jobs | succeeded | lost | submitted twice | failover | first change after | all ended |",
        "|---|---|---|---|---|---|---|---|",
        f"| {NAME} | {result.jobs} | {result.succeeded} | {result.lost} | {result.submitted_twice} "
        f"| {seconds(result.failover_s)} | {seconds(result.first_change_s)} | {seconds(result.all_ended_s)} |",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--fast-watchdog", action="store_true", help="short watchdog grace, as in the tests")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, data) and print it")
    args = parser.parse_args()
    settings = dict(FAST)
    if not args.fast_watchdog:
        settings.pop("WATCHDOG_INTERVAL")
        settings.pop("WATCHDOG_GRACE")
    kept = tempfile.mkdtemp(prefix="songqueue-sentinel-") if args.keep else None
    with tempfile.TemporaryDirectory(prefix="songqueue-sentinel-") as tmp:
        tmp = kept or tmp
        sandbox, url = stack.start_sandbox("--api-key", SANDBOX_KEY, "--generation-time", "2",
                                           "--song-duration", "2", log=Path(tmp) / "sandbox.log")
        try:
            result = run(Path(tmp), url, args.jobs, settings)
        finally:
            stack.stop(sandbox)
            if args.keep:
                print(f"logs and data kept in {tmp}", file=sys.stderr)
    print(f"{'ok ' if result.ok else 'BAD'} {NAME}: master exit {result.master_exit}; {result.details}",
          file=sys.stderr)
    print(table(result))
    return 0 if result.ok and result.master_exit == -9 else 1


if __name__ == "__main__":
    sys.exit(main())
