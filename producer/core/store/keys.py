"""Every Redis key of the job store, named in one place."""

from __future__ import annotations

from producer.core.models.job_record import DEFAULT_TENANT


def job(prefix: str, job_id: str) -> str:
    return f"{prefix}:job:{job_id}"


def all_jobs(prefix: str) -> str:
    """Sorted set of every job id, scored by creation time."""
    return f"{prefix}:jobs"


def tenant_jobs(prefix: str, tenant: str) -> str:
    """Sorted set of one tenant's job ids, scored by creation time (the HTTP API's listing)."""
    return f"{prefix}:tenant:{tenant}:jobs"


def tenant_ended(prefix: str) -> str:
    """Sorted set of ended jobs as "{tenant}:{job_id}" (a tenant holds no ":"), scored by when
    they ended: what the retention sweep prunes from each tenant's `tenant_jobs` index."""
    return f"{prefix}:tenant-ended"


def jobs_in_state(prefix: str, state: str) -> str:
    """Sorted set of the job ids now in `state`, scored by when they entered it."""
    return f"{prefix}:state:{state}"


def idempotency(prefix: str, key: str, tenant: str = DEFAULT_TENANT) -> str:
    """Idempotency key -> job id. Each tenant has its own namespace of keys, so two tenants'
    services may use the same key without meeting; the default tenant (the CLI, the Python
    API) keeps the plain name. A separate word, not a longer key, so no key of one namespace
    can spell a key of the other, and the caller's key keeps its whole 200 characters."""
    if tenant == DEFAULT_TENANT:
        return f"{prefix}:idem:{key}"
    return f"{prefix}:idem-tenant:{tenant}:{key}"


def due(prefix: str) -> str:
    """Sorted set of live job ids, scored by `next_check_at`: the watchdog's work list."""
    return f"{prefix}:due"


def poll_due(prefix: str, provider: str) -> str:
    """Sorted set of job ids of a batch-polled provider, scored by when each is next due a fetch;
    `…:inflight` and `…:drainer` beside it (producer/core/store/poll_due.py)."""
    return f"{prefix}:polldue:{provider}"


def batch_cap(prefix: str, provider: str) -> str:
    """The batch size a provider's relay was seen to accept, learned from a refused batch
    (workers/steps/poll_batch.py); expires, so a relay that raised its cap is tried again."""
    return f"{prefix}:batchcap:{provider}"


def poll_durations(prefix: str, provider: str, model: str) -> str:
    """List of the latest generation times (seconds, newest first, capped) of a provider's
    model: what the poll schedule aims at (producer/core/store/poll_history.py)."""
    return f"{prefix}:polllearn:{provider}:{model}:durations"


def poll_progress_errors(prefix: str, provider: str) -> str:
    """List of the latest relative errors of a provider's progress (the linear prediction made
    at a job's last poll with 0 < progress < 100 against its finish), newest first, capped:
    whether the poll schedule may trust that provider's progress (poll_history.py)."""
    return f"{prefix}:polllearn:{provider}:progress-errors"


def watchdog_lock(prefix: str) -> str:
    return f"{prefix}:watchdog:lock"


def watchdog_last_round(prefix: str) -> str:
    """Unix time of the watchdog's latest round: how `songqueue doctor` knows beat is alive."""
    return f"{prefix}:watchdog:last_round"


def upstream_task(prefix: str, provider: str, task_id: str) -> str:
    """Upstream task id -> job id: how the notify hook finds the job a gateway calls about."""
    return f"{prefix}:upstream:{provider}:{task_id}"


def poll_link(prefix: str, job_id: str) -> str:
    """The job's live poll link, "token:link" (workers/steps/step.py)."""
    return f"{prefix}:polllink:{job_id}"


def hook_poll(prefix: str, job_id: str) -> str:
    """Held for SONGQUEUE_NOTIFY_MIN_INTERVAL after a hook-triggered poll: the rate limit."""
    return f"{prefix}:hookpoll:{job_id}"


def in_flight(prefix: str, provider: str) -> str:
    """Sorted set of the provider's jobs in SUBMITTING/SUBMITTED/GENERATING, scored by entry
    time; kept by the job store with each state change, so it cannot drift from the records."""
    return f"{prefix}:inflight:{provider}"


def key_in_flight(prefix: str, key_id: str) -> str:
    """Sorted set of an API key's jobs in SUBMITTING/SUBMITTED/GENERATING: its own in-flight
    limit (`songqueue keys create --max-in-flight`), kept by the job store like `in_flight`."""
    return f"{prefix}:apikey:{key_id}:inflight"


def parked(in_flight_set: str) -> str:
    """Sorted set of the QUEUED jobs parked behind the in-flight set `in_flight_set` (a
    provider's or an API key's), scored by creation time: woken oldest first when a place
    frees (producer/core/store/parking.py). The job store drops a job from it when it leaves QUEUED."""
    return f"{in_flight_set}:parked"


