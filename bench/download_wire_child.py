"""The measured side of bench/download_wire.py, run as a script in a fresh process with
PYTHONPATH set to the songqueue source tree to measure: stores songs with that tree's
`store_audio` and prints one JSON line (MiB/s and CPU ms per file, VmHWM after imports and
at the end). Imports only the standard library, `producer` and `workers`.

    python bench/download_wire_child.py SETTINGS_JSON SONGS_JSON COUNT
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from producer.core.models.job_record import JobRecord, SongRecord
from producer.core.settings import Settings
from producer.core.url_guard import download_policy
from workers.artifacts.assets import store_audio
from workers.artifacts.downloader import download_to_storage
from workers.artifacts.manifest import cover_key
from workers.storage import open_storage

MIB = 1024 * 1024


def vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(settings_json: str, songs_json: str, count: int) -> dict:
    settings = Settings(**json.loads(settings_json))
    storage = open_storage(settings)
    songs = [SongRecord(upstream_id=s["id"], title=s["title"], duration=s["duration"], lyrics=s.get("lyrics", ""),
                        tags=s["tags"], song_path=s["song_path"], image_path=s["image_path"])
             for s in json.loads(songs_json)]
    record = JobRecord(id="wire", provider="udio", model="udio32-v1.5", request={"prompt": "bench"},
                       upstream_task_id="bench", songs=songs)
    # The cover stored first, as when the cover task wins: its APIC frame comes from storage.
    for n, song in enumerate(songs):
        song.cover = download_to_storage(
            song.image_path, storage, kind="image", key_for=lambda ext, n=n: cover_key("wire", n, ext),
            max_bytes=settings.max_cover_bytes, timeout=settings.http_timeout,
            chunk_bytes=settings.download_chunk_bytes, policy=download_policy(settings))
    floor = vm_hwm_mib()
    rates, cpu_ms = [], []
    for i in range(count):
        wall, cpu = time.perf_counter(), time.process_time()
        # A key of its own per file, as every song has: writing over an earlier file would
        # count freeing that file's blocks (about 20 ms for 50 MiB here), which no download pays.
        own = record.model_copy(update={"id": f"wire{i}"})
        stored = store_audio(storage, settings, own, i % len(songs))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rates.append(stored.size / MIB / wall)
        cpu_ms.append(cpu * 1000)
    return {"rates": rates, "cpu_ms": cpu_ms, "peak_mib": vm_hwm_mib(), "floor_mib": floor}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
