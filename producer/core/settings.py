"""Every setting of songqueue, read from `SONGQUEUE_*` variables and a `.env` file.

One class for both sides: the producer needs the broker and job store, the workers need
all of it. API keys are `SecretStr` so a repr, a log line or a validation error never
shows them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Providers polled until they end (the others answer in one call): each may override the
# global poll schedule with SONGQUEUE_{NAME}_POLL_* settings. Defined by the provider specs.
from producer.core.models.providers import POLLED_PROVIDERS
from producer.core.models.validation_errors import Wording, field_errors
from producer.core.store import sentinel_url

__all__ = ["AMQP_SCHEMES", "POLLED_PROVIDERS", "Settings", "describe_settings_error", "get_settings"]

# Broker URL schemes of RabbitMQ (kombu's py-amqp transport).
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")

# What the job store can use (and so what an empty SONGQUEUE_REDIS_URL takes from the broker).
_REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SONGQUEUE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    broker_url: str = "redis://localhost:6379/0"
    # Empty means "the broker, when the broker is Redis (or Redis through Sentinel)".
    redis_url: str = ""
    # Both URLs may be kombu's sentinel://h1:26379;sentinel://h2:26379 form
    # (producer/core/store/sentinel_url.py); the master's name is not in it.
    sentinel_master: str = Field("", description="Redis Sentinel: the master name the sentinels monitor")
    # Replication is asynchronous: a failover can lose the last writes. The one whose loss
    # could bill twice, a submit's intent, waits for this many replicas first (WAIT).
    redis_min_replicas: int = Field(
        0, ge=0, description="replicas that must hold a submit's intent before the paid call; 0 = do not wait")
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
    # 302.ai's path; MiniMax's own API (https://api.minimax.io) is /v1/music_generation.
    minimax_generate_path: str = "/minimaxi/v1/music_generation"
    # MiniMax answers in the generation call itself: its deadline is that call's read timeout.
    minimax_deadline: float = Field(300.0, gt=0, description="seconds the one generation call may take")
    minimax_price_per_call: float = Field(0.0, ge=0, description="price of one generation call")

    suno_base_url: str = "http://127.0.0.1:8808"
    suno_api_key: SecretStr = SecretStr("")
    # Some relays want the action upper-cased: /suno/submit/MUSIC.
    suno_submit_path: str = "/suno/submit/music"
    # Relays time a Suno task out after 10 min (Suno-API) to 24 h (new-api).
    suno_deadline: float = Field(3600.0, gt=0, description="seconds from submit to a terminal answer")
    suno_poll_initial_delay: float | None = Field(None, ge=0)
    suno_poll_min_interval: float | None = Field(None, gt=0)
    suno_poll_max_interval: float | None = Field(None, gt=0)
    suno_price_per_call: float = Field(0.0, ge=0, description="price of one submit (two clips)")
    # Batch polling (docs/providers.md): one POST /suno/fetch for up to this many due tasks;
    # 1 polls each task alone. A task left out of more than this many answers is failed.
    suno_poll_batch_size: int = Field(100, ge=1, le=1000, description="task ids per batch fetch")
    suno_max_absences: int = Field(5, ge=1, description="batch answers that may leave a task out")
    # A batch takes every task due within this many seconds: wider means fewer, fuller calls,
    # at the price of fetching some tasks that much early.
    suno_poll_batch_window: float = Field(10.0, ge=0, description="seconds ahead a batch fetch may reach")

    # Shared limits (workers/admission/limits.py), per provider and across every worker; unset means
    # no limit. A job over a limit waits by countdown, never fails for it.
    udio_max_in_flight: int | None = Field(None, ge=1, description="upstream tasks submitted and not yet done")
    udio_submit_rate: float | None = Field(None, gt=0, description="submit calls per second")
    udio_poll_rate: float | None = Field(None, gt=0, description="fetch calls per second")
    suno_max_in_flight: int | None = Field(None, ge=1, description="upstream tasks submitted and not yet done")
    suno_submit_rate: float | None = Field(None, gt=0, description="submit calls per second")
    suno_poll_rate: float | None = Field(None, gt=0, description="fetch calls per second (a batch fetch is one)")
    minimax_max_in_flight: int | None = Field(None, ge=1, description="generation calls running at once")
    minimax_submit_rate: float | None = Field(None, gt=0, description="generation calls per second")
    # Daily budget per provider (workers/admission/budget.py), in the unit of *_PRICE_PER_CALL, per UTC day.
    udio_daily_budget: float | None = Field(None, ge=0)
    minimax_daily_budget: float | None = Field(None, ge=0)
    suno_daily_budget: float | None = Field(None, ge=0)
    budget_policy: Literal["wait", "fail"] = Field("wait", description="what a submit over its budget does")
    limit_wait: float = Field(5.0, gt=0, description="seconds between tries of a job waiting for an in-flight slot")
    budget_wait: float = Field(300.0, gt=0, description="seconds between tries of a job waiting for budget")

    # A redelivered submit that finds an intent but no upstream task id cannot know whether
    # the paid call went through: fail it for an operator, or submit again.
    uncertain_submit: Literal["fail", "resubmit"] = "fail"
    # Every run that reaches the paid call counts (429s and redeliveries included); past
    # the cap the job fails rather than paying on every redelivery of a poison submit.
    max_submit_attempts: int = Field(10, ge=1, description="paid-call attempts per job before FAILED")

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
    download_allowed_hosts: str = Field(
        "", description="comma-separated hosts (and their subdomains) downloads may come from; empty = any")
    # Every URL songqueue did not configure (downloads, redirects, callbacks) is refused when it
    # points at a loopback/private/link-local/... address (producer/core/url_guard.py);
    # true lifts that for all hosts (a local sandbox, a private CDN), an allow-list per host.
    allow_private_networks: bool = Field(False, description="let downloads and callbacks reach private addresses")
    # One read, one write and one hash call per chunk: 1 MiB keeps the per-call cost small
    # against the bytes (64 KiB chunks ran at half the speed) for 1 MiB of memory a download.
    download_chunk_bytes: int = Field(1024 * 1024, gt=0)

    # The watchdog (a round every worker runs on a timer) reschedules any job whose next step is overdue by more
    # than watchdog_grace seconds: recovery from a killed worker without waiting for the
    # broker's visibility timeout.
    watchdog_interval: float = Field(10.0, gt=0)
    watchdog_grace: float = Field(30.0, gt=0)
    max_deliveries: int = Field(5, ge=1, description="runs of one download before it counts as poison")

    # Retention (producer/core/store/retention.py): an ended job's record, its index entries and
    # idempotency key leave Redis this many seconds after it ended; manifest.json in storage
    # stays the durable record. Ended playlist runs have their own. 0 keeps them forever.
    job_retention: int = Field(30 * 24 * 3600, ge=0, description="seconds an ended job stays in Redis; 0 = forever")
    playlist_run_retention: int = Field(
        30 * 24 * 3600, ge=0, description="seconds an ended playlist run stays in Redis; 0 = forever")
    retention_sweep_interval: float = Field(
        300.0, gt=0, description="seconds between sweeps of expired jobs' index entries")

    # Scheduled playlists (producer/core/playlists/definition.py): TOML definitions read by the
    # beat and the workers; a running batch is checked by countdown every interval.
    playlists_dir: str = Field("./playlists", description="folder of playlist definitions (*.toml)")
    playlist_check_interval: float = Field(5.0, gt=0, description="seconds between checks of a running playlist")

    # Outbound callbacks (producer/core/callbacks.py): a job's status POSTed to its callback_url,
    # signed with HMAC-SHA256; retried with backoff within both bounds, never failing the job.
    callback_secret: SecretStr = SecretStr("")
    callback_allowed_hosts: str = Field(
        "", description="comma-separated hosts (and their subdomains) callbacks may go to; empty = any")
    callback_timeout: float = Field(5.0, gt=0, le=60, description="connect and read timeout of one delivery")
    callback_max_attempts: int = Field(10, ge=1, description="deliveries of one event before giving up")
    callback_max_seconds: float = Field(3600.0, gt=0, description="seconds from the event after which no retry is made")
    callback_retry_delay: float = Field(5.0, gt=0, description="first backoff after a failed delivery")
    callback_retry_max_delay: float = Field(300.0, gt=0, description="backoff cap between deliveries")
    callback_progress: bool = Field(False, description="also call every job with a callback_url on progress")

    # Inbound notify hook (producer/api/notify_hook.py): the gateway calls this URL when a task
    # changes status, and the job is polled at once. Empty: no hook is sent upstream.
    notify_hook_url: str = ""
    # The submit-body field that carries the hook URL (unconfirmed in the gateways' docs).
    udio_notify_field: str = Field("notify_hook", min_length=1)
    notify_min_interval: float = Field(10.0, gt=0, description="at most one hook-triggered poll per job per this many seconds")
    # An uncertain submit of a provider whose gateway calls the hook (Udio) waits this long
    # for the signed hook to name its task before SONGQUEUE_UNCERTAIN_SUBMIT decides; needs
    # the hook URL and SONGQUEUE_CALLBACK_SECRET (which signs the per-job hook URL).
    uncertain_hook_wait: float = Field(
        600.0, ge=0, description="seconds an uncertain submit waits for the notify hook to name its task; 0 = no wait")

    # Operators: Flower's basic auth (`songqueue flower` refuses to start without it unless
    # --insecure), JSON log lines, and how long a stopping worker keeps running tasks before
    # it hands everything it holds (countdowns included) back to the broker (Celery 5.5+).
    flower_user: str = ""
    # `songqueue metrics`: when set, /metrics wants `Authorization: Bearer <token>` (spend, budgets, queue depths).
    metrics_token: SecretStr = SecretStr("")
    flower_password: SecretStr = SecretStr("")
    log_json: bool = False
    worker_soft_shutdown_timeout: float = Field(
        0.0, ge=0, description="seconds of soft shutdown on SIGQUIT (or SIGTERM with REMAP_SIGTERM=SIGQUIT); 0 = off")

    # Celery raises a worker's prefetch by one for each countdown (ETA) message it holds, so
    # with 10,000 jobs polling one worker would hold 10,000 messages in memory. This caps the
    # messages one worker process holds (countdowns plus reserved); the rest wait in the broker.
    worker_eta_task_limit: int = Field(
        1000, ge=0, description="messages (countdowns included) one worker holds at most; 0 = no limit")
    # A prefork child past this resident size is replaced after its current task (Celery's
    # worker_max_memory_per_child): a backstop, since what makes a child grow is freed garbage
    # the allocator keeps (docs/benchmarks.md, "Pool-child growth"), not a leak of ours.
    worker_max_memory_per_child: int = Field(
        512, ge=0, description="MiB of resident memory after which a prefork child is replaced; 0 = never")
    # RabbitMQ only. "quorum": the task queues are replicated quorum queues and countdowns wait
    # in the broker (Celery's native delayed delivery through the celery_delayed_* exchanges),
    # not in a worker; "classic": Celery's default queues, countdowns held by the worker.
    amqp_queue_type: Literal["classic", "quorum"] = Field(
        "classic", description="RabbitMQ task queues: classic, or quorum with countdowns kept in the broker")
    # Each pool child runs gc.collect(); gc.freeze() at start, so retry garbage is collected
    # soon (workers/diagnostics.py; measured by bench/gc_freeze.py and bench/retry_garbage.py).
    gc_freeze: bool = Field(True, description="pool children freeze the heap they inherit (gc.freeze) at start")
    # Diagnostics: each worker process dumps its top allocation sites here (workers/diagnostics.py).
    tracemalloc_dir: str = Field("", description="folder for tracemalloc dumps of worker processes; empty = off")
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

    @field_validator("broker_url")
    @classmethod
    def _broker_sentinel_form(cls, url: str) -> str:
        if sentinel_url.is_sentinel(url):
            sentinel_url.parse(url)
        return url

    @field_validator("redis_url")
    @classmethod
    def _job_store_scheme(cls, url: str) -> str:
        if sentinel_url.is_sentinel(url):
            sentinel_url.parse(url)
        elif url and urlparse(url).scheme not in _REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss://, unix:// or sentinel:// (or be empty: the broker's)")
        return url

    @model_validator(mode="after")
    def _sentinel_needs_a_master(self) -> Settings:
        if not self.sentinel_master and any(sentinel_url.is_sentinel(u) for u in (self.broker_url, self.redis_url)):
            raise ValueError("sentinel_master: required when SONGQUEUE_BROKER_URL or SONGQUEUE_REDIS_URL is a "
                             "sentinel:// URL; set it to the name of `sentinel monitor NAME ...` in sentinel.conf")
        return self

    @field_validator("notify_hook_url")
    @classmethod
    def _hook_is_http(cls, url: str) -> str:
        if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname):
            raise ValueError("must be an http:// or https:// URL (or empty, for no hook)")
        return url

    @field_validator("udio_max_in_flight", "udio_submit_rate", "udio_poll_rate", "minimax_max_in_flight",
                     "minimax_submit_rate", "udio_daily_budget", "minimax_daily_budget", "suno_max_in_flight",
                     "suno_submit_rate", "suno_poll_rate", "suno_daily_budget", mode="before")
    @classmethod
    def _empty_means_unlimited(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("flower_user")
    @classmethod
    def _flower_user_fits_basic_auth(cls, user: str) -> str:
        # Flower takes "user:password[,user:password]": neither may hold a comma, a user no colon.
        if "," in user or ":" in user:
            raise ValueError("must not contain ',' or ':'")
        return user

    @field_validator("flower_password")
    @classmethod
    def _flower_password_fits_basic_auth(cls, password: SecretStr) -> SecretStr:
        if "," in password.get_secret_value():
            raise ValueError("must not contain ','")
        return password

    @model_validator(mode="after")
    def _limit_waits_stay_under_visibility(self) -> Settings:
        # A waiting job retries by countdown: the same rule as every other countdown.
        longest = max(self.limit_wait, self.budget_wait)
        if self.visibility_timeout <= longest + self.task_time_limit:
            raise ValueError("visibility_timeout must exceed limit_wait and budget_wait plus task_time_limit "
                             f"({longest:.0f}+{self.task_time_limit}s)")
        return self

    @model_validator(mode="after")
    def _budget_needs_a_price(self) -> Settings:
        # With a price of 0 every call costs nothing, so the budget would never hold anything back.
        for provider in ("udio", "minimax"):
            if self.daily_budget(provider) is not None and getattr(self, f"{provider}_price_per_call") <= 0:
                raise ValueError(
                    f"{provider}_daily_budget: needs SONGQUEUE_{provider.upper()}_PRICE_PER_CALL > 0 (with a price of 0 "
                    "every call is free and the budget enforces nothing); set the price or unset the budget")
        return self

    def daily_budget(self, provider: str) -> float | None:
        """SONGQUEUE_{PROVIDER}_DAILY_BUDGET; None = unlimited."""
        return getattr(self, f"{provider}_daily_budget", None)

    def max_in_flight(self, provider: str) -> int | None:
        return getattr(self, f"{provider}_max_in_flight", None)

    def call_rate(self, provider: str, call: Literal["submit", "poll"]) -> float | None:
        """SONGQUEUE_{PROVIDER}_{SUBMIT|POLL}_RATE, calls per second; None = unlimited."""
        return getattr(self, f"{provider}_{call}_rate", None)

    @model_validator(mode="after")
    def _visibility_outlives_every_countdown(self) -> Settings:
        # A countdown longer than the visibility timeout runs twice on Redis (docs/architecture.md).
        schedules = [self.poll_schedule(p) for p in POLLED_PROVIDERS]
        longest = max(self.poll_max_interval, self.retry_max_delay, self.poll_initial_delay, self.callback_retry_max_delay,
                      self.playlist_check_interval,
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
        if self.amqp_queue_type == "quorum" and not self.broker_url.startswith(AMQP_SCHEMES):
            raise ValueError("amqp_queue_type=quorum needs a RabbitMQ broker_url (amqp:// or amqps://); "
                             "Redis keeps countdowns in the worker whatever the queue type")
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
    def download_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.download_allowed_hosts.split(",") if h.strip())

    @property
    def callback_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.callback_allowed_hosts.split(",") if h.strip())

    @property
    def job_store_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if urlparse(self.broker_url).scheme in _REDIS_SCHEMES:
            return self.broker_url
        raise ValueError("SONGQUEUE_REDIS_URL is required when the broker is not Redis")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


# A field validator's rule may itself hold ": " (it is not a key); a model-level one names its key first.
_SETTINGS = Wording(whole="settings", named_by_model_only=True)


def describe_settings_error(exc: ValidationError) -> str:
    """One line per broken setting, by its variable's name: `  SONGQUEUE_BROKER_URL: rule`.

    The value given is never quoted: a URL may hold a password."""
    return "\n".join(f"  SONGQUEUE_{name.upper()}: {rule}" if name != "settings" else f"  {rule}"
                     for name, rule in field_errors(exc, _SETTINGS))
