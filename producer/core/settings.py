"""Every setting of songqueue, read from `SONGQUEUE_*` variables and a `.env` file.

One class for both sides: the producer needs the broker and job store, the workers need
all of it. API keys are `SecretStr` so a repr, a log line or a validation error never
shows them.

Each field is one variable (`watchdog_grace` is `SONGQUEUE_WATCHDOG_GRACE`), declared with
`setting(default, group, description, **rules)`: the group (a key of `GROUPS`) and the
description make docs/configuration.md (`python -m producer.core.settings_doc`). The
fields of a provider (`udio_*`, `minimax_*`, `suno_*`) are read flat too, and reached typed
as `settings.provider("suno")` (producer/core/provider_settings.py).
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any, Literal, overload
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Providers polled until they end (the others answer in one call): each may override the
# global poll schedule with SONGQUEUE_{NAME}_POLL_* settings. Defined by the provider specs.
from producer.core.models.providers import POLLED_PROVIDERS, PROVIDERS, UnknownProvider
from producer.core.models.validation_errors import Wording, field_errors
from producer.core.provider_settings import (
    PROVIDER_SETTINGS,
    MiniMaxSettings,
    PolledProviderSettings,
    ProviderSettings,
    SunoSettings,
    UdioSettings,
    flat_fields,
)
from producer.core.store import cluster_url, sentinel_url

__all__ = ["AMQP_SCHEMES", "GROUPS", "POLLED_PROVIDERS", "Settings", "describe_settings_error", "get_settings",
           "setting"]

# Broker URL schemes of RabbitMQ (kombu's py-amqp transport).
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")

# What the job store can use (and so what an empty SONGQUEUE_REDIS_URL takes from the broker).
_REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")

# The groups of settings, in the order docs/configuration.md shows them: each field names one.
# A provider's group is its name.
GROUPS: dict[str, str] = {
    "broker": "Broker",
    "store": "Job store (Redis)",
    "retention": "Retention",
    "storage": "Song storage and files",
    "udio": "Provider: Udio",
    "minimax": "Provider: MiniMax",
    "suno": "Provider: Suno",
    "admission": "Limits and budgets",
    "submits": "Paid submits",
    "polling": "Polling",
    "retries": "Transient faults",
    "http": "Upstream calls and downloads",
    "watchdog": "Watchdog",
    "playlists": "Scheduled playlists",
    "callbacks": "Outbound callbacks",
    "hooks": "Inbound notify hook",
    "workers": "Worker processes",
    "operators": "Operator servers",
    "diagnostics": "Logging and diagnostics",
}


def setting(default: Any, group: str, description: str, **rules: Any) -> Any:
    """One setting's field: its default, its group (a key of GROUPS), what it does, and its rules (ge=, ...)."""
    if group not in GROUPS:
        raise ValueError(f"unknown settings group {group!r}; known: {', '.join(GROUPS)}")
    return Field(default, description=description, json_schema_extra={"group": group}, **rules)


# Limits and budgets of every provider: an empty value (SONGQUEUE_UDIO_MAX_IN_FLIGHT=) means unset, no limit.
_LIMIT_FIELDS = tuple(flat for name in PROVIDER_SETTINGS for field, flat in flat_fields(name).items()
                      if field in ("max_in_flight", "submit_rate", "poll_rate", "daily_budget"))

def signing_seed(text: str) -> bytes:
    """The 32-byte ed25519 seed of a `whsk_<base64>` key (SONGQUEUE_CALLBACK_SIGNING_KEY); the key is never quoted."""
    if not text.startswith("whsk_"):
        raise ValueError("must start with whsk_ (an ed25519 key, base64)")
    try:
        raw = base64.b64decode(text.removeprefix("whsk_"), validate=True)
    except ValueError:
        raise ValueError("is not valid base64 after whsk_") from None
    if len(raw) not in (32, 64):
        raise ValueError("must hold 32 bytes (the seed) or 64 (seed and public key)")
    return raw[:32]


