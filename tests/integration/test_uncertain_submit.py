"""A submit whose answer was lost after the upstream accepted it is never paid for twice.

Real workers, Redis and the sandbox: the sandbox creates the task (or generates the
MiniMax song), then answers a proxy's 502 page or drops the connection. Each test first
proves the fault landed (the sandbox counted one accepted submit for this very job and
the fault it injected), then that the job failed `submit_uncertain` with a sentence an
operator can act on, and that nothing was sent a second time.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sandbox import audio

pytestmark = pytest.mark.integration

LOST_ANSWERS = ["submit_accept_502", "submit_accept_drop"]
UDIO_DIALECTS = {"302": "/udio/generate-proxy", "openai-hk": "/udio/submit/music"}


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def _assert_uncertain(record, what: str) -> None:
    assert record.state.value == "FAILED", record
    assert record.error.code == "submit_uncertain"
    assert what in record.error.message
    assert "not sent again" in record.error.message and f"songqueue retry {record.id}" in record.error.message
    assert record.upstream_task_id is None and record.attempts["submit"] == 1


WHAT = {"submit_accept_502": "HTTP 502", "submit_accept_drop": "closed the connection"}


@pytest.mark.parametrize("dialect", list(UDIO_DIALECTS))
@pytest.mark.parametrize("fault", LOST_ANSWERS)
def test_udio_lost_answer_fails_uncertain_after_one_submit(make_stack, sandbox, fault: str, dialect: str) -> None:
    s = make_stack(udio_submit_path=UDIO_DIALECTS[dialect])
    s.start_worker()
    queue = s.queue()
    faults_before = sandbox.stats()["faults"].get(fault, 0)
    prompt = f"lost answer {_tag()} sandbox:{fault}"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    stats = sandbox.stats()
    assert stats["faults"].get(fault, 0) == faults_before + 1  # the fault landed...
    assert stats["submits_by_prompt"][prompt] == 1  # ...after the upstream created the task
    _assert_uncertain(record, WHAT[fault])


@pytest.mark.parametrize("fault", LOST_ANSWERS)
def test_minimax_lost_answer_fails_uncertain_after_one_generation(make_stack, sandbox, fault: str) -> None:
    s = make_stack(minimax_price_per_call="0.5")
    s.start_worker()
    queue = s.queue()
    voice_file = Path(s.tmp) / "voice.mp3"
    voice_file.write_bytes(audio.song_mp3(1.0, 2))
    voice = queue.upload_reference(voice_file, "voice")
    faults_before = sandbox.stats()["faults"].get(fault, 0)
    lyrics = f"lost answer {_tag()} sandbox:{fault}"

    record = queue.wait(queue.submit({"lyrics": lyrics, "refer_voice": voice}, provider="minimax").id, timeout=60)

    stats = sandbox.stats()
    assert stats["faults"].get(fault, 0) == faults_before + 1
    assert stats["generations_by_lyrics"][lyrics] == 1
    _assert_uncertain(record, WHAT[fault])
    assert record.cost == 0.5  # the generation may have been billed: it is charged


def test_5xx_is_uncertain_even_when_nothing_was_accepted(make_stack, sandbox) -> None:
    """The client cannot tell a proxy's 502 before the gateway from one after it."""
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    prompt = f"502 before {_tag()} sandbox:submit_500"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    assert sandbox.stats()["submits_by_prompt"].get(prompt, 0) == 0
    _assert_uncertain(record, "HTTP 500")


def test_429_is_retried_and_succeeds_with_one_submit(make_stack, sandbox) -> None:
    s = make_stack()
    s.start_worker()
    queue = s.queue()
    faults_before = sandbox.stats()["faults"].get("submit_429", 0)
    prompt = f"rate limited {_tag()} sandbox:submit_429=2"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    assert sandbox.stats()["faults"].get("submit_429", 0) == faults_before + 2
    assert record.state.value == "SUCCEEDED" and record.attempts["submit"] == 3
    assert sandbox.stats()["submits_by_prompt"][prompt] == 1


def test_resubmit_policy_submits_again_after_a_lost_answer(make_stack, sandbox) -> None:
    s = make_stack(uncertain_submit="resubmit")
    s.start_worker()
    queue = s.queue()
    prompt = f"resubmit {_tag()} sandbox:submit_accept_502=1"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    assert record.state.value == "SUCCEEDED"
    assert sandbox.stats()["submits_by_prompt"][prompt] == 2  # the operator chose to pay twice
    assert "resubmitting after an uncertain submit" in s.worker_logs()


def test_submit_attempts_are_capped(make_stack, sandbox) -> None:
    s = make_stack(max_submit_attempts="2")
    s.start_worker()
    queue = s.queue()
    faults_before = sandbox.stats()["faults"].get("submit_429", 0)
    prompt = f"capped {_tag()} sandbox:submit_429=5"

    record = queue.wait(queue.submit({"prompt": prompt}).id, timeout=60)

    assert sandbox.stats()["faults"].get("submit_429", 0) == faults_before + 2  # two calls reached the upstream
    assert record.state.value == "FAILED" and record.error.code == "submit_attempts_exhausted"
    assert "SONGQUEUE_MAX_SUBMIT_ATTEMPTS=2" in record.error.message
    assert sandbox.stats()["submits_by_prompt"].get(prompt, 0) == 0
