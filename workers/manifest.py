"""The job's manifest.json: what was asked, when each state was reached, what was stored."""

from __future__ import annotations

import json
from typing import Any

from producer.job_record import JobRecord, StoredObject
from workers import storage_keys
from workers.storage import Storage


def manifest_document(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.id,
        "provider": record.provider,
        "model": record.model,
        "request": record.request,
        "upstream_task_id": record.upstream_task_id,
        "created_at": record.created_at,
        "transitions": [t.model_dump(mode="json") for t in record.transitions],
        "songs": [
            {
                "index": i + 1,
                "upstream_id": s.upstream_id,
                "title": s.title,
                "duration": s.duration,
                "lyrics": s.lyrics,
                "tags": s.tags,
                "audio": s.audio.model_dump() if s.audio else None,
                "cover": s.cover.model_dump() if s.cover else None,
            }
            for i, s in enumerate(record.songs)
        ],
    }


def write_manifest(storage: Storage, record: JobRecord) -> StoredObject:
    body = json.dumps(manifest_document(record), ensure_ascii=False, indent=2).encode("utf-8")
    return storage.put(storage_keys.manifest_key(record.id), [body], "application/json")
