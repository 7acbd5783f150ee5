"""songqueue producer: what a backend service imports to enqueue and follow song jobs.

The names below are loaded on first use (PEP 562), so `from producer.core.models import ...`
or `from producer.core.settings import Settings` does not pay for celery, kombu and redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.client.async_songqueue import AsyncSongQueue
    from producer.client.minimax_upload import UploadError
    from producer.client.songqueue import JobHandle, JobNotFound, SongQueue, WaitTimeout
    from producer.core.models.job_record import JobRecord, JobState
    from producer.core.models.minimax import MiniMaxRequest
    from producer.core.models.suno import SunoRequest
    from producer.core.models.udio import SongSource, UdioConfig, UdioRequest
    from producer.core.settings import Settings

# Public name -> the module that defines it.
_EXPORTS = {
    "AsyncSongQueue": "producer.client.async_songqueue",
    "JobHandle": "producer.client.songqueue",
    "JobNotFound": "producer.client.songqueue",
    "SongQueue": "producer.client.songqueue",
    "WaitTimeout": "producer.client.songqueue",
    "UploadError": "producer.client.minimax_upload",
    "JobRecord": "producer.core.models.job_record",
    "JobState": "producer.core.models.job_record",
    "MiniMaxRequest": "producer.core.models.minimax",
    "SunoRequest": "producer.core.models.suno",
    "SongSource": "producer.core.models.udio",
    "UdioConfig": "producer.core.models.udio",
    "UdioRequest": "producer.core.models.udio",
    "Settings": "producer.core.settings",
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
