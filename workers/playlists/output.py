"""A finished playlist run's files: playlist.m3u8 and playlist.json, stored beside each other.

Layout (keys relative to the storage root; the songs stay where their jobs stored them):

    {storage_prefix}/{run_id}/playlist.m3u8     extended M3U, UTF-8
    {storage_prefix}/{run_id}/playlist.json     songs and failures with reasons
    jobs/{job_id}/song-{n}.mp3                  each entry, by a path relative to the playlist

With the default prefix `playlists/{name}` an entry reads `../../../jobs/{job_id}/song-1.mp3`.
Relative paths resolve the same on a disk (file storage), in a synced copy of the bucket
and under an S3 prefix, so the playlist plays wherever the tree is copied whole.
"""

from __future__ import annotations

import json
import posixpath
import re
import time
from datetime import UTC, datetime
from typing import Any

from producer.core.models.job_record import JobError, JobRecord, JobState, StoredObject
from producer.core.models.playlist_run import PlaylistRun, RunFailure, RunSong, RunState
from workers.storage import Storage

PLAYLIST_VERSION = 1
M3U8_NAME = "playlist.m3u8"
JSON_NAME = "playlist.json"
# A line break inside a title would start a new M3U line (a bogus path).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def collect(run: PlaylistRun, jobs: list[JobRecord | None]) -> tuple[list[RunSong], list[RunFailure]]:
    """The songs of the run's succeeded jobs (request order, then song order) and one
    failure per request whose job did not succeed."""
    songs: list[RunSong] = []
    failures: list[RunFailure] = []
    for index, (job_id, job) in enumerate(zip(run.job_ids, jobs), 1):
        if job is None:
            failures.append(RunFailure(job_id=job_id, request_index=index, state="MISSING",
                                       error=JobError(code="job_missing", message="the job record is gone")))
            continue
        if job.state != JobState.SUCCEEDED:
            failures.append(RunFailure(job_id=job_id, request_index=index, state=job.state.value, error=job.error))
            continue
        for n, song in enumerate(job.songs, 1):
            if song.audio is None:
                continue
            songs.append(RunSong(
                job_id=job_id, request_index=index, song_index=n, title=song.title, duration=song.duration,
                key=song.audio.key, uri=song.audio.uri, sha256=song.audio.sha256,
                path=posixpath.relpath(song.audio.key, run.run_dir()),
            ))
    return songs, failures


def m3u8_text(run: PlaylistRun, songs: list[RunSong]) -> str:
    """Extended M3U: `#EXTINF:<whole seconds, -1 if unknown>,<title>` then the relative path."""
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(run.album)}"]
    for song in songs:
        seconds = -1 if song.duration is None else round(song.duration)
        title = _one_line(song.title) or f"{run.album} {song.request_index}-{song.song_index}"
        lines += [f"#EXTINF:{seconds},{title}", song.path]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def outcome(run: PlaylistRun, jobs: list[JobRecord | None]) -> tuple[RunState, int]:
    succeeded = sum(1 for job in jobs if job is not None and job.state == JobState.SUCCEEDED)
    return (RunState.SUCCEEDED if succeeded >= run.min_success else RunState.FAILED), succeeded


def json_document(run: PlaylistRun, songs: list[RunSong], failures: list[RunFailure], state: RunState,
                  succeeded: int, finished_at: float) -> dict[str, Any]:
    return {
        "playlist_version": PLAYLIST_VERSION,
        "run_id": run.id,
        "playlist": run.playlist,
        "album": run.album,
        "state": state.value,
        "trigger": run.trigger,
        "scheduled_for": None if run.slot is None else datetime.fromtimestamp(run.slot, UTC).isoformat(),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": finished_at,
        "requests": len(run.requests),
        "succeeded_requests": succeeded,
        "min_success": run.min_success,
        # A tenant reads this file through the API: each song's link on the API, its path
        # relative to this file (what the m3u8 plays), never a bucket key or a server path.
        "songs": [{**song.model_dump(exclude={"key", "uri"}),
                   "link": f"/v1/jobs/{song.job_id}/songs/{song.song_index}/audio"} for song in songs],
        "failures": [{**failure.model_dump(), "request": run.requests[failure.request_index - 1]}
                     for failure in failures],
    }


def write_outputs(storage: Storage, run: PlaylistRun, songs: list[RunSong], failures: list[RunFailure],
                  state: RunState, succeeded: int) -> tuple[StoredObject, StoredObject]:
    """Store playlist.json and playlist.m3u8; returns (m3u8, json). Storage faults propagate
    as TransientError / PermanentError (workers.storage.base)."""
    document = json_document(run, songs, failures, state, succeeded, time.time())
    body = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    stored_json = storage.put(f"{run.run_dir()}/{JSON_NAME}", [body], "application/json")
    stored_m3u8 = storage.put(f"{run.run_dir()}/{M3U8_NAME}", [m3u8_text(run, songs).encode("utf-8")],
                              "audio/x-mpegurl")
    return stored_m3u8, stored_json
