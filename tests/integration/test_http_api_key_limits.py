"""A key's in-flight limit and daily budget, held by the real workers' admission (workers/admission/key_limits.py).

`songqueue api` in its own process, real workers, real Redis, the sandbox. Jobs over their
key's limit are accepted and wait, the reason on the job; the key's jobs in flight never
overlap past its limit, and together they never spend past its budget.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import stack

from producer.core.store import keys, spend
from producer.core.store.api_keys import KeyStore

pytestmark = pytest.mark.integration


def _key(built, **limits: object) -> tuple[str, str]:
    queue = built.queue()
    key, secret = KeyStore(queue.store.redis, queue.settings.key_prefix).create(
        f"k{uuid.uuid4().hex[:6]}", "alpha", ["submit", "read"], **limits)
    return key.id, secret


def _submit(url: str, secret: str, prompt: str | None = None) -> requests.Response:
    body = {"provider": "udio", "request": {"prompt": prompt or f"key limits {uuid.uuid4().hex[:8]}"}}
    return requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {secret}"}, json=body, timeout=30)


def _follow(url: str, secret: str, ids: list[str], seconds: float) -> tuple[dict[str, dict], set[str]]:
    """Read the jobs until all have ended; returns their last views and every waiting_for seen."""
    seen: set[str] = set()
    views: dict[str, dict] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for job_id in ids:
            view = requests.get(f"{url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {secret}"}, timeout=30).json()
            views[job_id] = view
            if view.get("waiting_for"):
                seen.add(view["waiting_for"])
        if all(v["state"] in ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT") for v in views.values()):
            return views, seen
        time.sleep(0.1)  # a polling interval, not a synchronisation: the loop waits on the states
    raise AssertionError(f"jobs still live after {seconds} s: {[(i, v['state']) for i, v in views.items()]}")


def test_a_keys_in_flight_limit_makes_its_jobs_wait_and_never_overlap(make_stack, sandbox):
    built = make_stack(limit_wait="0.3")
    built.start_worker(concurrency=3)
    proc, url = stack.start_api(built.env, built.tmp / "api.log")
    try:
        key_id, secret = _key(built, max_in_flight=1)
        answers = [_submit(url, secret) for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
        ids = [a.json()["id"] for a in answers]

        views, waits = _follow(url, secret, ids, 120)

        assert {v["state"] for v in views.values()} == {"SUCCEEDED"}
        assert any(f"API key {key_id}" in w and "in-flight limit: 1" in w for w in waits), waits
        # From the records: each job's time with an upstream task (SUBMITTING until it left
        # GENERATING) never overlaps another's.
        spans = []
        for job_id in ids:
            record = built.queue().store.get(job_id)
            at = [(t.state.value, t.at) for t in record.transitions]
            start = next(t for s, t in at if s == "SUBMITTING")
            end = next(t for s, t in at if s in ("DOWNLOADING", "SUCCEEDED", "FAILED"))
            spans.append((start, end))
        spans.sort()
        assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), spans
        store = built.queue().store
        assert store.redis.zcard(keys.key_in_flight(store.prefix, key_id)) == 0, "every place was freed"
    finally:
        stack.stop(proc)


def test_a_keys_budget_holds_across_its_jobs_in_flight(make_stack, sandbox):
    built = make_stack(udio_price_per_call="0.5", budget_policy="fail")
    built.start_worker(concurrency=3)
    proc, url = stack.start_api(built.env, built.tmp / "api.log")
    try:
        key_id, secret = _key(built, daily_budget=1.0)
        prompts = [f"key budget {uuid.uuid4().hex[:8]}" for _ in range(3)]
        # All three are accepted before any is charged: the API cannot know; the workers hold it.
        answers = [_submit(url, secret, prompt) for prompt in prompts]
        assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]

        views, _ = _follow(url, secret, [a.json()["id"] for a in answers], 120)

        states = sorted(v["state"] for v in views.values())
        assert states == ["FAILED", "SUCCEEDED", "SUCCEEDED"], states
        failed = next(v for v in views.values() if v["state"] == "FAILED")
        assert failed["error"]["code"] == "budget_exceeded"
        assert f"API key {key_id}" in failed["error"]["message"]
        assert sum(v["cost"] for v in views.values()) == pytest.approx(1.0)
        store = built.queue().store
        assert int(store.redis.get(keys.key_spend(store.prefix, key_id, spend.utc_day()))) == spend.to_micros(1.0)
        by_prompt = sandbox.stats()["submits_by_prompt"]
        assert sum(by_prompt.get(p, 0) for p in prompts) == 2, "the third job was never sent upstream"

        # Spent: the API refuses at the door now, with a Retry-After to the next UTC day.
        over = _submit(url, secret)
        assert over.status_code == 429 and over.headers["content-type"] == "application/problem+json"
        assert "daily budget is spent: 1 of 1" in over.json()["detail"]
    finally:
        stack.stop(proc)


def test_a_200_character_idempotency_key_is_taken_whole_and_scoped_per_tenant(make_stack):
    built = make_stack()
    proc, url = stack.start_api(built.env, built.tmp / "api.log")
    try:
        _, alpha = _key(built)
        queue = built.queue()
        _, beta = KeyStore(queue.store.redis, queue.settings.key_prefix).create("b", "beta", ["submit", "read"])
        long_key = "k" * 200
        body = {"provider": "udio", "request": {"prompt": "idempotent"}}
        first = requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {alpha}", "Idempotency-Key": long_key},
                              json=body, timeout=30)
        assert first.status_code == 201, first.text
        again = requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {alpha}", "Idempotency-Key": long_key},
                              json=body, timeout=30)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        other = requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {beta}", "Idempotency-Key": long_key},
                              json=body, timeout=30)
        assert other.status_code == 201 and other.json()["id"] != first.json()["id"], "each tenant has its own keys"
        too_long = requests.post(f"{url}/v1/jobs", headers={"Authorization": f"Bearer {alpha}",
                                                            "Idempotency-Key": long_key + "k"}, json=body, timeout=30)
        assert too_long.status_code == 422 and "idempotency" in too_long.text.lower()
    finally:
        stack.stop(proc)
