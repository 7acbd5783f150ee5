"""Each key's fair share of the API, against `songqueue api` in its own process and real Redis.

Queued jobs (refused at the door with 429 naming the cap), request rate (429 with
Retry-After), open event streams (429 past the cap; a closed stream gives its place back),
and revocation reaching an open stream (it ends with a `closed` event saying why). No
workers: the jobs stay QUEUED, so their streams stay open until something else ends them.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from producer.core.store.api_keys import KeyStore
from tests.integration.test_http_api import start_api  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


def _store(api) -> KeyStore:
    queue = api.stack_.queue()
    return KeyStore(queue.store.redis, queue.settings.key_prefix)


def _submit(api, secret: str) -> requests.Response:
    return api.call("POST", "/v1/jobs", secret, json={"provider": "udio", "request": {"prompt": f"cap {uuid.uuid4().hex}"}})


def _events(response: requests.Response):
    name = None
    for line in response.iter_lines(chunk_size=1, decode_unicode=True):  # each event as it comes
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            yield name, json.loads(line[6:])


def test_a_keys_queued_jobs_rate_and_streams_are_capped(start_api):  # noqa: F811
    api = start_api(workers=False)
    # The CLI's flags set the caps, `keys update` changes one.
    made = api.stack_.cli("keys", "create", "--name", "capped", "--max-queued", "5", "--max-streams", "1", "--json")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    secret, key_id = created["key"], created["id"]
    updated = api.stack_.cli("keys", "update", key_id, "--max-queued", "2", "--json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["max_queued"] == 2 and json.loads(updated.stdout)["max_streams"] == 1

    first, second, third = (_submit(api, secret) for _ in range(3))
    assert [first.status_code, second.status_code] == [201, 201]
    assert third.status_code == 429 and third.headers["content-type"].startswith(PROBLEM)
    assert "2 jobs queued, its cap of queued jobs is 2 (max_queued)" in third.json()["detail"]
    # Another key of the same tenant has its own count.
    assert _submit(api, _store(api).create("other2", created["tenant"], ["submit", "read"])[1]).status_code == 201

    # Streams: one open at a time; closing it gives the place back.
    job_id = first.json()["id"]
    path = f"/v1/jobs/{job_id}/events"
    with requests.get(f"{api.url}{path}", headers={"Authorization": f"Bearer {secret}"}, stream=True,
                      timeout=30) as opened:
        assert opened.status_code == 200
        events = _events(opened)  # kept: a reader dropped closes the connection, and so the stream
        assert next(events)[0] == "job"
        refused = api.call("GET", path, secret)
        assert refused.status_code == 429 and "1 event streams open, its cap (max_streams)" in refused.json()["detail"]
        assert refused.headers["content-type"].startswith(PROBLEM)
    again = requests.get(f"{api.url}{path}", headers={"Authorization": f"Bearer {secret}"}, stream=True, timeout=30)
    with again:
        assert again.status_code == 200

    # The request rate: a key of 1 request/s holds a bucket of 2 (SONGQUEUE_KEY_REQUEST_BURST=2 s).
    _, slow = _store(api).create("slow", None, ["read"], request_rate=1)
    answers = [api.call("GET", "/v1/jobs", slow) for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].headers["content-type"].startswith(PROBLEM)
    assert "over its request rate of 1/s" in limited[0].json()["detail"]


def test_a_repeated_submit_at_the_queued_cap_gets_its_job_not_429(start_api):  # noqa: F811
    # A client whose 201 was lost retries with the same Idempotency-Key: the job exists and
    # counts toward the cap, so the cap must not turn its own repeat away.
    api = start_api(workers=False)
    _, secret = _store(api).create("one at a time", None, ["submit", "read"], max_queued=1)
    body = {"provider": "udio", "request": {"prompt": f"cap repeat {uuid.uuid4().hex}"}}
    first = api.call("POST", "/v1/jobs", secret, json=body, headers={"Idempotency-Key": "retry-me"})
    assert first.status_code == 201, first.text

    repeat = api.call("POST", "/v1/jobs", secret, json=body, headers={"Idempotency-Key": "retry-me"})
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["id"] == first.json()["id"]
    # The cap still holds for a new job, and a used key with another request is still a conflict.
    assert _submit(api, secret).status_code == 429
    other = api.call("POST", "/v1/jobs", secret, json={**body, "request": {"prompt": "another"}},
                     headers={"Idempotency-Key": "retry-me"})
    assert other.status_code == 422


def test_revoking_a_key_ends_its_open_event_streams(start_api):  # noqa: F811
    api = start_api(workers=False)
    store = _store(api)
    key, secret = store.create("watcher", None, ["submit", "read"])
    job_id = _submit(api, secret).json()["id"]
    # The read timeout bounds the wait: a stream that kept going would send nothing for
    # 15 s (the job stays QUEUED) and fail the read; the revocation is seen within ~2 s.
    with requests.get(f"{api.url}/v1/jobs/{job_id}/events", headers={"Authorization": f"Bearer {secret}"},
                      stream=True, timeout=(10, 10)) as opened:
        assert opened.status_code == 200
        events = _events(opened)
        assert next(events)[0] == "job"
        store.revoke(key.id)
        name, data = next(events)
        assert name == "closed" and data["reason"] == "key_revoked", (name, data)
        assert list(events) == [], "the stream ended after saying why"
    assert api.call("GET", f"/v1/jobs/{job_id}", secret).status_code == 401
