"""Every setting of songqueue, read from `SONGQUEUE_*` variables and a `.env` file.

One class for both sides: the producer needs the broker and job store, the workers need
all of it. API keys are `SecretStr` so a repr, a log line or a validation error never
shows them.
"""

from __future__ import annotations

from functools import lru_cache

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SONGQUEUE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    broker_url: str = "redis://localhost:6379/0"
    # Empty means "the broker, when the broker is Redis".
    redis_url: str = ""
    key_prefix: str = Field("songqueue", description="prefix of every Redis key of the job store")

    storage_url: str = "file://./var/objects"
    s3_endpoint_url: str = ""

    udio_base_url: str = "http://127.0.0.1:8808"
    udio_api_key: SecretStr = SecretStr("")
    udio_submit_path: str = "/udio/generate-proxy"
    udio_deadline: float = Field(7200.0, gt=0, description="seconds from submit to a terminal answer")

    minimax_base_url: str = "https://api.302.ai"
    minimax_api_key: SecretStr = SecretStr("")

    # A redelivered submit that finds an intent but no upstream task id cannot know whether
    # the paid call went through: fail it for an operator, or submit again.
    uncertain_submit: Literal["fail", "resubmit"] = "fail"

    # Polling: the first poll waits poll_initial_delay; later ones aim at the upstream's
    # expected finish (from its progress), clamped to [poll_min_interval, poll_max_interval].
    poll_initial_delay: float = Field(5.0, ge=0)
    poll_min_interval: float = Field(2.0, gt=0)
    poll_max_interval: float = Field(30.0, gt=0)

    # Transient upstream faults: exponential backoff with full jitter, bounded per job.
    retry_base_delay: float = Field(2.0, gt=0)
    retry_max_delay: float = Field(60.0, gt=0)
    max_transient_errors: int = Field(8, ge=0, description="per job and step, before FAILED")

    http_timeout: float = Field(30.0, gt=0, description="connect+read timeout of upstream calls")
    max_json_bytes: int = Field(4 * 1024 * 1024, gt=0)
    max_download_bytes: int = Field(200 * 1024 * 1024, gt=0)
    download_chunk_bytes: int = Field(64 * 1024, gt=0)

    task_time_limit: int = Field(600, gt=0, description="hard limit of any one task run, seconds")
    visibility_timeout: int = Field(
        3 * 3600, gt=0, description="Redis broker: seconds before an unacked message is redelivered"
    )

    @model_validator(mode="after")
    def _visibility_outlives_every_countdown(self) -> "Settings":
        # A countdown longer than the visibility timeout runs twice on Redis (design.md).
        longest = max(self.poll_max_interval, self.retry_max_delay, self.poll_initial_delay)
        if self.visibility_timeout <= longest + self.task_time_limit:
            raise ValueError(
                "visibility_timeout must exceed the longest countdown plus task_time_limit "
                f"({longest:.0f}+{self.task_time_limit}s)"
            )
        if self.poll_min_interval > self.poll_max_interval:
            raise ValueError("poll_min_interval must be <= poll_max_interval")
        return self

    @property
    def job_store_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://", "unix://")):
            return self.broker_url
        raise ValueError("SONGQUEUE_REDIS_URL is required when the broker is not Redis")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
