"""Request accounting: what the sandbox was asked, so tests can assert on it.

"Submitted exactly once" is only provable from the upstream side, so every
counter here is kept by the server. Admin requests (``/_sandbox/*``) are neither
counted nor logged: a test polling the stats must not change them.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

TOTALS = (
    "submit_requests",  # every request to a submit path, 401s and faults included
    "submits",  # task ids issued
    "fetch_requests",  # every request to the fetch path, 401s, 404s and faults included
    "fetches",  # fetch answers that carried a task (HTTP 200, code "success")
    "download_requests",  # every GET/HEAD under /files/ and /images/
    "downloads",  # file bodies sent completely
    "downloads_bad_path",  # file requested under a once-decoded (or otherwise re-encoded) name
    "unauthorized",  # 401 answers
    "minimax_upload_requests",  # every request to the MiniMax upload path
    "minimax_uploads",  # reference ids issued
    "minimax_generation_requests",  # every request to the MiniMax generation path
    "minimax_generations",  # songs generated (base_resp 0): the billed calls
    "hook_calls",  # notify hook POSTs made (sandbox/hooks.py)
    "hook_failures",  # of which got no 2xx answer
    "trickled",  # answers whose body went out a byte at a time (submit_trickle, fetch_trickle)
    "trickle_completed",  # of which the whole body was sent (the client waited for all of it)
    "redirected",  # 3xx answers given by a *_redirect directive or upload_redirect
    "unknown_answered",  # 404 "task not found" for a task still inside its unknown_for window
    "expired_answered",  # 404 "task not found" for a task past its expire time
    "batch_omitted",  # tasks left out of a batch answer that named them (batch_absent*, unknown, expired)
)

MAX_LOGGED_BODY = 64 * 1024
# Batch fetches whose ids are kept (the newest); every batch's size is kept.
BATCH_IDS_KEPT = 500


class Stats:
    def __init__(self, lock: threading.RLock, log_size: int = 2000) -> None:
        self._lock = lock
        self._log_size = log_size
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.totals: Counter[str] = Counter({name: 0 for name in TOTALS})
            self.submits_by_prompt: Counter[str] = Counter()
            self.fetches_by_task: Counter[str] = Counter()
            self.downloads_by_task: Counter[str] = Counter()
            self.download_requests_by_task: Counter[str] = Counter()
            self.generations_by_lyrics: Counter[str] = Counter()
            self.hooks_by_task: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            # The same faults by whom they hit: a task id, or the prompt before a task exists.
            self.faults_by_task: dict[str, Counter[str]] = {}
            self.faults_by_prompt: dict[str, Counter[str]] = {}
            # Under a profile: the manners each prompt drew (sandbox/profiles.py).
            self.profile_draws: dict[str, list[str]] = {}
            # One entry per batch fetch: how many ids it named (all), and which (the newest).
            self.batch_sizes: list[int] = []
            self.batch_ids: deque[list[str]] = deque(maxlen=BATCH_IDS_KEPT)
            self.log: deque[dict[str, Any]] = deque(maxlen=self._log_size)
            self._seq = 0

    def count(self, name: str, by: Counter[str] | None = None, key: str | None = None) -> None:
        with self._lock:
            self.totals[name] += 1
            if by is not None and key is not None:
                by[key] += 1

    def bump(self, by: Counter[str], key: str) -> None:
        with self._lock:
            by[key] += 1

    def fault(self, name: str, task: str | None = None, prompt: str | None = None) -> None:
        with self._lock:
            self.faults[name] += 1
            if task is not None:
                self.faults_by_task.setdefault(task, Counter())[name] += 1
            elif prompt is not None:
                self.faults_by_prompt.setdefault(prompt, Counter())[name] += 1

    def drawn(self, prompt: str, manners: list[str]) -> None:
        with self._lock:
            self.profile_draws[prompt] = manners

    def batch(self, ids: list[str]) -> None:
        with self._lock:
            self.batch_sizes.append(len(ids))
            self.batch_ids.append(list(ids))

    def record_request(self, entry: dict[str, Any]) -> None:
        body = entry.get("body", b"")
        if isinstance(body, bytes):
            text = body[:MAX_LOGGED_BODY].decode("utf-8", errors="replace")
            entry["body"] = text
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self.log.append(entry)

    def recent_requests(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self.log)
        return items[-limit:] if limit > 0 else []

    def snapshot(self, tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            return {
                **dict(self.totals),
                "submits_by_prompt": dict(self.submits_by_prompt),
                "fetches_by_task": dict(self.fetches_by_task),
                "downloads_by_task": dict(self.downloads_by_task),
                "download_requests_by_task": dict(self.download_requests_by_task),
                "generations_by_lyrics": dict(self.generations_by_lyrics),
                "hooks_by_task": dict(self.hooks_by_task),
                "faults": dict(self.faults),
                "faults_by_task": {k: dict(v) for k, v in self.faults_by_task.items()},
                "faults_by_prompt": {k: dict(v) for k, v in self.faults_by_prompt.items()},
                "profile_draws": dict(self.profile_draws),
                "batch_sizes": list(self.batch_sizes),
                "batch_ids": list(self.batch_ids),
                "tasks": tasks,
            }
