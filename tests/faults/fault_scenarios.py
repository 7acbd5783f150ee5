"""Fault scenarios: jobs under crashes and upstream faults must end right, once billed.

Each scenario runs real jobs on a private Redis, real Celery workers (each runs the
watchdog round itself: no beat anywhere), and the sandbox gateway with faults injected per job through prompt
directives. `tests/faults/test_faults.py` runs every scenario small and fast; `make faults`
runs them with the default watchdog settings and prints the report table:

    python tests/faults/fault_scenarios.py [--jobs N] [--only NAME] [--amqp URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "deploy" / "local")]  # run as a script by `make faults`
import stack  # noqa: E402

from producer import JobState, Settings, SongQueue  # noqa: E402
from tests.support.ports import start_on_free_port  # noqa: E402

SANDBOX_KEY = "sk-faultREPORTkey0123456789abcdef"
# Short timings so a scenario takes seconds, not minutes; the report overrides the
# watchdog's back to its defaults to show honest recovery times.
FAST = {
    "POLL_INITIAL_DELAY": "0.5", "POLL_MIN_INTERVAL": "0.5", "POLL_MAX_INTERVAL": "2",
    "RETRY_BASE_DELAY": "0.2", "RETRY_MAX_DELAY": "2", "HTTP_TIMEOUT": "5",
    "WATCHDOG_INTERVAL": "1", "WATCHDOG_GRACE": "4",
}


@dataclass
class Harness:
    """One scenario's songqueue: private Redis, workers, storage; the shared sandbox."""

    tmp: Path
    sandbox_url: str
    settings: dict[str, str]
    broker_url: str | None = None
    redis_proc: object = None
    redis_url: str = ""
    workers: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prefix = f"f{uuid.uuid4().hex[:8]}"
        self.redis_proc, self.redis_url = start_on_free_port(lambda port: stack.start_redis(self.tmp / "redis", port))
        overrides = {
            "BROKER_URL": self.broker_url or self.redis_url,
            "REDIS_URL": self.redis_url,
            "KEY_PREFIX": self.prefix,
            "UDIO_BASE_URL": self.sandbox_url,
            "UDIO_API_KEY": SANDBOX_KEY,
            "STORAGE_URL": (self.tmp / "objects").as_uri(),
            "ALLOW_PRIVATE_NETWORKS": "true",  # the sandbox serves its files from 127.0.0.1
            **self.settings,
        }
        self.env = stack.worker_env({f"SONGQUEUE_{k}": v for k, v in overrides.items()})
        # Test-only, read by the workers from the environment (not a Settings field).
        overrides.pop("FAULT_POINT", None)
        if self.broker_url:
            purge_queues(self.broker_url)
        self.queue = SongQueue(Settings(**{k.lower(): v for k, v in overrides.items()}))

    def start_worker(self, concurrency: int = 2) -> None:
        name = f"w{len(self.workers)}"
        self.workers.append(stack.start_worker(self.env, self.tmp / f"{name}.log", name=name, concurrency=concurrency))

    def kill_workers(self) -> None:
        for proc in self.workers:
            stack.kill(proc)

    def restart_redis(self) -> None:
        port = stack.redis_port(self.redis_url)
        stack.stop(self.redis_proc)  # SIGTERM: Redis flushes its append-only file and exits
        self.redis_proc, _ = stack.start_redis(self.tmp / "redis", port)

    def states(self, ids: list[str]) -> list[JobState | None]:
        try:
            return [self.queue.store.get(i).state for i in ids]
        except redis.RedisError:
            return [None] * len(ids)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp.glob("*.log"))

    def stop(self) -> None:
        for proc in [*self.workers, self.redis_proc]:
            stack.stop(proc)


def purge_queues(url: str) -> None:
    from kombu import Connection

    from producer.task_names import ALL_QUEUES

    with Connection(url) as conn:
        channel = conn.default_channel
        for name in ALL_QUEUES:
            try:
                channel.queue_purge(name)
            except Exception:  # noqa: BLE001 - a queue that does not exist yet has nothing to purge
                channel = conn.channel()


Disruption = Callable[[Harness, list[str]], float]


def wait_for(h: Harness, ids: list[str], states: set[JobState], every: bool, timeout: float = 60) -> None:
    """Until all (every=True) or any of the jobs are in `states`."""
    test = all if every else any
    stack.wait_until(lambda: test(s in states for s in h.states(ids)), timeout,
                     f"{'all' if every else 'a'} job in {sorted(s.value for s in states)}")


def kill_workers_when(states: set[JobState], every: bool = True) -> Disruption:
    """SIGKILL every worker (pool children too) once jobs are in `states`; start a fresh one."""
    def disrupt(h: Harness, ids: list[str]) -> float:
        wait_for(h, ids, states, every)
        fault_at = time.monotonic()
        h.kill_workers()
        h.start_worker()
        return fault_at
    return disrupt


