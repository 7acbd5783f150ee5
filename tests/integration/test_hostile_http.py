"""Hostile input through the HTTP API (`POST /v1/jobs` of `songqueue api`, a real server):
each answered 422 problem+json naming the field and the rule; afterwards no new key in
Redis, nothing on the broker, and no request reached the canary (a callback address)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
import stack

from producer.core.task_names import ALL_QUEUES
from tests.integration.test_hostile_input import CONTROL, PRIVATE, api_cases, cli_cases
from tests.support.http_fixture import LocalServer

pytestmark = pytest.mark.integration


def _body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A Python API case (SongQueue.submit keywords) as the body of POST /v1/jobs."""
    body = {"provider": kwargs.get("provider", "udio"), "request": kwargs["request"]}
    for name in ("callback_url", "album"):
        if name in kwargs:
            body[name] = kwargs[name]
    return body


def _from_python_table(port: int) -> list[tuple[dict[str, Any], dict[str, str], str, str]]:
    """The Python API table's cases that have a body field here (batch_id has none; the
    idempotency key travels in a header), their fields named as the API names them."""
    cases = []
    for kwargs, field, rule in api_cases(port):
        if "batch_id" in kwargs:
            continue
        if "idempotency_key" in kwargs:
            cases.append(({"provider": "udio", "request": {"prompt": "x"}},
                          {"Idempotency-Key": kwargs["idempotency_key"]}, "idempotency", rule))
            continue
        named = field if field in ("callback_url", "album") else f"request.{field}"
        cases.append((_body(kwargs), {}, named, rule))
    return cases


def _http_only(port: int) -> list[tuple[Any, dict[str, Any], str, str]]:
    """(body: a dict sent as JSON, or bytes sent as they are; headers; field; words of the rule)."""
    ok = {"provider": "udio", "request": {"prompt": "x"}}
    json_type = {"Content-Type": "application/json"}
    return [
        (b'{"provider": "udio", "request": {"prompt": ', json_type, "body", "must be JSON (Expecting value at character 43)"),
        (b"provider=udio&prompt=x", json_type, "body", "must be JSON"),
        (b"\xff\xfe\x00garbage", json_type, "body", "must be JSON"),
        (json.dumps(ok).encode(), {"Content-Type": "text/plain"}, "body", "valid dictionary"),
        (b"[1, 2, 3]", json_type, "body", "valid dictionary"),
        (b'"just a string"', json_type, "body", "valid dictionary"),
        ({"provider": "nope", "request": {"prompt": "x"}}, {}, "provider", "must be one of"),
        ({"provider": "suno\x00", "request": {"prompt": "x"}}, {}, "provider", "must be one of"),
        ({"request": {"prompt": "x"}}, {}, "provider", "must be one of"),
        ({**ok, "tenant": "someone-else"}, {}, "tenant", "unknown field"),
        ({**ok, "request": {"prompt": "x", "api_key": "sq_x"}}, {}, "request.api_key", "unknown field"),
        ({**ok, "callback_progress": "sometimes"}, {}, "callback_progress", "valid boolean"),
        ({**ok, "album": "a" * 501}, {}, "album", "at most 500"),
        ({**ok, "request": {"prompt": "x", "seed": "1e30"}}, {}, "request.seed", "valid integer"),
        ({**ok, "request": {"prompt": "x", "seed": 1.5}}, {}, "request.seed", "integer"),
        (b'{"provider": "udio", "request": {"prompt": "x", "prompt_strength": NaN}}', json_type,
         "request.prompt_strength", "finite"),
        (ok, {"Idempotency-Key": "k" * 201}, "idempotency-key", "at most 200"),
        # Header bytes are read as latin-1: UTF-8 for NEL and RLO carry C1 control bytes.
        (ok, {"Idempotency-Key": "a\u0085b".encode()}, "idempotency_key", CONTROL),
        (ok, {"Idempotency-Key": "abc\u202eevil".encode()}, "idempotency_key", CONTROL),
        (ok, {"Idempotency-Key": "\x1b[31mred"}, "idempotency_key", CONTROL),
        (ok, {"Idempotency-Key": "a\x7f"}, "idempotency_key", CONTROL),
        ({**ok, "callback_url": f"http://127.1:{port}/"}, {}, "callback_url", PRIVATE),
        ({**ok, "callback_url": f"http://017700000001:{port}/"}, {}, "callback_url", PRIVATE),
        ({**ok, "callback_url": f"http://[0:0:0:0:0:ffff:7f00:1]:{port}/"}, {}, "callback_url", PRIVATE),
        ({**ok, "callback_url": f"http://100.64.0.1:{port}/"}, {}, "callback_url", PRIVATE),
        ({**ok, "callback_url": f"http://0.0.0.0:{port}/"}, {}, "callback_url", PRIVATE),
        ({**ok, "callback_url": f"http://[fe80::1%25eth0]:{port}/"}, {}, "callback_url", "zone ids are refused"),
        ({**ok, "callback_url": f"http://224.0.0.1:{port}/"}, {}, "callback_url", PRIVATE),
        ({**ok, "callback_url": f"http://a.test\\@127.0.0.1:{port}/"}, {}, "callback_url", "backslash"),
        ({**ok, "callback_url": f"http://u:p@127.0.0.1:{port}/"}, {}, "callback_url", "user:password@"),
        ({**ok, "callback_url": "javascript:alert(1)"}, {}, "callback_url", "http:// or https://"),
        ({**ok, "callback_url": "http:///nohost"}, {}, "callback_url", "names no host"),
    ]


