"""The checker, in Jepsen's terms: what became of every job of a run, from songqueue's
records and the gateway's own bills.

Each job ends in one of: **ok** (SUCCEEDED), **failed** (ended with an error songqueue
recorded: not a loss, the job says why), **stuck** (not ended at the bound, but the
watchdog's due set still lists it: something will move it), **lost** (not ended and
nothing tracks it, or its record is gone: an acknowledged submit forgotten). Across those:
**paid twice** (the sandbox billed its unique prompt more than once), **paid but
forgotten** (billed, and songqueue neither charged it nor can say where the paid work is,
or has no record of the job at all), **recovered** (a fault caught it mid-flight and it
ended anyway, after the heal), and **ends undone** (the driver saw it ended, later not:
the store lost an acknowledged end, as a minority master's writes are). The per-job
invariants of tests/faults/invariants.py (cost = billed calls x price, stored bytes match
their sha256, every index agrees) run on every job that has a record; their breaches are
counted apart.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import redis

from producer.core.models.job_record import JobRecord, JobState
from producer.core.store import keys
from tests.faults import invariants

BILLED_BY = "submits_by_prompt"


@dataclass
class Verdict:
    jobs: int = 0
    ok: int = 0
    failed: int = 0
    lost: int = 0
    stuck: int = 0
    paid_twice: int = 0
    forgotten: int = 0
    caught: int = 0  # in flight when the fault struck
    recovered: int = 0
    undone: int = 0  # seen ended by the driver, later not ended: the store lost an acknowledged end
    recovery_s: list[float] = field(default_factory=list)  # heal -> end, for the recovered jobs
    broken: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # failed jobs by error code

    def fraction(self, count: int) -> str:
        return f"{count} ({count / self.jobs:.1%})" if self.jobs and count else str(count)

    def recovery(self) -> str:
        if not self.recovery_s:
            return "-"
        return f"{statistics.median(self.recovery_s):.1f} / {max(self.recovery_s):.1f} s"


def check(client: redis.Redis, prefix: str, settings: Any, texts: dict[str, str],
          records: dict[str, JobRecord | None], stats: dict[str, Any], caught: set[str],
          ended_at: dict[str, float], healed_at: float) -> Verdict:
    """`texts`: job id -> its unique prompt; `records`: job id -> its record at the end (None
    when songqueue has none); `caught`: the jobs in flight when the fault struck; `ended_at`:
    when the driver first saw each job ended (monotonic), `healed_at` when the fault healed."""
    billed = invariants.billed_calls(stats, BILLED_BY, texts)
    verdict = Verdict(jobs=len(texts), caught=len(caught))
    present = [r for r in records.values() if r is not None]
    for job_id in texts:
        record = records[job_id]
        verdict.paid_twice += billed[job_id] > 1
        if record is None:
            verdict.lost += 1
            verdict.forgotten += billed[job_id] > 0
            continue
        verdict.forgotten += invariants._forgotten(settings, record, billed[job_id])
        if record.state == JobState.SUCCEEDED:
            verdict.ok += 1
        elif record.state.terminal:
            verdict.failed += 1
            code = record.error.code if record.error else "?"
            verdict.errors[code] = verdict.errors.get(code, 0) + 1
        elif client.zscore(keys.due(prefix), job_id) is not None:
            verdict.stuck += 1
        else:
            verdict.lost += 1
        if job_id in caught and record.state.terminal and ended_at.get(job_id, 0) >= healed_at:
            verdict.recovered += 1
            verdict.recovery_s.append(ended_at[job_id] - healed_at)
    if present:
        found = invariants.check(client, prefix, settings, present, {r.id: texts[r.id] for r in present}, stats,
                                 BILLED_BY, [])
        # "not terminal" and "took N paid submits" are the stuck/lost and paid-twice columns already
        verdict.broken = [b for b in found.broken if "not terminal" not in b and "paid submits" not in b]
    return verdict