def parse_delays(text: str) -> tuple[float, ...]:
    """A comma list of delays in seconds (SONGQUEUE_CALLBACK_SCHEDULE): each a number >= 0, at least one."""
    parts = [p.strip() for p in text.split(",")]
    try:
        delays = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError("must be a comma-separated list of delays in seconds, such as 0,5,300") from None
    if not delays or any(d < 0 or d != d or d == float("inf") for d in delays):
        raise ValueError("every delay must be a finite number of seconds >= 0")
    return delays


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SONGQUEUE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- broker ---
    broker_url: str = setting(
        "redis://localhost:6379/0", "broker",
        "Celery broker: `redis://`, `rediss://`, `amqp://`, or Redis through Sentinel, "
        "`sentinel://H1:26379;sentinel://H2:26379;…` ([Redis Sentinel](#redis-sentinel))")
    # RabbitMQ only. "quorum": the task queues are replicated quorum queues and countdowns wait
    # in the broker (Celery's native delayed delivery through the celery_delayed_* exchanges),
    # not in a worker; "classic": Celery's default queues, countdowns held by the worker.
    amqp_queue_type: Literal["classic", "quorum"] = setting(
        "classic", "broker",
        "RabbitMQ brokers only: `classic` (Celery's default queues: a worker fetches each countdown at once and "
        "holds it until due) or `quorum` (the task queues are replicated quorum queues, and countdowns wait in "
        "the broker, in the `celery_delayed_*` queues of Celery's native delayed delivery, rounded up to whole "
        "seconds). Senders and workers must agree; switching an existing vhost needs its queues deleted first "
        "([operations](operations.md#rabbitmq-quorum-queues))")
    visibility_timeout: int = setting(
        3 * 3600, "broker",
        "Redis broker: seconds before an unacked message is redelivered; must exceed the longest countdown "
        "plus the task time limit (checked at start-up)", gt=0)

    # --- store ---
    # Empty means "the broker, when the broker is Redis (or Redis through Sentinel)".
    redis_url: str = setting(
        "", "store",
        "job store: `redis://`, `rediss://`, `unix://`, `sentinel://…` (the broker's form) or Redis Cluster, "
        "`redis-cluster://H1:P1,H2:P2` (needs a hash tag in `KEY_PREFIX`: [architecture]"
        "(architecture.md#redis-keys-and-redis-cluster)); empty means the broker, when it is Redis (or "
        "Sentinel); required when the broker is not Redis")
    # Both URLs may be kombu's sentinel://h1:26379;sentinel://h2:26379 form
    # (producer/core/store/sentinel_url.py); the master's name is not in it.
    sentinel_master: str = setting(
        "", "store",
        "the master name the sentinels monitor (`sentinel monitor NAME …`); required when either URL is "
        "`sentinel://`")
    # Replication is asynchronous: a failover can lose the last writes. The one whose loss
    # could bill twice, a submit's intent, waits for this many replicas first (WAIT).
    redis_min_replicas: int = setting(
        0, "store",
        "replicas that must hold a submit's intent (Redis `WAIT`, up to 2 s) before the paid call; short of them "
        "the submit backs off without calling and, past `MAX_TRANSIENT_ERRORS`, fails `redis_not_replicated`; "
        "0 = do not wait", ge=0)
    key_prefix: str = setting(
        "songqueue", "store",
        "prefix of every job-store key; with a `redis-cluster://` job store it must hold a hash tag, e.g. "
        "`{songqueue}`, so every key is on one slot")

    # --- retention ---
    # Retention (producer/core/store/retention.py): an ended job's record, its index entries and
    # idempotency key leave Redis this many seconds after it ended; manifest.json in storage
    # stays the durable record. Ended playlist runs have their own. 0 keeps them forever.
    job_retention: int = setting(
        30 * 24 * 3600, "retention",
        "seconds (30 days) an ended job (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED) stays in Redis: its record and "
        "idempotency key expire then, its index entries go at the next retention sweep; its `manifest.json` in "
        "storage stays and answers `status`/`fetch` afterwards "
        "([architecture](architecture.md#retention-redis-forgets-storage-remembers)); 0 keeps ended jobs forever",
        ge=0)
    playlist_run_retention: int = setting(
        30 * 24 * 3600, "retention",
        "the same for ended playlist runs (their playlist files stay in storage); 0 keeps them forever", ge=0)
    retention_sweep_interval: float = setting(
        300.0, "retention",
        "seconds between retention sweeps (one per interval across the fleet, on the watchdog timer) that prune "
        "expired jobs' and runs' index entries", gt=0)

    # --- storage ---
    storage_url: str = setting(
        "file://./var/objects", "storage",
        "where songs go: a `file://` path (relative to the working directory) or `s3://BUCKET[/PREFIX]`")
    # S3 credentials are not settings: boto3 reads the standard AWS variables and files.
    s3_endpoint_url: str = setting(
        "", "storage", "S3-compatible endpoint (MinIO etc.), addressed by path; empty means AWS")
    s3_part_bytes: int = setting(
        8 * 1024 * 1024, "storage", "multipart upload part size (at least 5 MiB, S3's minimum)",
        ge=5 * 1024 * 1024)
    link_expiry: int = setting(
        3600, "storage", "seconds a presigned S3 link (`status --json`) stays valid (at most 7 days)",
        gt=0, le=7 * 24 * 3600)
    # Artifacts: every MP3 is spooled to a local file, verified and tagged before storage.
    spool_dir: str = setting(
        "", "storage",
        "folder for downloads being verified and tagged, and MiniMax's hex audio being decoded; empty means the "
        "system temp folder. On the same filesystem as file storage, a finished song is linked into place "
        "instead of copied")
    duration_tolerance: float = setting(
        2.0, "storage", "seconds an MP3's length may differ from the upstream's `duration`", ge=0)
    max_cover_bytes: int = setting(10 * 1024 * 1024, "storage", "cap on one downloaded cover image", gt=0)
    tag_artist: str = setting(
        "", "storage", "ID3 artist of every song; empty means `songqueue (PROVIDER MODEL)`")

    # --- udio ---
    udio_base_url: str = setting("http://127.0.0.1:8808", "udio", "Udio gateway base URL (the sandbox's default port)")
    udio_api_key: SecretStr = setting(SecretStr(""), "udio", "sent as `Authorization: Bearer …`; never logged")
    udio_submit_path: str = setting(
        "/udio/generate-proxy", "udio", "submit path; `/udio/submit/music` for openai-hk-style gateways")
    # The submit-body field that carries the hook URL (unconfirmed in the gateways' docs).
    udio_notify_field: str = setting(
        "notify_hook", "udio",
        "name of the submit-body field (top level, beside `gen_params`) that carries the notify hook URL",
        min_length=1)
    udio_deadline: float = setting(
        7200.0, "udio", "seconds from submit to a terminal answer before TIMED_OUT", gt=0)
    # Billed per submit call; a model may cost a multiple (udio130 = 2 x udio32).
    udio_price_per_call: float = setting(
        0.0, "udio",
        "price of one `udio32-v1.5` submit, in your currency; other models cost a multiple "
        "(see [Price of a job](cli.md#price-of-a-job))", ge=0)
    # Shared limits (workers/admission/limits.py), per provider and across every worker; unset means
    # no limit. A job over a limit waits by countdown, never fails for it.
    udio_max_in_flight: int | None = setting(
        None, "udio",
        "Udio tasks submitted and not yet done (SUBMITTING, SUBMITTED, GENERATING), across all workers; more "
        "submits wait; unset = no limit", ge=1)
    udio_submit_rate: float | None = setting(
        None, "udio",
        "Udio submit calls per second, across all workers (token bucket, burst of one second's worth, at least 1); "
        "unset = no limit", gt=0)
    udio_poll_rate: float | None = setting(
        None, "udio", "Udio fetch calls per second, across all workers; unset = no limit", gt=0)
    # Daily budget per provider (workers/admission/budget.py), in the unit of *_PRICE_PER_CALL, per UTC day.
    udio_daily_budget: float | None = setting(
        None, "udio",
        "most Udio calls may cost per UTC day, in the unit of `SONGQUEUE_UDIO_PRICE_PER_CALL` (reserved before "
        "each call); needs that price above 0; unset = no budget", ge=0)
    # Per-provider poll schedule; unset means the global poll_* value (see poll_schedule).
    udio_poll_initial_delay: float | None = setting(
        None, "udio", "Udio's own `POLL_INITIAL_DELAY`; unset means the global one", ge=0)
    udio_poll_min_interval: float | None = setting(
        None, "udio", "Udio's own `POLL_MIN_INTERVAL`; unset means the global one", gt=0)
    udio_poll_max_interval: float | None = setting(
        None, "udio", "Udio's own `POLL_MAX_INTERVAL`; unset means the global one", gt=0)

    # --- minimax ---
    minimax_base_url: str = setting(
        "http://127.0.0.1:8808", "minimax",
        "MiniMax gateway base URL (302.ai: `https://api.302.ai`); the default is the local sandbox, like every "
        "provider's, so nothing calls a paid gateway until told to")
    minimax_api_key: SecretStr = setting(
        SecretStr(""), "minimax",
        "sent as `Authorization: Bearer …`, by the workers and by the producer's reference uploads; never logged")
    # 302.ai's path; MiniMax's own API (https://api.minimax.io) is /v1/music_generation.
    minimax_generate_path: str = setting(
        "/minimaxi/v1/music_generation", "minimax",
        "302.ai's path; `/v1/music_generation` with MiniMax's own API "
        "(`SONGQUEUE_MINIMAX_BASE_URL=https://api.minimax.io`)")
    # MiniMax answers in the generation call itself: its deadline is that call's read timeout.
    minimax_deadline: float = setting(
        300.0, "minimax",
        "seconds the one generation call may take (its read timeout); must stay under `TASK_TIME_LIMIT` minus 40",
        gt=0)
    minimax_price_per_call: float = setting(0.0, "minimax", "price of one generation call", ge=0)
    minimax_max_in_flight: int | None = setting(
        None, "minimax", "MiniMax generation calls running at once; unset = no limit", ge=1)
    minimax_submit_rate: float | None = setting(
        None, "minimax", "MiniMax generation calls per second; unset = no limit", gt=0)
    minimax_daily_budget: float | None = setting(
        None, "minimax",
        "most MiniMax calls may cost per UTC day, in the unit of `SONGQUEUE_MINIMAX_PRICE_PER_CALL`; needs that "
        "price above 0; unset = no budget", ge=0)

    # --- suno ---
    suno_base_url: str = setting("http://127.0.0.1:8808", "suno", "Suno task relay base URL")
    suno_api_key: SecretStr = setting(SecretStr(""), "suno", "sent as `Authorization: Bearer …`; never logged")
    # Some relays want the action upper-cased: /suno/submit/MUSIC.
    suno_submit_path: str = setting(
        "/suno/submit/music", "suno",
        "submit path; `/suno/submit/MUSIC` for relays that want the action upper-cased")
    # Relays time a Suno task out after 10 min (Suno-API) to 24 h (new-api).
    suno_deadline: float = setting(
        3600.0, "suno",
        "seconds from submit to a terminal answer before TIMED_OUT (relays give up after 10 min to 24 h)", gt=0)
    suno_price_per_call: float = setting(
        0.0, "suno", "price of one Suno submit (two clips), whatever the model", ge=0)
    suno_max_in_flight: int | None = setting(
        None, "suno", "Suno tasks submitted and not yet done, across all workers; unset = no limit", ge=1)
    suno_submit_rate: float | None = setting(
        None, "suno", "Suno submit calls per second, across all workers; unset = no limit", gt=0)
    suno_poll_rate: float | None = setting(
        None, "suno", "Suno fetch calls per second, across all workers (a batch fetch is one); unset = no limit",
        gt=0)
    suno_daily_budget: float | None = setting(
        None, "suno",
        "most Suno calls may cost per UTC day, in the unit of `SONGQUEUE_SUNO_PRICE_PER_CALL`; needs that price "
        "above 0; unset = no budget", ge=0)
    suno_poll_initial_delay: float | None = setting(
        None, "suno", "Suno's own `POLL_INITIAL_DELAY`; unset means the global one", ge=0)
    suno_poll_min_interval: float | None = setting(
        None, "suno",
        "Suno's own `POLL_MIN_INTERVAL`, also how often the batch drainer wakes; unset means the global one", gt=0)
    suno_poll_max_interval: float | None = setting(
        None, "suno", "Suno's own `POLL_MAX_INTERVAL`; unset means the global one", gt=0)
    # Batch polling (docs/providers.md): one POST /suno/fetch for up to this many due tasks;
    # 1 polls each task alone.
    suno_poll_batch_size: int = setting(
        100, "suno",
        "most task ids in one batch fetch (`POST /suno/fetch`); 1 polls each task alone "
        "(see [providers.md](providers.md#batch-polling))", ge=1, le=1000)
    suno_max_absences: int = setting(
        5, "suno",
        "Suno's own `UNKNOWN_TASK_POLLS`: answers in a row, past `UNKNOWN_TASK_GRACE`, that leave a task out (or "
        "do not know it) before its job fails with `upstream_task_missing`", ge=1)
    # A batch takes every task due within this many seconds: wider means fewer, fuller calls,
    # at the price of fetching some tasks that much early.
    suno_poll_batch_window: float = setting(
        10.0, "suno",
        "seconds ahead a batch reaches: when a Suno task is due, the drainer's batch takes every task due within "
        "this window (fewer, fuller calls; some tasks fetched that much early)", ge=0)

    # --- admission ---
    budget_policy: Literal["wait", "fail"] = setting(
        "wait", "admission",
        "over its provider's daily budget, a submit `wait`s (for the next UTC day or a larger budget) or `fail`s "
        "with `budget_exceeded`")
    limit_wait: float = setting(
        5.0, "admission",
        "unused since jobs over an in-flight limit are parked (woken when a place frees; `PARKED_CHECK`); rates "
        "wait the token bucket's own time. Kept so existing configurations still load",
        gt=0)
    parked_check: float = setting(
        300.0, "admission",
        "seconds between the watchdog's looks at a job parked behind an in-flight limit (it is woken when a place "
        "frees; the look heals a wake lost to a crash, and sends nothing while the limit is still full)", gt=0)
    # Each API key's fair share of the HTTP API (producer/api/key_caps.py); a key's own value
    # (`songqueue keys create/update`) replaces the default.
    key_max_queued: int = setting(
        10000, "admission",
        "an API key's jobs not yet submitted nor ended at once (`--max-queued`); a submit past it is refused "
        "with 429 at the door", ge=1)
    key_request_rate: float = setting(
        50.0, "admission",
        "an API key's requests per second, a token bucket in Redis shared by every API process (`--request-rate`); "
        "past it, 429 with Retry-After", gt=0)
    key_request_burst: float = setting(
        2.0, "admission",
        "the size of a key's token bucket, in seconds of its rate: an idle key may make this many seconds' worth of "
        "requests at once (at least one) before its rate holds", gt=0)
    key_max_streams: int = setting(
        20, "admission",
        "an API key's open event streams at once (`--max-streams`), leased in Redis so a crashed API's streams "
        "lapse; past it, 429", ge=1)
    budget_wait: float = setting(
        300.0, "admission",
        "seconds between tries of a job waiting for budget (and at the turn of the UTC day)", gt=0)

    # --- submits ---
    # A redelivered submit that finds an intent but no upstream task id cannot know whether
    # the paid call went through: fail it for an operator, or submit again.
    uncertain_submit: Literal["fail", "resubmit"] = setting(
        "fail", "submits",
        "what happens when a paid submit may have gone through (a worker died mid-call; a 5xx, timeout or dropped "
        "connection after the request left): `fail` ends it FAILED `submit_uncertain` for an operator, "
        "`resubmit` submits again (may pay twice). Where the gateway calls a signed notify hook (Udio, with "
        "`SONGQUEUE_NOTIFY_HOOK_URL` and `SONGQUEUE_CALLBACK_SECRET` set), the hook's task id is recorded instead "
        "and this decides only after `SONGQUEUE_UNCERTAIN_HOOK_WAIT`")
    # An uncertain submit of a provider whose gateway calls the hook (Udio) waits this long
    # for the signed hook to name its task before SONGQUEUE_UNCERTAIN_SUBMIT decides; needs
    # the hook URL and SONGQUEUE_CALLBACK_SECRET (which signs the per-job hook URL).
    uncertain_hook_wait: float = setting(
        600.0, "submits",
        "seconds an uncertain Udio submit stays SUBMITTING waiting for the signed notify hook to name its task, "
        "before `SONGQUEUE_UNCERTAIN_SUBMIT` decides; 0 = no wait (a task id a hook already named is still used). "
        "Only with the hook URL and the callback secret set", ge=0)
    # Every run that reaches the paid call counts (429s and redeliveries included); past
    # the cap the job fails rather than paying on every redelivery of a poison submit.
    max_submit_attempts: int = setting(
        10, "submits",
        "runs of one job's submit that reach the paid call (429s, redeliveries and resubmits included) before it "
        "fails `submit_attempts_exhausted`", ge=1)

    # --- polling ---
    # Polling: the first poll waits poll_initial_delay; later ones aim at the upstream's
    # expected finish (from its progress), clamped to [poll_min_interval, poll_max_interval].
    poll_initial_delay: float = setting(5.0, "polling", "seconds from submit to the first poll", ge=0)
    poll_min_interval: float = setting(
        2.0, "polling", "shortest gap between polls of one job, seconds (at most `POLL_MAX_INTERVAL`)", gt=0)
    poll_max_interval: float = setting(30.0, "polling", "longest gap between polls of one job, seconds", gt=0)
    # The schedule learns each provider's generation times (workers/poll_schedule.py).
    poll_learning: bool = setting(
        True, "polling",
        "aim polls at the quantiles of the generation times the provider's model's recent jobs took, and trust "
        "its progress only where it proved informative (kept in Redis under `{prefix}:polllearn:*`)")
    poll_learning_min_jobs: int = setting(
        20, "polling", "finished jobs of a provider's model before the schedule uses what they took", ge=1)
    # Relays write a task after answering its submit, or read from a lagging replica: a task
    # they gave us may be unknown to them for a while (docs/providers.md, "Unknown tasks").
    unknown_task_grace: float = setting(
        120.0, "polling",
        "seconds after the submit during which the gateway not knowing the task it answered with (404 \"task not "
        "found\", left out of a batch answer) is not counted", ge=0)
    unknown_task_polls: int = setting(
        5, "polling",
        "answers in a row, past `UNKNOWN_TASK_GRACE`, that do not know a job's task before the job fails "
        "`upstream_task_missing` (Suno: `SUNO_MAX_ABSENCES`); any answered poll starts the count again", ge=1)

    # --- retries ---
    # Transient upstream faults: exponential backoff with full jitter, bounded per job.
    retry_base_delay: float = setting(2.0, "retries", "first backoff after a transient fault, seconds", gt=0)
    retry_max_delay: float = setting(60.0, "retries", "backoff cap, seconds", gt=0)
    max_transient_errors: int = setting(
        8, "retries", "transient faults in a row (per job and step) before FAILED", ge=0)

    # --- http ---
    http_timeout: float = setting(30.0, "http", "connect and read timeout of upstream calls and downloads, seconds",
                                  gt=0)
    max_json_bytes: int = setting(
        4 * 1024 * 1024, "http",
        "cap on an upstream JSON answer (for MiniMax, on the answer besides its hex audio, which is streamed to a "
        "spool file under `SONGQUEUE_MAX_DOWNLOAD_BYTES`)", gt=0)
    max_download_bytes: int = setting(200 * 1024 * 1024, "http", "cap on one downloaded MP3", gt=0)
    # One read, one write and one hash call per chunk: 1 MiB keeps the per-call cost small
    # against the bytes (64 KiB chunks ran at half the speed) for 1 MiB of memory a download.
    download_chunk_bytes: int = setting(
        1024 * 1024, "http",
        "streaming chunk size of downloads (and of staged inline audio read back): one read, write and hash call "
        "per chunk, so larger is faster, at that many bytes of memory per download", gt=0)
    # The hard task limit (600 s) would kill a stuck download without a word; its own deadline
    # ends it first as a transient fault, retried like any other.
    download_deadline: float = setting(
        300.0, "http",
        "most seconds one download (an MP3 or a cover) may take, however its bytes trickle; past it the download "
        "is a transient fault, tried again (keep it well under the 600 s hard task limit)", gt=0, le=540)
    download_allowed_hosts: str = setting(
        "", "http",
        "comma-separated hosts, subdomains included, that result files may be downloaded from; empty = any public "
        "host; a listed host may also be private (e.g. `127.0.0.1` for the sandbox). See "
        "[outbound-urls.md](outbound-urls.md)")
    # Every URL songqueue did not configure (downloads, redirects, callbacks) is refused when it
    # points at a loopback/private/link-local/... address (producer/core/url_guard.py);
    # true lifts that for all hosts (a local sandbox, a private CDN), an allow-list per host.
    allow_private_networks: bool = setting(
        False, "http",
        "let downloads, redirects and callbacks reach loopback, private, link-local, CGNAT, multicast and reserved "
        "addresses for every host (a local sandbox, a private CDN); strict URL parsing still applies")

    # --- watchdog ---
    # The watchdog (a round every worker runs on a timer) reschedules any job whose next step is overdue by more
    # than watchdog_grace seconds: recovery from a killed worker without waiting for the
    # broker's visibility timeout.
    watchdog_interval: float = setting(
        10.0, "watchdog",
        "seconds between watchdog rounds (every worker ticks; a Redis lease runs one round per interval across "
        "the fleet)", gt=0)
    watchdog_grace: float = setting(
        30.0, "watchdog", "seconds past a step's due time before the watchdog sends it again", gt=0)
    max_deliveries: int = setting(
        5, "watchdog",
        "runs of one download (or finalize) that died without a word before it counts as a poison message; with "
        "`MAX_TRANSIENT_ERRORS`, it also bounds all runs of a step and the attempts at a playlist run's files",
        ge=1)

    # --- playlists ---
    # Scheduled playlists (producer/core/playlists/definition.py): TOML definitions read by the
    # beat and the workers; a running batch is checked by countdown every interval.
    playlists_dir: str = setting(
        "./playlists", "playlists",
        "folder (relative to the working directory) of playlist definitions (`*.toml`), read by `make beat` at "
        "start and by the workers at each run (see [playlists.md](playlists.md))")
    playlist_check_interval: float = setting(
        5.0, "playlists", "seconds between checks of a running playlist batch (a countdown task)", gt=0)

    # --- callbacks ---
    # Outbound callbacks (producer/core/callbacks.py): a job's status POSTed to its callback_url,
    # signed in the Standard Webhooks format; delivered on SONGQUEUE_CALLBACK_SCHEDULE, never failing the job.
    callback_secret: SecretStr = setting(
        SecretStr(""), "callbacks",
        "master key of callback signatures: each receiver's own secret is derived from it and its URL's origin "
        "(`songqueue callback-secret URL` prints it; see [callbacks-and-hooks.md](callbacks-and-hooks.md)); while "
        "empty, callbacks are not sent (each is recorded as not sent). It also keys the signature of the per-job "
        "notify URL; while empty, the bare hook URL is sent and uncertain submits cannot be reconciled. Changing "
        "it invalidates the notify URLs of tasks still running upstream. Never logged")
    callback_allowed_hosts: str = setting(
        "", "callbacks",
        "comma-separated hosts, subdomains included, a `callback_url` may name (checked at submit and again, "
        "resolved and pinned, at delivery); empty = any public host; a listed host may also be private")
    callback_timeout: float = setting(
        5.0, "callbacks", "connect and read timeout of one delivery, seconds (at most 60)", gt=0, le=60)
    callback_schedule: str = setting(
        "0,5,300,1800,7200,18000,36000,36000", "callbacks",
        "comma-separated delays, seconds, of the deliveries of one event, each counted from the attempt before "
        "(the first from the event): the Standard Webhooks schedule by default (at once, 5 s, 5 min, 30 min, 2 h, "
        "5 h, 10 h, 10 h: over 27 h); one delivery per entry, then the event is given up. A delay longer than "
        "`RETRY_MAX_DELAY` waits in Redis for a watchdog round rather than as a broker countdown. Tests compress it "
        "(`0,1,1,2`)")
    callback_disable_after: float = setting(
        3 * 86400.0, "callbacks",
        "seconds a receiver origin may fail every delivery before it is disabled (its deliveries are then skipped "
        "until `songqueue callbacks endpoints --enable ORIGIN`); a 410 Gone disables it at once", gt=0)
    callback_rotation_overlap: float = setting(
        86400.0, "callbacks",
        "seconds after `songqueue callback-secret rotate ORIGIN` during which that origin's deliveries carry the "
        "previous secret's signature beside the new one (`webhook-signature: v1,<new> v1,<old>`)", ge=0)
    callback_signing_key: SecretStr = setting(
        SecretStr(""), "callbacks",
        "optional ed25519 private key, `whsk_<base64>` (the 32-byte seed, or seed and public key): every delivery "
        "then also carries a `v1a,<base64>` signature, verified with the public key `songqueue callback-secret "
        "public-key` prints (`whpk_...`), for receivers that should hold no shared secret. Never logged")
    callback_progress: bool = setting(
        False, "callbacks",
        "call every job that has a `callback_url` on progress too (per job: `--callback-progress`, or "
        "`job.progress` in `--callback-events`; a job with `callback_events` gets only those)")
    callback_progress_interval: float = setting(
        5.0, "callbacks",
        "at most one progress callback per job per this many seconds (a Redis SET NX PX key per job); 0 = every "
        "progress change", ge=0)

    # --- hooks ---
    # Inbound notify hook (producer/api/notify_hook.py): the gateway calls this URL when a task
    # changes status, and the job is polled at once. Empty: no hook is sent upstream.
    notify_hook_url: str = setting(
        "", "hooks",
        "URL of `songqueue hooks` as the gateways reach it, e.g. `https://hooks.example.com/hooks/udio`; sent with "
        "every Udio submit as `URL?job=<job id>&sig=<signature>` "
        "(see [callbacks-and-hooks.md](callbacks-and-hooks.md#reconciling-an-uncertain-submit)); empty = no hook")
    notify_min_interval: float = setting(
        10.0, "hooks", "at most one hook-triggered poll per job per this many seconds", gt=0)

    # --- workers ---
    task_time_limit: int = setting(600, "workers", "hard time limit of any task run, seconds (soft limit 30 s less)",
                                   gt=0)
    # Celery raises a worker's prefetch by one for each countdown (ETA) message it holds, so
    # with 10,000 jobs polling one worker would hold 10,000 messages in memory. This caps the
    # messages one worker process holds (countdowns plus reserved); the rest wait in the broker.
    worker_eta_task_limit: int = setting(
        1000, "workers",
        "messages one worker process holds at most, countdowns (polls, backoffs) included (Celery's "
        "`worker_eta_task_limit`); the rest wait in the broker. Keep it well above the concurrency; 0 = no limit "
        "([operations](operations.md#worker-layout))", ge=0)
    # A prefork child past this resident size is replaced after its current task (Celery's
    # worker_max_memory_per_child): a backstop, since what makes a child grow is freed garbage
    # the allocator keeps (docs/benchmarks.md, "Pool-child growth"), not a leak of ours.
    worker_max_memory_per_child: int = setting(
        512, "workers",
        "MiB of resident memory after which a prefork pool child is replaced, once its current task is done "
        "(Celery's `worker_max_memory_per_child`); a backstop ([benchmarks](benchmarks.md#pool-child-growth)); "
        "0 = never. Thread pools are not affected", ge=0)
    # How long a stopping worker keeps running tasks before it hands everything it holds
    # (countdowns included) back to the broker (Celery 5.5+).
    worker_soft_shutdown_timeout: float = setting(
        0.0, "workers",
        "Celery soft shutdown: on SIGQUIT (or SIGTERM with `REMAP_SIGTERM=SIGQUIT`) running tasks get this many "
        "seconds, then every held message, countdowns included, returns to the broker at once; 0 = off", ge=0)

    # --- operators ---
    # Flower's basic auth: `songqueue flower` refuses to start without it unless --insecure.
    flower_user: str = setting(
        "", "operators",
        "Flower's basic-auth user (`songqueue flower` refuses to start without user and password unless "
        "`--insecure`); no `,` or `:`")
    flower_password: SecretStr = setting(
        SecretStr(""), "operators",
        "Flower's basic-auth password (no `,`); passed to Flower through its environment, never its command line")
    # `songqueue metrics`: when set, /metrics wants `Authorization: Bearer <token>` (spend, budgets, queue depths).
    metrics_token: SecretStr = setting(
        SecretStr(""), "operators",
        "when set, `songqueue metrics` answers `/metrics` only with `Authorization: Bearer <token>`; compared in "
        "constant time, never logged")

    # `songqueue api` (producer/api/server.py serve): processes serving its port, a listening socket each.
    api_workers: int = setting(
        1, "operators",
        "`songqueue api` processes serving its one port (each an event loop and a listening socket of its own, "
        "SO_REUSEPORT, forked once the sockets listen): up to one per core spreads the API's CPU; every limit and "
        "count lives in Redis, so the keys' caps hold across them. When one process exits, the others are stopped "
        "and `songqueue api` exits (the supervisor restarts it)", ge=1, le=64)

    # The console's login (producer/api/console/sessions.py): a session id in the cookie, the key's id in Redis.
    console_session_ttl: float = setting(
        43200.0, "operators",
        "seconds a console login lasts (its server-side session expires then; logging out or revoking the key ends "
        "it sooner); default 12 h", gt=0)

    # --- diagnostics ---
    log_json: bool = setting(
        False, "diagnostics",
        "workers, beat and the servers (`api`, `hooks`, `metrics`) log one JSON object per line, with `job_id`, "
        "`upstream_task_id` and every other `extra=` field ([operations](operations.md#logs))")
    # Each pool child runs gc.collect(); gc.freeze() at start, so retry garbage is collected
    # soon (workers/diagnostics.py; measured by bench/gc_freeze.py and bench/retry_garbage.py).
    gc_freeze: bool = setting(
        True, "diagnostics",
        "each pool child collects and freezes (`gc.freeze`) the heap it inherits at start, so later full "
        "collections skip it: measured shorter full-GC pauses and less memory after many retries "
        "([benchmarks](benchmarks.md)); `false` turns it off")
    # Diagnostics: each worker process dumps its top allocation sites here (workers/diagnostics.py).
    tracemalloc_dir: str = setting(
        "", "diagnostics",
        "each worker process traces its Python allocations and rewrites `heap-PID.txt` in this folder every 20 s: "
        "top allocation sites by size and by growth, with its resident memory (`workers/diagnostics.py`). Slows "
        "the worker: never in production; empty = off")

    @field_validator("callback_signing_key")
    @classmethod
    def _signing_key_is_ed25519(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value():
            signing_seed(value.get_secret_value())
        return value

    @field_validator("callback_schedule")
    @classmethod
    def _schedule_is_delays(cls, value: str) -> str:
        parse_delays(value)
        return value

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
        if cluster_url.is_cluster(url):
            raise ValueError("Celery has no Redis Cluster broker: give the broker a plain Redis (or Sentinel, or "
                             "RabbitMQ) and put the cluster in SONGQUEUE_REDIS_URL, the job store")
        if sentinel_url.is_sentinel(url):
            sentinel_url.parse(url)
        return url

    @field_validator("redis_url")
    @classmethod
    def _job_store_scheme(cls, url: str) -> str:
        if sentinel_url.is_sentinel(url):
            sentinel_url.parse(url)
        elif cluster_url.is_cluster(url):
            cluster_url.parse(url)
        elif url and urlparse(url).scheme not in _REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss://, unix://, sentinel:// or redis-cluster:// "
                             "(or be empty: the broker's)")
        return url

    @model_validator(mode="after")
    def _cluster_needs_a_hash_tag(self) -> Settings:
        # Every write is a script or a MULTI/WATCH over several keys of one job (and its
        # indexes): Redis Cluster runs those only when all the keys are on one slot.
        if cluster_url.is_cluster(self.redis_url) and cluster_url.hash_tag(self.key_prefix) is None:
            raise ValueError("key_prefix: must hold a hash tag such as {songqueue} when SONGQUEUE_REDIS_URL is "
                             "redis-cluster://, so every job-store key is on one slot")
        return self

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

    @field_validator(*_LIMIT_FIELDS, mode="before")
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
        for name in PROVIDERS:
            provider = self.provider(name)
            if provider.daily_budget is not None and provider.price_per_call <= 0:
                raise ValueError(
                    f"{name}_daily_budget: needs {provider.env('price_per_call')} > 0 (with a price of 0 "
                    "every call is free and the budget enforces nothing); set the price or unset the budget")
        return self

    @overload
    def provider(self, name: Literal["udio"]) -> UdioSettings: ...
    @overload
    def provider(self, name: Literal["minimax"]) -> MiniMaxSettings: ...
    @overload
    def provider(self, name: Literal["suno"]) -> SunoSettings: ...
    @overload
    def provider(self, name: str) -> ProviderSettings: ...

    def provider(self, name: str) -> ProviderSettings:
        """The typed settings of provider `name` (its `SONGQUEUE_{NAME}_*` variables).

        Raises producer.core.models.providers.UnknownProvider (a ValueError naming the known ones)."""
        try:
            cls = PROVIDER_SETTINGS[name]
        except KeyError:
            raise UnknownProvider(name) from None
        return cls.model_validate({field: getattr(self, flat) for field, flat in flat_fields(name).items()})

    @model_validator(mode="after")
    def _visibility_outlives_every_countdown(self) -> Settings:
        # A countdown longer than the visibility timeout runs twice on Redis (docs/architecture.md).
        schedules = [self.poll_schedule(p) for p in POLLED_PROVIDERS]
        longest = max(self.poll_max_interval, self.retry_max_delay, self.poll_initial_delay,
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
        # A provider that is not polled answers in its generation call, which runs inside one
        # submit task and must not be cut off mid-call: its deadline is that call's timeout.
        for name, spec in PROVIDERS.items():
            deadline = self.provider(name).deadline
            if not spec.polled and deadline + 10 >= self.task_time_limit - 30:
                raise ValueError(f"{name}_deadline must be shorter than task_time_limit minus 40s "
                                 f"(its soft limit and the connect timeout): {deadline:.0f}s")
        return self

    def poll_schedule(self, provider: str) -> tuple[float, float, float]:
        """(initial delay, min interval, max interval) of polling `provider`: its own values where
        set (SONGQUEUE_{NAME}_POLL_*), else the global ones."""
        own = self.provider(provider)
        if not isinstance(own, PolledProviderSettings):
            return self.poll_initial_delay, self.poll_min_interval, self.poll_max_interval
        return (self.poll_initial_delay if own.poll_initial_delay is None else own.poll_initial_delay,
                self.poll_min_interval if own.poll_min_interval is None else own.poll_min_interval,
                self.poll_max_interval if own.poll_max_interval is None else own.poll_max_interval)

    @property
    def download_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.download_allowed_hosts.split(",") if h.strip())

    @property
    def callback_delays(self) -> tuple[float, ...]:
        """SONGQUEUE_CALLBACK_SCHEDULE as numbers: the wait before each delivery of one event."""
        return parse_delays(self.callback_schedule)

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


def _check_fields() -> None:
    """At import: every field has a group and a description, and the provider fields of
    Settings are exactly those of the typed provider settings, one table for each provider."""
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra
        if not isinstance(extra, dict) or extra.get("group") not in GROUPS or not info.description:
            raise TypeError(f"setting {name}: declare it with setting(default, group, description)")
    if set(PROVIDER_SETTINGS) != set(PROVIDERS):
        raise TypeError(f"typed provider settings {sorted(PROVIDER_SETTINGS)} differ from the providers {sorted(PROVIDERS)}")
    for name, spec in PROVIDERS.items():
        if issubclass(PROVIDER_SETTINGS[name], PolledProviderSettings) != spec.polled:
            raise TypeError(f"provider {name!r}: its spec says polled={spec.polled}, its settings class disagrees")
        declared = {field for field, info in Settings.model_fields.items()
                    if isinstance(info.json_schema_extra, dict) and info.json_schema_extra["group"] == name}
        if set(flat_fields(name).values()) != declared:
            raise TypeError(f"provider {name!r}: Settings fields {sorted(declared)} differ from its typed fields "
                            f"{sorted(flat_fields(name).values())}")


_check_fields()


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