def _refused_before_the_app() -> list[tuple[bytes, dict[str, Any]]]:
    """Refused as a 400 before any field is read, so no field to name: header bytes the HTTP
    parser refuses (NUL), and an integer past Python's 4300-digit parse limit (FastAPI
    answers its own 400 for any body parse error other than a JSON syntax error)."""
    ok = json.dumps({"provider": "udio", "request": {"prompt": "x"}}).encode()
    json_type = {"Content-Type": "application/json"}
    return [
        (ok, {**json_type, "Idempotency-Key": "a\x00b"}),
        (b'{"provider": "udio", "request": {"prompt": "x", "seed": 1' + b"0" * 4400 + b"}}", json_type),
    ]


@pytest.fixture
def api(make_stack, tmp_path) -> Iterator[tuple[str, str, Any]]:
    """`songqueue api` with private networks refused (the default outside tests), no workers."""
    built = make_stack(allow_private_networks="false")
    done = built.cli("keys", "create", "--name", "hostile", "--json")
    assert done.returncode == 0, done.stderr
    proc, url = stack.start_api(built.env, tmp_path / "api.log")
    try:
        yield url, json.loads(done.stdout)["key"], built
    finally:
        stack.stop(proc)


@pytest.fixture
def canary() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


def _post(url: str, key: str, body: Any, headers: dict[str, Any]) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}", **headers}
    if not isinstance(body, bytes):
        # json.dumps, not requests' json=: the table sends Infinity and NaN, as some clients do.
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    return requests.post(f"{url}/v1/jobs", data=body, headers=headers, timeout=30)


def _keys(built: Any) -> set[bytes]:
    return set(redis.Redis.from_url(built.env["SONGQUEUE_REDIS_URL"]).keys("*"))


# RFC 9110 5.5: a field value holds no control character but HTAB. The HTTP parser (llhttp)
# answers such a header with 400 before the app sees it, so there is no field to name.
_CONTROL_IN_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _parser_refuses(headers: dict[str, Any]) -> bool:
    return any(_CONTROL_IN_HEADER.search(v if isinstance(v, bytes) else v.encode()) for v in headers.values())


def test_hostile_http_input_is_refused_naming_field_and_rule(api, canary):
    url, key, built = api
    cases = [*_from_python_table(canary.port), *_http_only(canary.port)]
    before = _keys(built)
    for body, headers, field, rule in cases:
        if _parser_refuses(headers):
            answer = _post(url, key, body, headers)
            assert answer.status_code == 400, (headers, answer.status_code, answer.text)
            continue
        answer = _post(url, key, body, headers)
        assert answer.status_code == 422, (body, headers, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", body
        errors = answer.json()["errors"]
        assert errors, (body, answer.text)
        first_field, first_rule = errors[0]["field"], errors[0]["rule"]
        assert field in first_field and rule in first_rule, (body, headers, errors)
        assert "\x00" not in answer.text and "\x1b" not in answer.text, body
    for body, headers in _refused_before_the_app():
        answer = _post(url, key, body, headers)
        assert answer.status_code == 400, (body[:80], headers, answer.status_code, answer.text)
    # No job, no idempotency key, no live-job set: only the key's request-rate bucket (its fair share) is new.
    assert {k for k in _keys(built) if not k.endswith(b":rate")} == before
    if built.env["SONGQUEUE_BROKER_URL"].startswith("redis://"):
        broker = redis.Redis.from_url(built.env["SONGQUEUE_BROKER_URL"])
        assert all(broker.llen(q) == 0 for q in ALL_QUEUES)
    assert canary.requests == []
    assert len(cases) >= 40
    print(f"hostile HTTP inputs refused: {len(cases)} "
          f"(with the CLI and Python API tables: {len(cases) + len(cli_cases(0)) + len(api_cases(0))})")
