"""`songqueue status --timeline`: a job's states as bars to scale, one row per state entered.

    QUEUED      ##                                            0.4s
    SUBMITTING    #                                           0.1s
    GENERATING     ######################################    12.0s
    SUCCEEDED                                             |
"""

from __future__ import annotations

from producer.core.models.job_record import JobRecord, JobState

WIDTH = 50


def timeline(record: JobRecord, now: float, width: int = WIDTH) -> list[str]:
    entries = [(t.state, t.at) for t in record.transitions]
    if not entries or entries[0][0] != JobState.QUEUED:
        entries.insert(0, (JobState.QUEUED, record.created_at))
    start = entries[0][1]
    end = entries[-1][1] if record.state.terminal else max(now, entries[-1][1])
    scale = width / max(end - start, 1e-6)
    rows = []
    for i, (state, at) in enumerate(entries):
        offset = min(width, round((at - start) * scale))
        if state.terminal and i == len(entries) - 1:
            rows.append(f"{state.value:<11} {' ' * offset}|")
            continue
        until = entries[i + 1][1] if i + 1 < len(entries) else end
        bar = "#" * max(1, round((until - at) * scale))
        rows.append(f"{state.value:<11} {(' ' * offset + bar)[:width + 1]:<{width + 1}} {until - at:7.1f}s")
    total = end - start
    rows.append(f"{'total':<11} {'':<{width + 1}} {total:7.1f}s" + ("" if record.state.terminal else " so far"))
    return rows
