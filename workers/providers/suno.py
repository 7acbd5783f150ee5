"""Suno through a task relay (docs/upstream-contract.md, "Suno"): submit, then poll; batch fetch.

`POST {base}/suno/submit/music` answers with a task id in the same envelope as Udio's.
`GET {base}/suno/fetch/{id}` answers with the task object (new-api) or with only its clip
array (Suno-API); `POST {base}/suno/fetch` with `{"ids": [...]}` answers with a list of
task objects, unknown ids left out, in any order, or `data: null` when none match.

A clip's `audio_url` is a temporary stream while the clip is `streaming`: it is only
handed on (and so only downloaded) once the clip is `complete`. Parsing is kept in plain
functions so the relays' bodies can be tested without a network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests
from pydantic import SecretStr

from producer.core.settings import Settings
from workers.providers.base import Outcome, UpstreamSong, UpstreamStatus
from workers.providers.udio import envelope, known_task, parse_submit, upstream_took
from workers.upstream.errors import TransientError
from workers.upstream.http_client import bearer_headers, call_json, new_session

# Task statuses; one relay's docs spell FAILURE as FAIL, and UNKNOWN is terminal on new-api.
TERMINAL = {"SUCCESS": Outcome.SUCCEEDED, "FAILURE": Outcome.FAILED, "FAIL": Outcome.FAILED,
            "UNKNOWN": Outcome.FAILED}
# A clip's status, as Suno-API maps it to a task status, and how far along it is.
CLIP_TASK_STATUS = {"submitted": "SUBMITTED", "queued": "QUEUED", "streaming": "IN_PROGRESS",
                    "complete": "SUCCESS", "error": "FAILURE"}
CLIP_PROGRESS = {"submitted": 0, "queued": 5, "streaming": 50, "complete": 100, "error": 100}


class SunoProvider:
    name = "suno"
    # Billed per submit (two clips), whatever the model.
    price_factors: Mapping[str, float] = {}

    def __init__(self, base_url: str, api_key: SecretStr, submit_path: str, session: requests.Session,
                 timeout: float, max_json_bytes: int, batch_size: int) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.submit_path = "/" + submit_path.lstrip("/")
        self.session = session
        self.timeout = timeout
        self.max_json_bytes = max_json_bytes
        self.batch_size = batch_size

    def _headers(self) -> dict[str, str]:
        return bearer_headers(self._api_key)

    def submit(self, request: dict[str, Any], notify_hook: str = "") -> str:
        # `notify_hook` is never given: the relays drop the field (its spec says no hooks).
        body = call_json(self.session, "POST", self.base_url + self.submit_path, json=request,
                         headers=self._headers(), timeout=self.timeout, max_bytes=self.max_json_bytes)
        return parse_submit(body)

    def fetch(self, task_id: str) -> UpstreamStatus:
        body = known_task(lambda: call_json(
            self.session, "GET", f"{self.base_url}/suno/fetch/{quote(task_id, safe='')}",
            headers=self._headers(), timeout=self.timeout, max_bytes=self.max_json_bytes))
        return parse_fetch(body)

    def fetch_many(self, task_ids: list[str]) -> dict[str, UpstreamStatus]:
        """Every task of `task_ids` the relay answered for, by task id; the rest are absent."""
        body = call_json(self.session, "POST", f"{self.base_url}/suno/fetch",
                         json={"ids": task_ids, "action": "MUSIC"}, headers=self._headers(),
                         timeout=self.timeout, max_bytes=self.max_json_bytes)
        wanted = set(task_ids)
        return {task_id: status for task_id, status in parse_batch(body).items() if task_id in wanted}


def from_settings(settings: Settings) -> SunoProvider:
    suno = settings.provider("suno")
    return SunoProvider(
        base_url=suno.base_url, api_key=suno.api_key, submit_path=suno.submit_path,
        session=new_session(), timeout=settings.http_timeout,
        # A batch answer carries up to batch-size tasks of two clips each.
        max_json_bytes=max(settings.max_json_bytes, suno.poll_batch_size * 16 * 1024),
        batch_size=suno.poll_batch_size,
    )


def parse_fetch(body: Any) -> UpstreamStatus:
    """A single fetch: the task object, or only its clip array."""
    data = envelope(body)
    if isinstance(data, list):
        return clips_status(data)
    if isinstance(data, dict):
        return task_status(data)
    raise TransientError("upstream_malformed", "the upstream's fetch answer has neither a task nor clips")


def parse_batch(body: Any) -> dict[str, UpstreamStatus]:
    """A batch fetch: task objects matched by their own `task_id` (order is not kept)."""
    data = envelope(body)
    if data is None:
        return {}  # none of the ids matched
    if not isinstance(data, list):
        raise TransientError("upstream_malformed", "the upstream's batch fetch answer is not a list of tasks")
    return {str(task["task_id"]): task_status(task) for task in data
            if isinstance(task, dict) and task.get("task_id")}


def task_status(task: dict[str, Any]) -> UpstreamStatus:
    raw_status = str(task.get("status") or "")
    data = task.get("data")
    clips: list[Any] = data if isinstance(data, list) else []
    from_clips = clips_status(clips)
    outcome = TERMINAL.get(raw_status.upper(), Outcome.RUNNING)
    if outcome is Outcome.SUCCEEDED and from_clips.outcome is not Outcome.SUCCEEDED:
        # Done only when every clip is complete: a clip still streaming has no MP3 yet.
        outcome = Outcome.RUNNING if from_clips.outcome is Outcome.RUNNING else from_clips.outcome
    progress = 100 if outcome is Outcome.SUCCEEDED else max(_percent(task.get("progress")), from_clips.progress)
    if outcome is not Outcome.SUCCEEDED:
        progress = min(progress, 99)
    return UpstreamStatus(outcome=outcome, raw_status=raw_status, progress=progress,
                          fail_reason=str(task.get("fail_reason") or "") or from_clips.fail_reason,
                          songs=from_clips.songs,
                          took=upstream_took(task) if outcome is not Outcome.RUNNING else None)


def clips_status(clips: list[Any]) -> UpstreamStatus:
    """A task's state read from its clips alone, as Suno-API does: SUCCESS once every clip is
    complete, FAILURE once one errs; `fail_reason` is the first clip's error message."""
    clips = [c for c in clips if isinstance(c, dict) and c.get("id")]
    statuses = [str(c.get("status") or "").lower() for c in clips]
    failed = [c for c, s in zip(clips, statuses) if s == "error" or (s and s not in CLIP_TASK_STATUS)]
    if failed:
        outcome, raw = Outcome.FAILED, "FAILURE"
    elif clips and all(s == "complete" for s in statuses):
        outcome, raw = Outcome.SUCCEEDED, "SUCCESS"
    else:
        outcome = Outcome.RUNNING
        raw = CLIP_TASK_STATUS.get(min(statuses, key=lambda s: CLIP_PROGRESS.get(s, 0)), "") if statuses else ""
    progress = sum(CLIP_PROGRESS.get(s, 0) for s in statuses) // len(statuses) if statuses else 0
    reason = ""
    if failed:
        meta = _metadata(clips[0])
        reason = str(meta.get("error_message") or meta.get("error_type") or "") or "a clip ended in error"
    return UpstreamStatus(outcome=outcome, raw_status=raw, progress=progress if outcome is Outcome.SUCCEEDED
                          else min(progress, 99), fail_reason=reason, songs=[clip_song(c) for c in clips])


def clip_song(clip: dict[str, Any]) -> UpstreamSong:
    meta = _metadata(clip)
    complete = str(clip.get("status") or "").lower() == "complete"
    # Only a complete clip's audio_url is its MP3; while streaming it is a temporary stream.
    audio_url = str(clip.get("audio_url") or "") if complete else ""
    duration = meta.get("duration")
    tags = meta.get("tags")
    return UpstreamSong(
        id=str(clip["id"]),
        title=str(clip.get("title") or ""),
        song_path=audio_url,
        image_path=str(clip.get("image_large_url") or clip.get("image_url") or "") if complete else "",
        duration=float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None,
        lyrics=str(meta.get("prompt") or ""),
        tags=[t.strip() for t in tags.split(",") if t.strip()] if isinstance(tags, str) else [],
        finished=complete and bool(audio_url),
    )


def _metadata(clip: dict[str, Any]) -> dict[str, Any]:
    meta = clip.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _percent(value: Any) -> int:
    try:
        number = float(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        return 0
    return max(0, min(100, int(number)))
