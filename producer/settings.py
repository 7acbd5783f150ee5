"""Every setting of songqueue, read from `SONGQUEUE_*` variables and a `.env` file.

One class for both sides: the producer needs the broker and job store, the workers need
all of it. API keys are `SecretStr` so a repr, a log line or a validation error never
shows them.
"""

from __future__ import annotations

from functools import lru_cache

from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


# Providers polled until they end (the others answer in one call): each may override the
# global poll schedule with SONGQUEUE_{NAME}_POLL_* settings.
POLLED_PROVIDERS = ("udio",)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SONGQUEUE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    broker_url: str = "redis://localhost:6379/0"
    # Empty means "the broker, when the broker is Redis".
    redis_url: str = ""
    key_prefix: str = Field("songqueue", description="prefix of every Redis key of the job store")

    storage_url: str = "file://./var/objects"
    # S3 credentials are not settings: boto3 reads the standard AWS variables and files.
    s3_endpoint_url: str = ""
    s3_part_bytes: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024, description="multipart part size (S3's minimum is 5 MiB)")
    link_expiry: int = Field(3600, gt=0, le=7 * 24 * 3600, description="seconds a presigned S3 link stays valid")
    # Artifacts: every MP3 is spooled to a local file, verified and tagged before storage.
    spool_dir: str = Field("", description="folder for downloads in flight; empty means the system temp folder")
    duration_tolerance: float = Field(2.0, ge=0, description="seconds an MP3 may differ from the upstream's duration")
    max_cover_bytes: int = Field(10 * 1024 * 1024, gt=0)
    tag_artist: str = Field("", description='ID3 artist; empty means "songqueue (PROVIDER MODEL)"')

    udio_base_url: str = "http://127.0.0.1:8808"
    udio_api_key: SecretStr = SecretStr("")
    udio_submit_path: str = "/udio/generate-proxy"
    udio_deadline: float = Field(7200.0, gt=0, description="seconds from submit to a terminal answer")
    # Per-provider poll schedule; unset means the global poll_* value (see for_provider).
    udio_poll_initial_delay: float | None = Field(None, ge=0)
    udio_poll_min_interval: float | None = Field(None, gt=0)
    udio_poll_max_interval: float | None = Field(None, gt=0)
    # Billed per submit call; a model may cost a multiple (udio130 = 2 x udio32).
    udio_price_per_call: float = Field(0.0, ge=0, description="price of one udio32 submit, in your currency")

    minimax_base_url: str = "https://api.302.ai"
    minimax_api_key: SecretStr = SecretStr("")
    # MiniMax answers in the generation call itself: its deadline is that call's read timeout.
    minimax_deadline: float = Field(300.0, gt=0, description="seconds the one generation call may take")
    minimax_price_per_call: float = Field(0.0, ge=0, description="price of one generation call")

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

    # The watchdog (a beat task) reschedules any job whose next step is overdue by more
    # than watchdog_grace seconds: recovery from a killed worker without waiting for the
    # broker's visibility timeout.
    watchdog_interval: float = Field(10.0, gt=0)
    watchdog_grace: float = Field(30.0, gt=0)
    max_deliveries: int = Field(5, ge=1, description="runs of one download before it counts as poison")

    task_time_limit: int = Field(600, gt=0, description="hard limit of any one task run, seconds")
    visibility_timeout: int = Field(
        3 * 3600, gt=0, description="Redis broker: seconds before an unacked message is redelivered"
    )

    @field_validator("storage_url")
    @classmethod
    def _known_storage_scheme(cls, url: str) -> str:
        parsed = urlparse(url)
        if parsed.scheme == "s3" and not parsed.netloc:
            raise ValueError("an s3:// storage URL needs a bucket: s3://BUCKET[/PREFIX]")
        if parsed.scheme not in ("file", "s3"):
            raise ValueError("must start with file:// or s3://")
        return url

    @model_validator(mode="after")
    def _visibility_outlives_every_countdown(self) -> "Settings":
        # A countdown longer than the visibility timeout runs twice on Redis (design.md).
        schedules = [self.poll_schedule(p) for p in POLLED_PROVIDERS]
        longest = max(self.poll_max_interval, self.retry_max_delay, self.poll_initial_delay,
                      *(max(first, most) for first, _, most in schedules))
        if self.visibility_timeout <= longest + self.task_time_limit:
            raise ValueError(
                "visibility_timeout must exceed the longest countdown plus task_time_limit "
                f"({longest:.0f}+{self.task_time_limit}s)"
            )
        if self.poll_min_interval > self.poll_max_interval:
            raise ValueError("poll_min_interval must be <= poll_max_interval")
        for provider, (_, least, most) in zip(POLLED_PROVIDERS, schedules):
            if least > most:
                raise ValueError(f"{provider}_poll_min_interval must be <= {provider}_poll_max_interval "
                                 "(or the global value it falls back to)")
        # The generation call runs inside one submit task, which must not be cut off mid-call.
        if self.minimax_deadline + 10 >= self.task_time_limit - 30:
            raise ValueError("minimax_deadline must be shorter than task_time_limit minus 40s "
                             f"(its soft limit and the connect timeout): {self.minimax_deadline:.0f}s")
        return self

    def for_provider(self, provider: str, name: str) -> Any:
        """`{provider}_{name}` when that setting exists and is set, else the global `name`."""
        value = getattr(self, f"{provider}_{name}", None)
        return getattr(self, name) if value is None else value

    def poll_schedule(self, provider: str) -> tuple[float, float, float]:
        """(initial delay, min interval, max interval) of polling `provider`."""
        return (self.for_provider(provider, "poll_initial_delay"), self.for_provider(provider, "poll_min_interval"),
                self.for_provider(provider, "poll_max_interval"))

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
