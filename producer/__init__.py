"""songqueue producer: what a backend service imports to enqueue and follow song jobs."""

from producer.client import JobHandle, JobNotFound, SongQueue, WaitTimeout
from producer.job_record import JobRecord, JobState
from producer.minimax_request import MiniMaxRequest
from producer.minimax_upload import UploadError
from producer.settings import Settings
from producer.udio_request import SongSource, UdioConfig, UdioRequest

__all__ = [
    "JobHandle", "JobNotFound", "JobRecord", "JobState", "MiniMaxRequest", "Settings", "SongQueue",
    "SongSource", "UdioConfig", "UdioRequest", "UploadError", "WaitTimeout",
]
