"""songqueue producer: what a backend service imports to enqueue and follow song jobs."""

from producer.client.songqueue import JobHandle, JobNotFound, SongQueue, WaitTimeout
from producer.models.job_record import JobRecord, JobState
from producer.models.minimax import MiniMaxRequest
from producer.client.minimax_upload import UploadError
from producer.settings import Settings
from producer.models.udio import SongSource, UdioConfig, UdioRequest

__all__ = [
    "JobHandle", "JobNotFound", "JobRecord", "JobState", "MiniMaxRequest", "Settings", "SongQueue",
    "SongSource", "UdioConfig", "UdioRequest", "UploadError", "WaitTimeout",
]
