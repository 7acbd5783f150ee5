"""Udio through an aggregator gateway: 302.ai style or openai-hk style.

The wire format is described in docs/upstream-contract.md, "Udio through an aggregator gateway".

The dialects differ only in the submit path (`SONGQUEUE_UDIO_SUBMIT_PATH`). Parsing is
kept in plain functions so the vendors' own example bodies can be tested directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import requests
from pydantic import SecretStr

from producer.core.settings import Settings
from workers.providers.base import Outcome, UpstreamSong, UpstreamStatus
from workers.upstream.errors import PermanentError, TaskUnknown, TransientError
from workers.upstream.http_client import bearer_headers, call_json, new_session

TERMINAL = {"SUCCESS": Outcome.SUCCEEDED, "FAILURE": Outcome.FAILED}


class UdioProvider:
    name = "udio"
    # Billed per submit call; udio130 costs twice udio32 (docs/upstream-contract.md, "Udio through an aggregator gateway").
    price_factors: Mapping[str, float] = {"udio32-v1.5": 1.0, "udio130-v1.5": 2.0}

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        submit_path: str,
        session: requests.Session,
        timeout: float,
        max_json_bytes: int,
        notify_field: str = "notify_hook",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.submit_path = "/" + submit_path.lstrip("/")
        self.session = session
        self.timeout = timeout
        self.max_json_bytes = max_json_bytes
        self.notify_field = notify_field

    def _headers(self) -> dict[str, str]:
        return bearer_headers(self._api_key)

    def submit(self, request: dict[str, Any], notify_hook: str = "") -> str:
        payload: dict[str, Any] = {"gen_params": request}
        if notify_hook:
            # Top level, beside gen_params: the fetch answer carries notify_hook at the top
            # of the task object, so that is where the gateways most likely read it
            # (unconfirmed; the field name is SONGQUEUE_UDIO_NOTIFY_FIELD).
            payload[self.notify_field] = notify_hook
        body = call_json(
            self.session, "POST", self.base_url + self.submit_path,
            json=payload, headers=self._headers(),
            timeout=self.timeout, max_bytes=self.max_json_bytes,
        )
        return parse_submit(body)

    def fetch(self, task_id: str) -> UpstreamStatus:
        body = known_task(lambda: call_json(
            self.session, "GET", f"{self.base_url}/udio/fetch/{quote(task_id, safe='')}",
            headers=self._headers(), timeout=self.timeout, max_bytes=self.max_json_bytes,
        ))
        return parse_fetch(body)


def from_settings(settings: Settings) -> UdioProvider:
    udio = settings.provider("udio")
    return UdioProvider(
        base_url=udio.base_url,
        api_key=udio.api_key,
        submit_path=udio.submit_path,
        session=new_session(),
        timeout=settings.http_timeout,
        max_json_bytes=settings.max_json_bytes,
        notify_field=udio.notify_field,
    )


# How the relays say they do not know a task: new-api's "task not found" (also as
# "task_not_exist"), and the Chinese relays' own words.
UNKNOWN_TASK = re.compile(r"not[ _]?(found|exist)|不存在", re.IGNORECASE)


def known_task(fetch: Callable[[], Any]) -> Any:
    """A fetch's answer, or TaskUnknown when it says the gateway does not know the task: a
    404, or an envelope whose message says "task not found". Not a refusal: the poll step
    counts such answers (workers/steps/unknown_task.py)."""
    try:
        body = fetch()
    except PermanentError as exc:
        if exc.http_status == 404:
            raise TaskUnknown("HTTP 404") from None
        raise
    if isinstance(body, dict) and body.get("code") != "success" and UNKNOWN_TASK.search(str(body.get("message"))):
        raise TaskUnknown("'task not found'")
    return body


def envelope(body: Any) -> Any:
    """The `code`/`message`/`data` envelope: return `data` or raise with the upstream's words."""
    if not isinstance(body, dict) or "code" not in body:
        raise TransientError("upstream_malformed", "the upstream's answer has no 'code' field", maybe_accepted=True)
    if body["code"] != "success":
        message = body.get("message") or f"code {body['code']!r}"
        raise PermanentError("upstream_rejected", f"the upstream refused the request: {message}")
    return body.get("data")


def parse_submit(body: Any) -> str:
    data = envelope(body)
    if not isinstance(data, str) or not data.strip():
        raise TransientError("upstream_malformed", "the upstream's submit answer has no task id", maybe_accepted=True)
    return data.strip()


def parse_fetch(body: Any) -> UpstreamStatus:
    task = envelope(body)
    if not isinstance(task, dict):
        raise TransientError("upstream_malformed", "the upstream's fetch answer has no task object")
    raw_status = str(task.get("status") or "")
    outcome = TERMINAL.get(raw_status.upper(), Outcome.RUNNING)
    # Songs sit under data.data.songs, or directly under data.songs on some mirrors.
    inner = task.get("data")
    songs_raw = (inner.get("songs") if isinstance(inner, dict) else None) or task.get("songs") or []
    songs = [_song(s) for s in songs_raw if isinstance(s, dict) and s.get("id")]
    progress = _percent(task.get("progress"))
    if outcome is Outcome.SUCCEEDED:
        progress = 100
    return UpstreamStatus(
        outcome=outcome,
        raw_status=raw_status,
        progress=progress,
        fail_reason=str(task.get("fail_reason") or ""),
        songs=songs,
        took=upstream_took(task) if outcome is not Outcome.RUNNING else None,
    )


def upstream_took(task: dict[str, Any]) -> float | None:
    """`finish_time - submit_time` of a task object (Unix seconds on the upstream's clock),
    or None when either is missing, not a number, unset (0) or out of order."""
    submitted, finished = task.get("submit_time"), task.get("finish_time")
    if not all(isinstance(t, int | float) and not isinstance(t, bool) and t > 0 for t in (submitted, finished)):
        return None
    took = float(finished) - float(submitted)  # type: ignore[arg-type]
    return took if took >= 0 else None


def _song(raw: dict[str, Any]) -> UpstreamSong:
    tags = raw.get("tags") or []
    duration = raw.get("duration")
    return UpstreamSong(
        id=str(raw["id"]),
        title=str(raw.get("title") or ""),
        # Kept exactly as given: the gateways encode it twice and expect it back that way.
        song_path=str(raw.get("song_path") or ""),
        image_path=str(raw.get("image_path") or ""),
        duration=float(duration) if isinstance(duration, (int, float)) else None,
        lyrics=str(raw.get("lyrics") or ""),
        tags=[str(t) for t in tags] if isinstance(tags, list) else [],
        finished=raw.get("finished") is True,
    )


def _percent(value: Any) -> int:
    try:
        number = float(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        return 0
    return max(0, min(100, int(number)))
