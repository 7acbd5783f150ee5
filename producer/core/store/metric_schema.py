"""What the workers count for `songqueue metrics`: Redis hashes and histogram buckets.

The workers write (workers/metrics.py), the exporter reads (producer/ops/metrics.py); both
take the names and buckets from here. Each family is one Redis hash under
`keys.metric(prefix, NAME)`, its fields `label|label|...` joined by `|`; a histogram keeps
one count per bucket (the first whose bound holds the value, not cumulative) and a `sum`.
"""

from __future__ import annotations

UPSTREAM_SECONDS = "upstream_seconds"  # fields provider|call|le and provider|call|sum
UPSTREAM_ERRORS = "upstream_errors"  # fields provider|call|code
POLLS_PER_JOB = "polls_per_job"  # fields provider|le and provider|sum
DOWNLOADED_BYTES = "downloaded_bytes"  # fields provider|asset
LIMIT_WAITS = "limit_waits"  # fields provider|limit
# Written by the job store itself, in the same transaction as the state change, so a job
# that ends is counted exactly once whichever process ends it (a worker, a cancel, the watchdog).
JOBS_FINISHED = "jobs_finished"  # fields provider|state|error code ("" when none)
JOB_SECONDS = "job_seconds"  # fields provider|state|le and provider|state|sum: created to ended
SPEND = "spend"  # fields provider: money charged to jobs, never reset (a counter)
CALLBACKS = "callbacks"  # fields event|outcome (delivered, failed, skipped)
WATCHDOG_RESCHEDULES = "watchdog_reschedules"  # fields state

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
POLL_BUCKETS = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)
JOB_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
SEP = "|"


def bucket(value: float, bounds: tuple[float, ...]) -> str:
    """The bound (as Prometheus writes `le`) of the first bucket that holds `value`."""
    for bound in bounds:
        if value <= bound:
            return format_bound(bound)
    return "+Inf"


def format_bound(bound: float) -> str:
    return repr(float(bound))
