"""The job's manifest.json, stored beside its songs: what was asked, when each state was
reached and for how long, what the upstream called things, and what was stored.

Written by finalize just before the job turns SUCCEEDED, so its last transition is
DOWNLOADING and `written_at` closes that state's timing; `state` says how the job ended.
The archive task writes it for a job that FAILED, TIMED_OUT or was CANCELLED, with its
`error`. Once Redis lets the job go (SONGQUEUE_JOB_RETENTION) this is the job's record:
producer/core/objects/archive.py reads it back. It holds no secret: the request is the
validated gen_params (API keys are settings, never part of a request), and links are
left out because presigned ones expire.

Below it, the storage key layout of every object of a job (`check_key`, `audio_key`,
`cover_key`, `manifest_key`, `staged_audio_key`), which the storage backends also check.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from producer.core.models.job_record import JobRecord, JobState, StoredObject

if TYPE_CHECKING:  # workers/storage checks keys with check_key below: no import back at run time
    from workers.storage import Storage

# 2: adds state, progress, ended_at and error (version 1 was only ever a success).
MANIFEST_VERSION = 2


def manifest_document(record: JobRecord, written_at: float | None = None,
                      state: JobState | None = None) -> dict[str, Any]:
    """`state`: how the job ends, when it is not the record's state yet (finalize)."""
    written_at = time.time() if written_at is None else written_at
    state = state or record.state
    ended_at = written_at if state != record.state else record.transitions[-1].at if record.transitions else written_at
    return {
        "manifest_version": MANIFEST_VERSION,
        "job_id": record.id,
        "state": state.value,
        "progress": 100 if state == JobState.SUCCEEDED else record.progress,
        "ended_at": ended_at,
        "error": record.error.model_dump() if record.error else None,
        "provider": record.provider,
        "model": record.model,
        "album": record.album,
        "batch_id": record.batch_id,
        "request": record.request,
        "upstream_task_id": record.upstream_task_id,
        "cost": record.cost,
        "created_at": record.created_at,
        "submitted_at": record.submitted_at,
        "written_at": written_at,
        "transitions": _timed_transitions(record, written_at),
        "songs": [
            {
                "index": i + 1,
                "upstream_id": s.upstream_id,
                "title": s.title,
                "duration": s.duration,
                "lyrics": s.lyrics,
                "tags": s.tags,
                "song_path": s.song_path,
                "image_path": s.image_path,
                "audio": _object(s.audio),
                "cover": _object(s.cover),
            }
            for i, s in enumerate(record.songs)
        ],
    }


def _timed_transitions(record: JobRecord, written_at: float) -> list[dict[str, Any]]:
    """Each state entered, when, and how many seconds the job spent in it."""
    entries = record.transitions
    ends = [t.at for t in entries[1:]] + [written_at]
    return [{"state": t.state.value, "at": t.at, "seconds": round(end - t.at, 3)} for t, end in zip(entries, ends)]


def _object(obj: StoredObject | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {
        "key": obj.key,
        "uri": obj.uri,
        "size": obj.size,
        "content_type": obj.content_type,
        "sha256": obj.sha256,
        "upstream_sha256": obj.upstream_sha256,
        "stored_at": obj.stored_at,
    }


def write_manifest(storage: Storage, record: JobRecord, state: JobState | None = None) -> StoredObject:
    body = json.dumps(manifest_document(record, state=state), ensure_ascii=False, indent=2).encode("utf-8")
    return storage.put(manifest_key(record.id), [body], "application/json")


# ------------------------------------------------------------------------------------------
# The storage key layout. Keys are built from ids we control, never from upstream titles.
#
#     jobs/{job_id}/song-{n}.mp3          n = 1, 2 in upstream order
#     jobs/{job_id}/song-{n}-cover.{ext}  ext from the image's own bytes (png, jpg, webp, gif)
#     jobs/{job_id}/manifest.json
#     jobs/{job_id}/upstream/{intent}/song-{n}.mp3  audio an upstream returned inline (MiniMax),
#                                         as it came, under the id of the submit's intent

# \Z, not $: $ also matches before a trailing newline.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*\Z")


def check_key(key: str) -> str:
    """Refuse any key that could escape its root or is not plain ASCII."""
    if not _SAFE_KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise ValueError(f"unsafe storage key {key!r}")
    return key


def job_prefix(job_id: str) -> str:
    return f"jobs/{check_key(job_id)}"


def audio_key(job_id: str, song_index: int) -> str:
    return f"{job_prefix(job_id)}/song-{song_index + 1}.mp3"


def cover_key(job_id: str, song_index: int, extension: str) -> str:
    return f"{job_prefix(job_id)}/song-{song_index + 1}-cover.{extension}"


def manifest_key(job_id: str) -> str:
    return f"{job_prefix(job_id)}/manifest.json"


def staged_audio_key(job_id: str, song_index: int, intent: str | None = None) -> str:
    """Under the intent's id: a run that died after staging and before recording leaves its
    paid answer where the next run can find it (workers/steps/paid.py accept_staged)."""
    folder = f"{job_prefix(job_id)}/upstream" + (f"/{check_key(intent)}" if intent else "")
    return f"{folder}/song-{song_index + 1}.mp3"
