"""A job's timeline, one row per run: a retry (FAILED/TIMED_OUT -> QUEUED) starts run 2.

Each run lists the states it passed through with their share of that run's time, so a
retried job's page shows "run 1" ending FAILED and "run 2" from its new QUEUED, not one
merged bar.
"""

from __future__ import annotations

import time
from typing import Any

from producer.core.models.job_record import JobRecord, JobState, Transition


def _split(marks: list[Transition]) -> list[list[Transition]]:
    runs: list[list[Transition]] = []
    for mark in marks:
        if not runs or (mark.state == JobState.QUEUED and runs[-1][-1].state.terminal):
            runs.append([])
        runs[-1].append(mark)
    return runs


def runs_of(record: JobRecord) -> list[dict[str, Any]]:
    """[{"number", "spans": [{"state", "seconds", "share"}]}], oldest run first."""
    end_of_job = record.updated_at if record.state.terminal else time.time()
    runs = _split(list(record.transitions))
    out = []
    for n, marks in enumerate(runs, start=1):
        last = n == len(runs)
        # A run before the last ends at its terminal mark; the last one now (or at the job's end).
        end = end_of_job if last else marks[-1].at
        bounds = [(t.state.value, t.at, marks[i + 1].at if i + 1 < len(marks) else end) for i, t in enumerate(marks)]
        total = max(end - marks[0].at, 1e-6)
        spans = [{"state": s, "seconds": round(b - a, 2), "share": max(0.5, 100 * (b - a) / total)} for s, a, b in bounds]
        out.append({"number": n, "spans": spans})
    return out
