"""The job state machine as data (producer/core/models/job_states.py): every allowed edge
goes through a real JobStore, one forbidden edge per state is refused with nothing written,
and the diagram in docs/architecture.md is the table's.

Uses the private redis-server of conftest (`redis_client`); every test has its own key prefix.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from producer.core.models import job_states
from producer.core.models.job_record import JobRecord, JobState
from producer.core.models.job_states import EDGES, Edge, IllegalTransition
from producer.core.store import keys
from producer.core.store.job_store import JobStore
from tests.support.job_paths import walk


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str) -> JobStore:
    return JobStore(redis_client, key_prefix)


def _job(store: JobStore, state: JobState) -> str:
    record, _ = store.create(JobRecord(id=uuid.uuid4().hex, provider="udio", model="udio32-v1.5", request={}))
    if state != JobState.QUEUED:
        walk(store, record.id, state)
    return record.id


def _snapshot(store: JobStore, job_id: str) -> dict[str, object]:
    """The record and every index a transition writes."""
    client = store.redis
    found: dict[str, object] = {"record": client.get(keys.job(store.prefix, job_id))}
    for state in JobState:
        found[state.value] = client.zscore(keys.jobs_in_state(store.prefix, state.value), job_id)
    found["due"] = client.zscore(keys.due(store.prefix), job_id)
    found["in_flight"] = client.zscore(keys.in_flight(store.prefix, "udio"), job_id)
    return found


@pytest.mark.parametrize("edge", EDGES, ids=lambda e: f"{e.source.value}->{e.target.value}:{e.step}")
def test_every_allowed_edge_goes_through_the_store(store: JobStore, edge: Edge) -> None:
    job_id = _job(store, edge.source)
    written = store.apply(job_id, {edge.source}, to=edge.target)
    assert written is not None and written.state is edge.target
    assert written.transitions[-1].state is edge.target
    assert store.ids(edge.target) == [job_id] and store.ids(edge.source) == []


def _forbidden(state: JobState) -> JobState:
    return next(t for t in JobState if t != state and (state, t) not in job_states.ALLOWED)


@pytest.mark.parametrize("state", list(JobState), ids=lambda s: s.value)
def test_a_forbidden_edge_is_refused_and_nothing_written(store: JobStore, state: JobState) -> None:
    job_id = _job(store, state)
    target = _forbidden(state)
    before = _snapshot(store, job_id)
    # Checked against the state read, whatever the caller expected.
    with pytest.raises(IllegalTransition) as refused:
        store.apply(job_id, set(JobState), mutate=lambda r: setattr(r, "progress", 99), to=target)
    assert str(refused.value) == f"job {job_id}: {state.value} -> {target.value} is not an allowed transition"
    assert isinstance(refused.value, ValueError)
    assert _snapshot(store, job_id) == before


def test_keeping_the_state_is_not_a_transition(store: JobStore) -> None:
    job_id = _job(store, JobState.GENERATING)
    written = store.apply(job_id, {JobState.GENERATING}, mutate=lambda r: setattr(r, "progress", 40),
                          to=JobState.GENERATING)
    assert written is not None and written.progress == 40


def test_every_state_is_reachable_and_every_live_state_can_end() -> None:
    for state in JobState:
        job_states.path(JobState.QUEUED, state)
    for state in JobState:
        if not state.terminal:
            assert (state, JobState.CANCELLED) in job_states.ALLOWED


def test_the_architecture_page_shows_the_table() -> None:
    text = job_states.PAGE.read_text()
    assert text == job_states.render_page(text), (
        "docs/architecture.md's state diagram differs from producer/core/models/job_states.py: "
        "run `python -m producer.core.models.job_states`")
