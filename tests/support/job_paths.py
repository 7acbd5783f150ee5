"""Move a stored job to any state along the allowed transitions (producer/core/models/job_states.py),
the way the steps would, instead of a jump the job store refuses."""

from __future__ import annotations

from producer.core.models import job_states
from producer.core.models.job_record import JobRecord, JobState
from producer.core.store.job_store import JobStore, Mutation


def walk(store: JobStore, job_id: str, target: JobState, mutate: Mutation | None = None) -> JobRecord:
    """Apply each edge of a shortest allowed way from the job's state to `target`, `mutate`
    with the last write; the record as written."""
    record = store.get(job_id)
    assert record is not None, f"job {job_id} is missing"
    way = job_states.path(record.state, target) or [target]
    for index, state in enumerate(way):
        written = store.apply(job_id, {record.state}, mutate=mutate if index == len(way) - 1 else None, to=state)
        assert written is not None, f"job {job_id}: could not move {record.state.value} -> {state.value}"
        record = written
    return record
