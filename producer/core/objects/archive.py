"""A job's durable record: its manifest.json in storage, read once Redis has let it go.

An ended job's record leaves Redis SONGQUEUE_JOB_RETENTION seconds after it ended
(producer/core/store/retention.py). Its manifest stays beside its songs, at a key made from
the job id alone, so `status`, `fetch` and links find it without Redis:

    jobs/{job_id}/manifest.json   (workers/artifacts/manifest.py writes the same layout)

Finalize writes it for a job that SUCCEEDED; the archive task (workers/tasks/archive.py)
writes it for one that FAILED, TIMED_OUT or was CANCELLED, sent by `send_archive` on that
transition.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from celery import Celery

from producer.core import task_names
from producer.core.models.job_record import JobError, JobRecord, JobState, SongRecord, StoredObject, Transition
from producer.core.objects.links import ObjectLinks, ObjectUnreadable
from producer.core.objects.s3 import S3Location, s3_client
from producer.core.settings import Settings

log = logging.getLogger("songqueue.archive")

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\Z")
JOBS_FOLDER = "jobs"


def manifest_key(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise ValueError(f"job id: letters, digits, - and _ only, got {job_id!r}")
    return f"{JOBS_FOLDER}/{job_id}/manifest.json"


def _file_root(storage_url: str) -> Path:
    parsed = urlparse(storage_url)
    return Path(unquote(parsed.netloc + parsed.path)).resolve()


def manifest_object(settings: Settings, job_id: str) -> StoredObject:
    """Where the job's manifest is, from the job id and SONGQUEUE_STORAGE_URL alone."""
    key = manifest_key(job_id)
    if settings.storage_url.startswith("s3://"):
        where = S3Location.parse(settings.storage_url)
        uri = S3Location(where.bucket, f"{where.key}/{key}" if where.key else key).uri()
    else:
        uri = (_file_root(settings.storage_url) / key).as_uri()
    return StoredObject(uri=uri, key=key, size=0, sha256="", content_type="application/json")


def read_manifest(settings: Settings, links: ObjectLinks, job_id: str) -> dict[str, Any] | None:
    """The job's manifest document, or None when storage has none."""
    try:
        with links.open(manifest_object(settings, job_id)) as stream:
            document: dict[str, Any] = json.loads(stream.read())
    except FileNotFoundError:
        return None
    except ObjectUnreadable as exc:
        if "NoSuchKey" in str(exc) or "404" in str(exc):
            return None
        raise
    return document


def record_from_manifest(document: dict[str, Any], where: StoredObject | None = None) -> JobRecord:
    """The job as its manifest tells it. A version 1 manifest (finalize only) is a success."""
    state = JobState(document.get("state", JobState.SUCCEEDED.value))
    ended_at = document.get("ended_at") or document["written_at"]
    transitions = [Transition(state=JobState(t["state"]), at=t["at"]) for t in document.get("transitions", [])]
    if not transitions or transitions[-1].state != state:
        transitions.append(Transition(state=state, at=ended_at))
    songs = [
        SongRecord(
            upstream_id=s["upstream_id"], title=s.get("title", ""), duration=s.get("duration"),
            lyrics=s.get("lyrics", ""), tags=s.get("tags", []), song_path=s.get("song_path", ""),
            image_path=s.get("image_path", ""), finished=True, dispatched=True,
            audio=StoredObject.model_validate(s["audio"]) if s.get("audio") else None,
            cover=StoredObject.model_validate(s["cover"]) if s.get("cover") else None,
        )
        for s in document.get("songs", [])
    ]
    error = document.get("error")
    return JobRecord(
        id=document["job_id"], provider=document["provider"], model=document["model"],
        request=document.get("request", {}), state=state,
        progress=100 if state == JobState.SUCCEEDED else document.get("progress", 0),
        upstream_task_id=document.get("upstream_task_id"), created_at=document["created_at"],
        updated_at=ended_at, transitions=transitions, error=JobError.model_validate(error) if error else None,
        songs=songs, submitted_at=document.get("submitted_at"), cost=document.get("cost", 0.0),
        album=document.get("album"), batch_id=document.get("batch_id"), manifest=where,
    )


def archived_ids(settings: Settings) -> Iterator[str]:
    """Every job id with a folder in storage: file storage newest first, S3 in key order."""
    if settings.storage_url.startswith("s3://"):
        where = S3Location.parse(settings.storage_url)
        prefix = f"{where.key}/{JOBS_FOLDER}/" if where.key else f"{JOBS_FOLDER}/"
        pages = s3_client(settings).get_paginator("list_objects_v2").paginate(
            Bucket=where.bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][len(prefix):].rstrip("/")
        return
    root = _file_root(settings.storage_url) / JOBS_FOLDER
    if not root.is_dir():
        return
    with os.scandir(root) as entries:
        folders = [(e.stat().st_mtime, e.name) for e in entries if e.is_dir()]
    yield from (name for _, name in sorted(folders, reverse=True))


def send_archive(celery: Celery, record: JobRecord) -> None:
    """Ask a worker to write the manifest of a job that just ended. Never raises: the job has
    ended either way, and its record holds everything until the retention passes."""
    try:
        celery.send_task(task_names.ARCHIVE, args=[record.id], argsrepr=f"job={record.id}")
    except Exception as exc:  # noqa: BLE001 - logged; the job itself is unaffected
        log.warning("job %s: could not send its archive task: %s", record.id, exc)
