"""Checks of what runs beside this process: Redis, the broker, workers per queue, the watchdog, clocks.

Workers are asked through the producer's own sending app (`celery inspect`, by name), so
the doctor needs no worker code.
"""

from __future__ import annotations

import time

import redis
from celery import Celery

from producer.core.broker import consumers
from producer.core.fleet import mask_url, providers_of, read_all
from producer.core.settings import Settings
from producer.core.store.job_store import JobStore
from producer.core.store.redis_client import connect, node_for
from producer.core.task_names import ALL_QUEUES
from producer.doctor.report import Line, failed, passed

# Countdowns, deadlines and the watchdog's grace are all measured against Redis-stored times.
MAX_CLOCK_SKEW = 2.0
START_REDIS = ("start a Redis server (`redis-server --port 6379 --daemonize yes`, or your service manager's), "
               "or point SONGQUEUE_BROKER_URL / SONGQUEUE_REDIS_URL at a running one; `make demo` runs its own "
               "only while it runs")


def redis_client(settings: Settings) -> tuple[redis.Redis | None, Line]:
    try:
        url = settings.job_store_url
    except ValueError as exc:
        return None, failed("redis", str(exc), "set SONGQUEUE_REDIS_URL to the job store's Redis")
    client = connect(url, settings.sentinel_master, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return None, failed("redis", f"cannot reach {mask_url(url)}: {exc}", START_REDIS)
    return client, passed("redis", f"{mask_url(url)} answers{_cluster_detail(client, settings.key_prefix)}")


def _cluster_detail(client: redis.Redis, prefix: str) -> str:
    """On Redis Cluster: which slot, and which master, holds the whole job store."""
    if not isinstance(client, redis.RedisCluster):
        return ""
    key = f"{prefix}:job:x"
    node = client.get_node_from_key(key)
    return (f" (Redis Cluster: every job-store key is on slot {client.keyslot(key)}, master {node.host}:{node.port}, "
            f"one of {len(client.get_primaries())} masters)")


def broker(app: Celery, settings: Settings) -> Line:
    url = mask_url(settings.broker_url)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
    except Exception as exc:  # noqa: BLE001 - kombu raises transport-specific errors
        return failed("broker", f"cannot reach {url}: {exc}", "start the broker or fix SONGQUEUE_BROKER_URL")
    return passed("broker", f"{url} answers")


def workers(app: Celery, broker_ok: bool) -> Line:
    if not broker_ok:
        return failed("workers", "not checked: the broker is unreachable", "fix the broker line first")
    answered, by_queue = consumers(app)
    missing = [queue for queue, names in by_queue.items() if not names]
    summary = ", ".join(f"{queue} {len(names)}" for queue, names in by_queue.items())
    if missing:
        return failed("workers", f"no worker consumes {', '.join(missing)} ({answered} workers answered; "
                      f"per queue: {summary})",
                      f"start one: `make worker` or `celery -A workers.celery_app worker -Q {','.join(ALL_QUEUES)}`",
                      consumers=by_queue)
    return passed("workers", f"{answered} workers answered; per queue: {summary}", consumers=by_queue)


def watchdog(store: JobStore | None, settings: Settings) -> Line:
    if store is None:
        return failed("watchdog", "not checked: Redis is unreachable", "fix the redis line first")
    last = store.last_watchdog_round()
    fix = ("every worker runs the watchdog round on a timer: start one (`make worker`) and check its log for "
           "'watchdog' errors; beat is not needed for it")
    if last is None:
        return failed("watchdog", "no watchdog round ever recorded", fix)
    age = time.time() - last
    allowed = 3 * settings.watchdog_interval + 5
    if age > allowed:
        return failed("watchdog", f"last round {age:.0f}s ago (expected every {settings.watchdog_interval:g}s)", fix,
                      age=age)
    return passed("watchdog", f"last round {age:.1f}s ago (every {settings.watchdog_interval:g}s)", age=age)


def clock_skew(client: redis.Redis | None, prefix: str = "songqueue") -> Line:
    """This machine's clock against Redis's (TIME), the round trip halved out: on Redis
    Cluster, the clock of the master holding the job store (the one its times come from)."""
    if client is None:
        return failed("clock", "not checked: Redis is unreachable", "fix the redis line first")
    before = time.time()
    seconds, micros = node_for(client, f"{prefix}:clock").time()
    after = time.time()
    skew = (before + after) / 2 - (seconds + micros / 1e6)
    if abs(skew) > MAX_CLOCK_SKEW:
        return failed("clock", f"this machine is {skew:+.2f}s off Redis's clock (more than {MAX_CLOCK_SKEW:g}s)",
                      "run NTP (chrony/systemd-timesyncd) on this machine and on the Redis host", skew=skew)
    return passed("clock", f"{skew:+.3f}s from Redis's clock", skew=skew)


def jobs_with_callbacks(store: JobStore | None, recent: int = 200) -> int | None:
    if store is None:
        return None
    return sum(1 for record in store.list(None, recent) if record.callback_url)


def fleet(client: redis.Redis | None, settings: Settings) -> Line:
    """What the live workers run with (their cards, producer/core/fleet.py): each worker's
    providers it cannot serve, workers that disagree with each other, and workers that
    disagree with the settings of this shell."""
    if client is None:
        return failed("fleet", "not checked: Redis is unreachable", "fix the redis line first")
    cards = read_all(client, settings.key_prefix)
    if not cards:
        return failed("fleet", "no worker has published what it runs with",
                      "start a worker (`make worker`); each publishes its settings card when ready "
                      "and on every watchdog tick")
    problems: list[str] = []
    mine = providers_of(settings)
    for name in sorted(mine):
        keys = {card.worker: card.providers.get(name) for card in cards}
        prints = {c.key if c else None for c in keys.values()}
        missing = sorted(w for w, c in keys.items() if c is None or c.key is None)
        if missing and len(missing) < len(keys):
            problems.append(f"{name}: no key on {', '.join(missing)} (others have one)")
        if len(prints - {None}) > 1:
            problems.append(f"{name}: workers hold different keys ({len(prints - {None})} fingerprints)")
        if mine[name].key not in prints and (mine[name].key or not missing):
            problems.append(f"{name}: the workers' key differs from this shell's")
        urls = {c.base_url for c in keys.values() if c is not None}
        if len(urls) > 1 or (urls and mine[name].base_url not in urls):
            problems.append(f"{name}: base URLs differ ({', '.join(sorted(urls | {mine[name].base_url}))})")
    for what in ("storage", "broker", "redis", "version"):
        values = {getattr(card, what) for card in cards}
        if len(values) > 1:
            problems.append(f"workers disagree on {what}: {', '.join(sorted(values))}")
    detail = "; ".join(f"{c.worker} ({','.join(c.queues) or 'all queues'}; v{c.version}"
                       + (f"; cannot serve {', '.join(c.unservable())}" if c.unservable() else "") + ")"
                       for c in cards)
    if problems:
        return failed("fleet", f"{len(cards)} workers: {detail}. " + "; ".join(problems),
                      "give every worker the same SONGQUEUE_* settings as this shell (the same env file or "
                      "secret), then restart the workers that differ", workers=len(cards))
    return passed("fleet", f"{len(cards)} workers agree with this shell: {detail}", workers=len(cards))
