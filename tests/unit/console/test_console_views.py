"""The job page's parts: runs of the timeline, and actions offered by the API's own scopes."""

from __future__ import annotations

from producer.api.console.routes import actions_for
from producer.api.console.runs import runs_of
from producer.core.models.job_record import JobRecord, JobState, Transition
from producer.core.store.api_keys import ApiKey


def _record(*marks: tuple[JobState, float]) -> JobRecord:
    record = JobRecord(id="j1", provider="udio", model="udio32-v1.5", request={"prompt": "x"})
    record.transitions = [Transition(state=s, at=t) for s, t in marks]
    record.state = marks[-1][0]
    record.updated_at = marks[-1][1]
    return record


def test_a_retried_job_has_two_labelled_runs() -> None:
    q, s, f = JobState.QUEUED, JobState.SUBMITTED, JobState.FAILED
    runs = runs_of(_record((q, 0), (s, 1), (f, 3), (q, 10), (s, 11), (JobState.SUCCEEDED, 20)))
    assert [r["number"] for r in runs] == [1, 2]
    assert [t["state"] for t in runs[0]["spans"]] == ["QUEUED", "SUBMITTED", "FAILED"]
    assert [t["state"] for t in runs[1]["spans"]] == ["QUEUED", "SUBMITTED", "SUCCEEDED"]


def test_actions_follow_the_api_scopes_and_states() -> None:
    failed = _record((JobState.QUEUED, 0), (JobState.FAILED, 1))
    running = _record((JobState.QUEUED, 0), (JobState.GENERATING, 1))
    done = _record((JobState.QUEUED, 0), (JobState.SUCCEEDED, 1))
    submitter = ApiKey(id="k", name="k", scopes=["submit", "read"])
    reader = ApiKey(id="r", name="r", scopes=["read"])
    # The API lets a submit key retry and cancel (DELETE /v1/jobs/{id}, POST .../retry need "submit").
    assert actions_for(submitter, failed) == ["retry"] and actions_for(submitter, running) == ["cancel"]
    assert actions_for(submitter, done) == [] and actions_for(reader, failed) == []
