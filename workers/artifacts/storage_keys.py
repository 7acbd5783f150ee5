"""The storage key layout. Keys are built from ids we control, never from upstream titles.

    jobs/{job_id}/song-{n}.mp3          n = 1, 2 in upstream order
    jobs/{job_id}/song-{n}-cover.{ext}  ext from the image's own bytes (png, jpg, webp, gif)
    jobs/{job_id}/manifest.json
    jobs/{job_id}/upstream/{intent}/song-{n}.mp3  audio an upstream returned inline (MiniMax),
                                        as it came, under the id of the submit's intent
"""

from __future__ import annotations

import re

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