def kill_workers_twice_when(states: set[JobState]) -> Disruption:
    """Two SIGKILLs in a row (the second hits the fresh worker right after it is ready)."""
    def disrupt(h: Harness, ids: list[str]) -> float:
        wait_for(h, ids, states, every=True)
        h.kill_workers()
        h.start_worker()
        fault_at = time.monotonic()
        h.kill_workers()
        h.start_worker()
        return fault_at
    return disrupt


def crash_point_hit(point: str) -> Disruption:
    """The fault is the point's own action; this waits until a worker reached the point."""
    from workers.fault_points import hit_key

    def disrupt(h: Harness, ids: list[str]) -> float:
        client = redis.Redis.from_url(h.redis_url)
        stack.wait_until(lambda: client.exists(hit_key(h.prefix, point)), 60, f"a worker at {point}")
        return time.monotonic()
    return disrupt


def restart_redis_when(states: set[JobState]) -> Disruption:
    def disrupt(h: Harness, ids: list[str]) -> float:
        wait_for(h, ids, states, every=True)
        fault_at = time.monotonic()
        h.restart_redis()
        return fault_at
    return disrupt


SUCCESS = (JobState.SUCCEEDED, None)


def failed(code: str, state: JobState = JobState.FAILED) -> tuple[JobState, str]:
    return (state, code)


@dataclass(frozen=True)
class Scenario:
    name: str
    directives: str = ""
    # Acceptable ends: (state, error code); anything else counts as unexpected.
    expect: tuple[tuple[JobState, str | None], ...] = (SUCCESS,)
    settings: dict[str, str] = field(default_factory=dict)
    disrupt: Disruption | None = None


LIVE = {JobState.SUBMITTED, JobState.GENERATING}
SCENARIOS = [
    Scenario("no faults"),
    Scenario("upstream 429 on submit, 429 / 5xx (HTML) on fetch",
             "sandbox:submit_429=1 sandbox:submit_429_noretry=1 sandbox:fetch_500=2 sandbox:fetch_429=1"),
    # A 5xx or a dropped connection after the request left is uncertain: never resubmitted.
    Scenario("submit 5xx (HTML, outcome unknown)", "sandbox:submit_500", (failed("submit_uncertain"),)),
    Scenario("submit accepted, then 502", "sandbox:submit_accept_502", (failed("submit_uncertain"),)),
    Scenario("submit accepted, then connection dropped", "sandbox:submit_accept_drop", (failed("submit_uncertain"),)),
    Scenario("fetch timeouts and malformed JSON", "sandbox:fetch_slow=3 sandbox:fetch_malformed=2",
             settings={"HTTP_TIMEOUT": "1"}),
    Scenario("submit read timeout (outcome unknown)", "sandbox:submit_slow=3",
             (failed("submit_uncertain"),), settings={"HTTP_TIMEOUT": "1"}),
    Scenario("upstream 400", "sandbox:submit_400", (failed("upstream_rejected"),)),
    Scenario("code != success", "sandbox:submit_error=insufficient_quota", (failed("upstream_rejected"),)),
    Scenario("upstream FAILURE", "sandbox:failure", (failed("upstream_failure"),)),
    Scenario("no answer by the deadline", "sandbox:never_finish",
             (failed("upstream_deadline", JobState.TIMED_OUT),), settings={"UDIO_DEADLINE": "4"}),
    Scenario("download reset / truncated / 500", "sandbox:dl_reset=1 sandbox:dl_truncate=1 sandbox:dl_500=1"),
    Scenario("download 403", "sandbox:dl_403", (failed("download_failed"),)),
    # Song and cover both answer HTML: whichever download runs first names the failure.
    Scenario("download is an HTML page", "sandbox:dl_html",
             (failed("download_not_audio"), failed("download_not_image"))),
    Scenario("download .../None.mp3", "sandbox:dl_none_mp3", (failed("download_failed"),)),
    Scenario("download over the size cap", "", (failed("download_too_large"),),
             settings={"MAX_DOWNLOAD_BYTES": "20000"}),
    # Killed mid-call, the paid submit may have gone through: those jobs fail for an
    # operator (SONGQUEUE_UNCERTAIN_SUBMIT=fail); the jobs not yet started complete.
    Scenario("worker SIGKILL during submit", "sandbox:submit_slow=4", (SUCCESS, failed("submit_uncertain")),
             settings={"HTTP_TIMEOUT": "10"}, disrupt=kill_workers_when({JobState.SUBMITTING}, every=False)),
    Scenario("worker SIGKILL during poll", "sandbox:gen_time=8", disrupt=kill_workers_when(LIVE)),
    Scenario("workers only (no beat): SIGKILL twice during poll", "sandbox:gen_time=8",
             disrupt=kill_workers_twice_when(LIVE)),
    Scenario("worker SIGKILL during download", "sandbox:gen_time=1 sandbox:dl_slow=64",
             disrupt=kill_workers_when({JobState.DOWNLOADING}, every=False)),
    Scenario("Redis restart (AOF) mid-generation", "sandbox:gen_time=8", disrupt=restart_redis_when(LIVE)),
]


