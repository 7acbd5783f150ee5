"""songqueue producer: what a backend service imports to enqueue and follow song jobs."""

from producer.client import JobHandle, JobNotFound, SongQueue, WaitTimeout
from producer.job_record import JobRecord, JobState
from producer.settings import Settings
from producer.udio_request import SongSource, UdioConfig, UdioRequest

__all__ = [
    "JobHandle", "JobNotFound", "JobRecord", "JobState", "Settings", "SongQueue",
    "SongSource", "UdioConfig", "UdioRequest", "WaitTimeout",
]