def key_queued(prefix: str, key_id: str) -> str:
    """Sorted set of an API key's QUEUED jobs (not yet submitted, not ended), kept by the job
    store with each state change: what the key's queued-jobs cap counts at the door."""
    return f"{prefix}:apikey:{key_id}:queued"


def key_streams(prefix: str, key_id: str) -> str:
    """Sorted set of an API key's open event streams, scored by when each lease lapses
    (producer/core/store/lua/stream_lease.lua): a crashed API's streams drop out by themselves."""
    return f"{prefix}:apikey:{key_id}:streams"


def key_rate(prefix: str, key_id: str) -> str:
    """Token bucket (hash: tokens, at) of an API key's request rate."""
    return f"{prefix}:apikey:{key_id}:rate"


def key_spend(prefix: str, key_id: str, day: str) -> str:
    """Money reserved for an API key's paid calls on UTC `day`, in micro-units (its daily budget)."""
    return f"{prefix}:apikey:{key_id}:spend:{day}"


def rate_bucket(prefix: str, provider: str, call: str) -> str:
    """Token bucket (hash: tokens, at) of a provider's `call` rate ("submit" or "poll")."""
    return f"{prefix}:rate:{provider}:{call}"


def spend(prefix: str, provider: str, day: str) -> str:
    """Money reserved for a provider's paid calls on UTC `day` (YYYY-MM-DD), in micro-units."""
    return f"{prefix}:spend:{provider}:{day}"


def reservations(prefix: str) -> str:
    """Hash of budget reservations not yet committed by an intent nor given back:
    reservation id -> JSON (workers/admission/budget.py)."""
    return f"{prefix}:reservations"


def metric(prefix: str, name: str) -> str:
    """A hash of counters the workers keep for `songqueue metrics` (workers/metrics.py)."""
    return f"{prefix}:metrics:{name}"


def playlist_run(prefix: str, run_id: str) -> str:
    return f"{prefix}:playlist:run:{run_id}"


def playlist_runs(prefix: str, playlist: str | None = None) -> str:
    """Sorted set of run ids (of one playlist, or of all), scored by creation time."""
    return f"{prefix}:playlist:runs" if playlist is None else f"{prefix}:playlist:runs-of:{playlist}"


def playlist_ended(prefix: str) -> str:
    """Sorted set of ended runs as "{playlist}:{run_id}" (a playlist name holds no ":"),
    scored by when they ended: what the retention sweep prunes from the two run indexes."""
    return f"{prefix}:playlist:ended"


def retention_sweep_lock(prefix: str) -> str:
    return f"{prefix}:retention:lock"


def playlist_slot(prefix: str, playlist: str, slot: int) -> str:
    """The claim on one scheduled time of a playlist (SET NX; holds the run id)."""
    return f"{prefix}:playlist:slot:{playlist}:{slot}"


def playlist_open(prefix: str) -> str:
    """Sorted set of runs not yet ended, scored by when the sweep should look at them."""
    return f"{prefix}:playlist:open"


def playlist_sweep_lock(prefix: str) -> str:
    return f"{prefix}:playlist:sweep:lock"


def callback_outbox(prefix: str) -> str:
    """Sorted set of job ids whose end still owes a callback, scored by when to look again."""
    return f"{prefix}:callbacks:outbox"


def console_session(prefix: str, session_id: str) -> str:
    """Hash of one console session (key_id, csrf), expiring with the session
    (SONGQUEUE_CONSOLE_SESSION_TTL; producer/core/store/console_sessions.py)."""
    return f"{prefix}:console-session:{session_id}"


def console_sessions_of_key(prefix: str, key_id: str) -> str:
    """Set of an API key's console session ids: what revoking the key ends. It expires with
    the newest of them, and each login drops the members whose session has gone."""
    return f"{prefix}:apikey:{key_id}:console-sessions"


def callback_parked(prefix: str) -> str:
    """Sorted set of callback deliveries waiting longer than a broker countdown may, scored by when they are due."""
    return f"{prefix}:callbacks:parked"


def callback_endpoints(prefix: str) -> str:
    """Set of the receiver origins that have an endpoint hash (below)."""
    return f"{prefix}:callbacks:endpoints"


def callback_endpoint(prefix: str, origin: str) -> str:
    """Hash of one receiver origin: its health and its secret's generation (producer/core/store/endpoints.py)."""
    return f"{prefix}:callbacks:endpoint:{origin}"


def callback_progress_gate(prefix: str, job_id: str) -> str:
    """Set (NX, PX) when a job's progress callback is sent: none more until it expires
    (SONGQUEUE_CALLBACK_PROGRESS_INTERVAL)."""
    return f"{prefix}:callbacks:progress:{job_id}"