# Crash points (workers/fault_points.py): each worker SIGKILLs itself once at the point.
# Killed mid-submit, a paid call may have gone through: submit_uncertain, as intended.
# (The callback points need a receiver; they run in tests/integration, not here.)
CRASH_POINTS = ["submit.before_call", "submit.after_call", "submit.after_record", "poll.before_fetch",
                "poll.after_fetch", "download.before_put", "download.after_put", "finalize.before_put",
                "finalize.after_put", "send.before", "send.after"]
POINT_SCENARIOS = [
    Scenario(f"crash point {point} (kill)", "sandbox:gen_time=2", (SUCCESS, failed("submit_uncertain")),
             settings={"FAULT_POINT": f"{point}:kill"}, disrupt=crash_point_hit(point))
    for point in CRASH_POINTS
]


@dataclass
class Result:
    scenario: str
    jobs: int
    succeeded: int
    failed_as_expected: int
    unexpected: int
    lost: int
    submitted_twice: int
    recover_s: float | None
    details: list[str]

    @property
    def ok(self) -> bool:
        return self.unexpected == 0 and self.lost == 0 and self.submitted_twice == 0


def run(scenario: Scenario, tmp: Path, sandbox_url: str, jobs: int, settings: dict[str, str],
        broker_url: str | None = None, timeout: float = 120) -> Result:
    import requests

    h = Harness(tmp, sandbox_url, {**settings, **scenario.settings}, broker_url)
    try:
        h.start_worker()
        tag = uuid.uuid4().hex[:8]
        prompts = [f"{scenario.name} {tag} {i} {scenario.directives}".strip() for i in range(jobs)]
        ids = [h.queue.submit({"prompt": p}).id for p in prompts]
        fault_at = scenario.disrupt(h, ids) if scenario.disrupt else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(s is not None and s.terminal for s in h.states(ids)):
            time.sleep(0.2)
        done_at = time.monotonic()
        records = [h.queue.store.get(i) for i in ids]
        submits = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json()["submits_by_prompt"]
    finally:
        h.stop()
    ends = [(r.state, r.error.code if r.error and r.state != JobState.SUCCEEDED else None) for r in records]
    succeeded = sum(end == SUCCESS and SUCCESS in scenario.expect for end in ends)
    expected_failures = sum(end != SUCCESS and end in scenario.expect for end in ends)
    lost = sum(not r.state.terminal for r in records)
    good = succeeded + expected_failures
    details = [f"{r.id} {r.state.value} {r.error.code + ': ' + r.error.message if r.error else ''}"
               for r, end in zip(records, ends) if end not in scenario.expect]
    return Result(
        scenario=scenario.name, jobs=jobs, succeeded=succeeded, failed_as_expected=expected_failures,
        unexpected=jobs - good - lost, lost=lost,
        submitted_twice=sum(submits.get(p, 0) > 1 for p in prompts),
        recover_s=(done_at - fault_at) if fault_at is not None else None, details=details,
    )


def table(results: list[Result]) -> str:
    lines = ["| scenario | jobs | succeeded | failed as expected | unexpected | lost | submitted twice | time to recover |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        recover = f"{r.recover_s:.1f} s" if r.recover_s is not None else "-"
        lines.append(f"| {r.scenario} | {r.jobs} | {r.succeeded} | {r.failed_as_expected} | {r.unexpected} "
                     f"| {r.lost} | {r.submitted_twice} | {recover} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--only", help="run scenarios whose name contains this")
    parser.add_argument("--amqp", help="use this AMQP broker (Redis stays the job store)")
    parser.add_argument("--fast-watchdog", action="store_true", help="short watchdog grace, as in the tests")
    args = parser.parse_args()
    settings = dict(FAST)
    if not args.fast_watchdog:
        # Defaults of the real settings, so the recovery column is what production sees.
        settings.pop("WATCHDOG_INTERVAL")
        settings.pop("WATCHDOG_GRACE")
    with tempfile.TemporaryDirectory(prefix="songqueue-faults-") as tmp:
        sandbox, url = stack.start_sandbox("--api-key", SANDBOX_KEY, "--generation-time", "2",
                                           "--song-duration", "2", log=Path(tmp) / "sandbox.log")
        results = []
        try:
            for i, scenario in enumerate(s for s in SCENARIOS + POINT_SCENARIOS if not args.only or args.only in s.name):
                result = run(scenario, Path(tmp) / f"s{i}", url, args.jobs, settings, args.amqp, timeout=240)
                results.append(result)
                print(f"{'ok ' if result.ok else 'BAD'} {scenario.name}: {result}", file=sys.stderr)
        finally:
            stack.stop(sandbox)
    broker = "RabbitMQ" if args.amqp else "Redis"
    recovers = [r.recover_s for r in results if r.recover_s is not None]
    print(f"Broker: {broker}. Jobs per scenario: {args.jobs}. "
          f"Median time to recover after a crash: {statistics.median(recovers):.1f} s\n" if recovers else "")
    print(table(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
