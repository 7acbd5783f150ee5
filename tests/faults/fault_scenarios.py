"""The fault report: jobs under crashes and upstream faults must end right, paid once.

Each row runs real jobs on a private Redis, real Celery workers (each runs the watchdog
round itself: no beat anywhere), a callback receiver, and the sandbox gateway with faults
injected per job through directives or per row through crash points. Every row checks the
invariants of tests/faults/invariants.py for every job. `tests/faults/test_faults.py` runs
a few rows small and fast in `make test`; `make faults` runs them all and prints the table:

    python tests/faults/fault_scenarios.py [--jobs N] [--only NAME[,NAME...]] [--amqp URL] [--default-watchdog]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "deploy" / "local")]  # run as a script by `make faults`
import stack  # noqa: E402

from producer import JobState  # noqa: E402
from sandbox.faults import OUTCOMES  # noqa: E402
from tests.faults import invariants  # noqa: E402
from tests.faults.disruptions import (  # noqa: E402
    LIVE,
    Disruption,
    Fault,
    backlog_then_kill,
    crash_point_hit,
    kill_workers_twice_when,
    kill_workers_when,
    restart_redis_when,
)
from tests.faults.harness import GATEWAY_NAMES, SANDBOX_KEY, Harness, gateway  # noqa: E402
from workers.fault_points import POINTS  # noqa: E402

# Short timings so a row takes seconds, not minutes. The watchdog's are the ones a row's
# recovery time depends on; `--default-watchdog` (and the rows that say so) use the
# defaults (interval 10 s, grace 30 s) instead.
FAST = {
    "POLL_INITIAL_DELAY": "0.5", "POLL_MIN_INTERVAL": "0.5", "POLL_MAX_INTERVAL": "2",
    "RETRY_BASE_DELAY": "0.2", "RETRY_MAX_DELAY": "2", "HTTP_TIMEOUT": "5",
    "WATCHDOG_INTERVAL": "1", "WATCHDOG_GRACE": "4",
}
WATCHDOG = ("WATCHDOG_INTERVAL", "WATCHDOG_GRACE")
UDIO = "udio 302.ai"

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
    gateway: str = UDIO
    default_watchdog: bool = False  # the row measures recovery at the default watchdog settings
    appendfsync: str = "everysec"

    @property
    def row(self) -> str:
        return f"{self.name} · {self.gateway}"


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
    Scenario("worker SIGKILL during download", "sandbox:gen_time=1 sandbox:dl_slow=64",
             disrupt=kill_workers_when({JobState.DOWNLOADING}, every=False)),
    Scenario("Redis restart (SIGTERM, AOF) mid-generation", "sandbox:gen_time=8", disrupt=restart_redis_when(LIVE)),
]

# Where a step of that provider never runs, its points are never reached (MiniMax answers
# in the submit call: nothing to poll).
NOT_REACHED = {"minimax": {"poll.before_fetch", "poll.after_fetch", "poll.after_retry"},
               "suno": {"poll.after_retry"}}  # batch polled: a drainer fetches, no poll chain retries
# The rows' jobs belong to no playlist run; tests/integration/test_fences.py kills there.
NO_ROW = {"playlist.before_put"}
# Killed between intent and record of a paid submit, a job fails `submit_uncertain`.
POINT_ENDS = (SUCCESS, failed("submit_uncertain"))


def point_scenarios(gateways: tuple[str, ...] = GATEWAY_NAMES) -> list[Scenario]:
    """Every crash point x provider, twice: the whole worker dies at the point (SIGKILL to its
    main process and every pool child, as a machine that dies; a fresh worker starts after,
    and the default watchdog settings recover it), and only the pool child running the step
    dies (its worker's main process lives on and requeues the message at once)."""
    reached = [(name, point) for name in gateways for point in POINTS
               if point not in NO_ROW | NOT_REACHED.get(gateway(name, "").provider, set())]
    return [
        *[Scenario(f"worker killed at {point}", "sandbox:gen_time=2", POINT_ENDS, default_watchdog=True,
                   settings={"FAULT_POINT": f"{point}:kill_worker"}, disrupt=crash_point_hit(point), gateway=name)
          for name, point in reached],
        *[Scenario(f"pool child killed at {point}", "sandbox:gen_time=2", POINT_ENDS,
                   settings={"FAULT_POINT": f"{point}:kill"}, disrupt=crash_point_hit(point), gateway=name)
          for name, point in reached],
    ]


POINT_SCENARIOS = point_scenarios()
# The steps' last points, where a kill costs the most work: each hit twice in a row.
TWICE = ("submit.after_record", "poll.after_fetch", "download.after_put", "finalize.after_put",
         "send.after", "callback.after_post")
SUBMITTING_SLOWLY = "sandbox:submit_slow=2 sandbox:gen_time=2"
NEW_SCENARIOS = [
    # Redis dies with SIGKILL while the paid calls are in flight: with everysec up to a
    # second of writes (intents, messages) is gone; with always, none.
    *[Scenario(f"Redis SIGKILL (AOF {fsync}) while SUBMITTING", SUBMITTING_SLOWLY, POINT_ENDS,
               settings={"HTTP_TIMEOUT": "10"}, appendfsync=fsync,
               disrupt=restart_redis_when({JobState.SUBMITTING}, kill=True, every=False))
      for fsync in ("everysec", "always")],
    Scenario("workers only (no beat), default watchdog: SIGKILL twice during poll", "sandbox:gen_time=8",
             disrupt=kill_workers_twice_when(LIVE), default_watchdog=True),
    Scenario("watchdog's queue backed up: 2000 messages parked on the poll queue, SIGKILL during poll",
             "sandbox:gen_time=8", disrupt=backlog_then_kill(2000)),
    # Disk full as the store reports it (a transient `storage_unavailable`): retried, then
    # stored. And as a bare OSError from a write outside the store (the download's spool
    # file): the step dies unsorted and the watchdog resends it after the grace.
    *[Scenario(f"disk full (ENOSPC) in the store at {point}", "sandbox:gen_time=1",
               settings={"FAULT_POINT": f"{point}:storage_error"}, disrupt=crash_point_hit(point))
      for point in ("download.before_put", "finalize.before_put")],
    Scenario("disk full (bare ENOSPC OSError, as from the spool) at download.before_put", "sandbox:gen_time=1",
             settings={"FAULT_POINT": "download.before_put:oserror"}, disrupt=crash_point_hit("download.before_put")),
    *[Scenario(f"SIGKILL twice in a row at {point}", "sandbox:gen_time=2", POINT_ENDS,
               settings={"FAULT_POINT": f"{point}:kill"}, disrupt=crash_point_hit(point, times=2))
      for point in TWICE],
]
ALL = SCENARIOS + POINT_SCENARIOS + NEW_SCENARIOS


@dataclass
class Result:
    scenario: Scenario
    jobs: int
    succeeded: int
    failed_as_expected: Counter[str]
    unexpected: int
    lost: int
    submitted_twice: int
    paid_but_forgotten: int
    recoveries: list[float]  # per job the fault caught: seconds from the fault to its end
    broken: list[str]  # invariants that did not hold, one sentence each
    notes: list[str]

    @property
    def ok(self) -> bool:
        """A row holds when it ran jobs, its fault landed (in `broken` otherwise), and every
        invariant held for every job."""
        return bool(self.jobs) and not (self.unexpected or self.lost or self.submitted_twice or
                                        self.paid_but_forgotten or self.broken)

    @property
    def recovery_median(self) -> float | None:
        return statistics.median(self.recoveries) if self.recoveries else None


def run(scenario: Scenario, tmp: Path, sandbox_url: str, jobs: int, settings: dict[str, str],
        broker_url: str | None = None, timeout: float = 120) -> Result:
    """One row: its jobs, its fault, then every invariant. `timeout` bounds recovery: a job
    not ended that long after the fault (or after submit) counts as lost."""
    import redis
    import requests

    merged = {**settings, **scenario.settings}
    if scenario.default_watchdog:
        for name in WATCHDOG:
            merged.pop(name, None)
    h = Harness(tmp, sandbox_url, gateway(scenario.gateway, sandbox_url), merged, broker_url,
                appendfsync=scenario.appendfsync)
    broken: list[str] = []
    texts: dict[str, str] = {}
    fault: Fault | None = None
    faults_before = _sandbox_faults(sandbox_url)
    try:
        h.start_worker()
        tag = uuid.uuid4().hex[:8]
        for i in range(jobs):
            text = f"{scenario.name} {tag} {i} {scenario.directives}".strip()
            texts[h.submit(text)] = text
        if scenario.disrupt:
            fault = scenario.disrupt(h, list(texts))
        stack.wait_until(lambda: all(s is not None and s.terminal for s in h.states(list(texts))),
                         timeout, "every job to end", interval=0.2)
    except (TimeoutError, AssertionError) as exc:
        # The fault never landed, or jobs were left behind: the row reports it (and the
        # invariants name every job that did not end).
        broken.append(str(exc))
    except BaseException:
        h.stop()
        raise
    try:
        records = [h.queue.store.get(i) for i in texts]
        settled_at = _settle_callbacks(h, records)
        records = _after_archive(h, list(texts))
        _note_storage_faults(h, merged, records)
        stats = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json()
        broken += _directive_faults_missing(scenario, faults_before, stats.get("faults", {}))
        found = invariants.check(redis.Redis.from_url(h.redis_url), h.prefix, h.config, records, texts, stats,
                                 h.gateway.billed_by, h.callbacks(),
                                 resubmit=merged.get("UNCERTAIN_SUBMIT") == "resubmit")
    finally:
        h.stop()
    ends = [(r.state, r.error.code if r.error and r.state != JobState.SUCCEEDED else None) for r in records]
    succeeded = sum(end == SUCCESS and SUCCESS in scenario.expect for end in ends)
    expected = Counter(str(end[1]) for end in ends if end != SUCCESS and end in scenario.expect)
    lost = sum(not r.state.terminal for r in records)
    unexpected = [f"{r.id} {r.state.value} {r.error.code + ': ' + r.error.message if r.error else ''}"
                  for r, end in zip(records, ends) if end not in scenario.expect and r.state.terminal]
    if not records:
        broken.append("the row ran no jobs")
    if scenario.disrupt is not None and fault is None and not broken:
        broken.append("the row's fault did not land")
    recoveries = [r.transitions[-1].at - fault.at for r in records
                  if fault is not None and r.id in fault.jobs and r.state.terminal and r.transitions
                  and r.transitions[-1].at >= fault.at]
    if fault is not None and not recoveries and settled_at is not None:
        # The fault hit after every job had ended (a callback point): recovered once every
        # owed callback was delivered and settled.
        recoveries = [settled_at - fault.at]
    return Result(scenario, jobs, succeeded, expected, len(unexpected), lost, found.submitted_twice,
                  found.paid_but_forgotten, recoveries, broken + found.broken + unexpected, h.notes)


def _sandbox_faults(sandbox_url: str) -> dict[str, int]:
    import requests

    return dict(requests.get(f"{sandbox_url}/_sandbox/stats", timeout=10).json().get("faults", {}))


def _directive_faults_missing(scenario: Scenario, before: dict[str, int], after: dict[str, int]) -> list[str]:
    """A row whose directives inject faults proves the sandbox served each of them during the
    row (its own fault counters rose), so a row that expects success cannot pass by luck."""
    named = {token.split(":", 1)[1].split("=", 1)[0] for token in scenario.directives.split()
             if token.startswith("sandbox:")}
    return [f"the sandbox never served the fault {name!r} this row asked for"
            for name in sorted(named & set(OUTCOMES)) if after.get(name, 0) <= before.get(name, 0)]


def _settle_callbacks(h: Harness, records: list) -> float | None:
    """Callbacks are sent after the terminal write, and settled in the outbox after delivery:
    wait for both (the invariants then name any that did not happen). Returns when."""
    import redis

    from producer.core.store import keys

    ended = {(r.id, r.state.value) for r in records if r.state.terminal}
    client = redis.Redis.from_url(h.redis_url)

    def settled() -> bool:
        got = {(c.get("id"), c.get("state")) for c in h.callbacks() if c.get("event") != "job.progress"}
        owed = [client.zscore(keys.callback_outbox(h.prefix), job_id) for job_id, _ in ended]
        return ended <= got and all(score is None for score in owed)
    try:
        stack.wait_until(settled, 60, "every terminal callback delivered and settled", interval=0.2)
    except TimeoutError:
        return None
    return time.time()


def _after_archive(h: Harness, ids: list[str]) -> list:
    """The records once every ended job has its manifest: a job that did not succeed gets
    one from the archive task after its end (the invariants then check it like any object)."""
    def archived() -> list | None:
        records = [h.queue.store.get(i) for i in ids]
        return records if all(r.manifest is not None or not r.state.terminal for r in records) else None
    try:
        return stack.wait_until(archived, 30, "every ended job's manifest", interval=0.2)  # type: ignore[return-value]
    except TimeoutError:
        return [h.queue.store.get(i) for i in ids]


def _note_storage_faults(h: Harness, settings: dict[str, str], records: list) -> None:
    """A disk-full row shows what became of the error: counted as a transient fault and
    retried (the step's fault counter on the record), or a run that died of it unsorted."""
    if not settings.get("FAULT_POINT", "").endswith(("storage_error", "oserror")):
        return
    counts: Counter[str] = Counter()
    for record in records:
        counts.update({k: v for k, v in record.attempts.items() if k != "submit"})
    died = h.logs().count("raised unexpected: OSError")
    h.notes.append(f"step runs and faults on the records: {dict(counts)}; {died} run(s) died of it unsorted")


def table(results: list[Result]) -> str:
    lines = ["| row | provider | jobs | succeeded | failed as intended | lost | submitted twice "
             "| paid but forgotten | invariants | recovery median |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        recover = f"{r.recovery_median:.1f} s" if r.recovery_median is not None else "-"
        intended = sum(r.failed_as_expected.values())
        codes = ", ".join(f"`{c}`" + (f" x{n}" if n > 1 else "") for c, n in sorted(r.failed_as_expected.items()))
        failed_cell = f"{intended} ({codes})" if intended else "0"
        held = "hold" if not r.broken else f"**{len(r.broken)} broken**"
        lines.append(f"| {r.scenario.name} | {r.scenario.gateway} | {r.jobs} | {r.succeeded} | {failed_cell} "
                     f"| {r.lost} | {r.submitted_twice} | {r.paid_but_forgotten} | {held} | {recover} |")
    return "\n".join(lines)


def selected(only: str | None) -> list[Scenario]:
    """Rows whose name (with provider) contains any of the comma-separated filters."""
    wanted = [w.strip() for w in (only or "").split(",") if w.strip()]
    return [s for s in ALL if not wanted or any(w in s.row for w in wanted)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3, help="jobs per row")
    parser.add_argument("--only", default=os.environ.get("FAULTS"),
                        help="rows whose name contains any of these (comma-separated); FAULTS=... in make")
    parser.add_argument("--amqp", help="use this AMQP broker (Redis stays the job store)")
    parser.add_argument("--default-watchdog", action="store_true",
                        help="every row at the default watchdog settings (slow: about 40 s per crash row)")
    args = parser.parse_args()
    settings = dict(FAST)
    if args.default_watchdog:
        for name in WATCHDOG:
            settings.pop(name)
    rows = selected(args.only)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="songqueue-faults-") as tmp:
        sandbox, url = stack.start_sandbox("--api-key", SANDBOX_KEY, "--generation-time", "2",
                                           "--song-duration", "2", log=Path(tmp) / "sandbox.log")
        results = []
        try:
            for i, scenario in enumerate(rows):
                result = run(scenario, Path(tmp) / f"s{i}", url, args.jobs, settings, args.amqp, timeout=240)
                results.append(result)
                print(f"[{i + 1}/{len(rows)}] {'ok ' if result.ok else 'BAD'} {scenario.row}: "
                      f"recovery {result.recoveries} {result.notes}", file=sys.stderr)
                for line in result.broken:
                    print(f"      {line}", file=sys.stderr)
        finally:
            stack.stop(sandbox)
    print(report_header(results, args, time.monotonic() - started))
    print(table(results))
    return 0 if all(r.ok for r in results) else 1


def report_header(results: list[Result], args: argparse.Namespace, elapsed: float) -> str:
    def median_of(rows: list[Result]) -> str:
        recoveries = [r.recovery_median for r in rows if r.recovery_median is not None]
        return f"{statistics.median(recoveries):.1f} s over {len(recoveries)} rows" if recoveries else "none"

    at_default = [r for r in results if args.default_watchdog or r.scenario.default_watchdog]
    others = [r for r in results if r not in at_default]
    watchdog = ("every row at the defaults (interval 10 s, grace 30 s)" if args.default_watchdog else
                "whole-worker kills and the no-beat row at the defaults (interval 10 s, grace 30 s), "
                "every other row at interval 1 s, grace 4 s")
    return "\n".join([
        f"Broker: {'RabbitMQ' if args.amqp else 'Redis'}. Rows: {len(results)}, jobs per row: {args.jobs}. "
        f"Crash points: {len(POINTS)}. Watchdog: {watchdog}.",
        f"Median of the rows' recovery medians: at the default watchdog {median_of(at_default)}; "
        f"at the short one {median_of(others)}.",
        f"Rows that held every invariant: {sum(r.ok for r in results)} of {len(results)}. "
        f"Run time {elapsed / 60:.1f} min; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
