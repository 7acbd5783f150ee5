"""Copy a job's songs and covers out of storage into a local folder, under readable names.

    01 - Sandbox Song 1 – 晨光.mp3
    01 - Sandbox Song 1 – 晨光.png

Names come from producer.client.file_names. A name already taken (in this run, or by a
different file in the folder; compared case-insensitively, as macOS and Windows do)
gets " (2)", " (3)"…; a file already there with the very same bytes is kept, so fetching
twice copies nothing twice. Each copy is written to a temporary name, its sha256 checked
against the job record, and renamed into place only then.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from producer.client.file_names import numbered, safe_file_name
from producer.core.models.job_record import JobRecord, StoredObject
from producer.core.objects.links import ObjectLinks

CHUNK = 1 << 20
MAX_COLLISIONS = 1000


class FetchError(OSError):
    pass


def fetch_job(record: JobRecord, links: ObjectLinks, to: Path) -> list[Path]:
    """Copy every stored song and cover of `record` into `to`; returns the paths, in order."""
    to.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    paths: list[Path] = []
    for n, song in enumerate(record.songs, 1):
        stem = f"{n:02d} - {song.title.strip() or f'Song {n}'}"
        for obj in (song.audio, song.cover):
            if obj is not None:
                name = safe_file_name(stem, obj.key.rpartition(".")[2])
                paths.append(_copy(links, obj, to, name, taken))
    return paths


def _copy(links: ObjectLinks, obj: StoredObject, to: Path, name: str, taken: set[str]) -> Path:
    path, present = _place_for(obj, to, name, taken)
    taken.add(path.name.casefold())
    if present:
        return path
    temp = to / f".{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    try:
        with links.open(obj) as source, open(temp, "wb") as out:
            for block in iter(lambda: source.read(CHUNK), b""):
                out.write(block)
                digest.update(block)
        if digest.hexdigest() != obj.sha256:
            raise FetchError(f"{obj.uri}: the copy's sha256 {digest.hexdigest()} is not the recorded {obj.sha256}")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def _place_for(obj: StoredObject, to: Path, name: str, taken: set[str]) -> tuple[Path, bool]:
    """A free path for `obj` (False), or the path of an identical file already there (True)."""
    existing = {p.name.casefold(): p for p in to.iterdir()}
    for n in range(1, MAX_COLLISIONS + 1):
        candidate = name if n == 1 else numbered(name, n)
        key = candidate.casefold()
        if key in taken:
            continue
        there = existing.get(key)
        if there is None:
            return to / candidate, False
        if there.name == candidate and there.is_file() and _same_bytes(there, obj):
            return there, True
    raise FetchError(f"no free file name for {name!r} in {to}")


def _same_bytes(path: Path, obj: StoredObject) -> bool:
    if path.stat().st_size != obj.size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest() == obj.sha256
