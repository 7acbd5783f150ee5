"""songqueue producer: what a backend service imports to enqueue and follow song jobs.

The names below are loaded on first use (PEP 562), so `from producer.models import ...`
or `from producer.settings import Settings` does not pay for celery, kombu and redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.client.async_songqueue import AsyncSongQueue
    from producer.client.minimax_upload import UploadError
    from producer.client.songqueue import JobHandle, JobNotFound, SongQueue, WaitTimeout
    from producer.models.job_record import JobRecord, JobState
    from producer.models.minimax import MiniMaxRequest
    from producer.models.suno import SunoRequest
    from producer.models.udio import SongSource, UdioConfig, UdioRequest
    from producer.settings import Settings

# Public name -> the module that defines it.
_EXPORTS = {
    "AsyncSongQueue": "producer.client.async_songqueue",
    "JobHandle": "producer.client.songqueue",
    "JobNotFound": "producer.client.songqueue",
    "SongQueue": "producer.client.songqueue",
    "WaitTimeout": "producer.client.songqueue",
    "UploadError": "producer.client.minimax_upload",
    "JobRecord": "producer.models.job_record",
    "JobState": "producer.models.job_record",
    "MiniMaxRequest": "producer.models.minimax",
    "SunoRequest": "producer.models.suno",
    "SongSource": "producer.models.udio",
    "UdioConfig": "producer.models.udio",
    "UdioRequest": "producer.models.udio",
    "Settings": "producer.settings",
}

__all__ = [
    "AsyncSongQueue", "JobHandle", "JobNotFound", "JobRecord", "JobState", "MiniMaxRequest", "Settings", "SongQueue",
    "SongSource", "SunoRequest", "UdioConfig", "UdioRequest", "UploadError", "WaitTimeout",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'producer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
