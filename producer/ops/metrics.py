"""`songqueue metrics [--host H] --port N`: a Prometheus endpoint for songqueue, a process of its own.

Everything is read at scrape time: gauges from the job store's indexes, the spend ledger and
the broker (producer/ops/operator_stats.py), counters and histograms from the hashes the workers
keep in Redis (workers/metrics.py, names in producer/core/store/metric_schema.py). Nothing is cached
here, so any number of exporters may run and a restart loses nothing.

Flower has its own `/metrics` (task counts and runtimes per worker, from Celery events);
this one knows about jobs, providers, money and queues, which Flower cannot see.

Served by prometheus_client's ASGI app (`make_asgi_app`: the exposition formats, gzip, the
`name[]` filter) under uvicorn, with the HTTP API's guards (producer/api/server.py `serve`):
a connection must send its request head within READ_TIMEOUT seconds or is closed, and past
MAX_CONNECTIONS open connections a request gets 503. `metrics_app` answers only GET/HEAD of
`/metrics` (or `/`), checks the bearer token (SONGQUEUE_METRICS_TOKEN, in constant time)
before anything is read, and collects in a pool of SCRAPE_THREADS threads, so a scrape that
waits on Redis or the broker never holds up the event loop (other connections, timeouts).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from producer.client.songqueue import SongQueue
from producer.core import fleet
from producer.core.models.providers import PROVIDERS
from producer.core.store import endpoints, keys
from producer.core.store.metric_schema import (
    CALLBACKS,
    DOWNLOADED_BYTES,
    JOB_BUCKETS,
    JOB_SECONDS,
    JOBS_FINISHED,
    LATENCY_BUCKETS,
    LIMIT_WAITS,
    POLL_BUCKETS,
    POLLS_PER_JOB,
    SEP,
    SPEND,
    UPSTREAM_ERRORS,
    UPSTREAM_SECONDS,
    WATCHDOG_RESCHEDULES,
    format_bound,
)
from producer.ops import operator_stats

log = logging.getLogger("songqueue.metrics")

READ_TIMEOUT = 10.0  # seconds for a request head to arrive
MAX_CONNECTIONS = 1024  # open at once; past it, 503
SCRAPE_THREADS = 4
PATHS = ("/metrics", "/")


class SongqueueCollector(Collector):
    def __init__(self, queue: SongQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("songqueue_build", "The songqueue version serving these metrics",
                               value={"version": fleet.version()})
        settings = self.queue.settings
        snapshot = operator_stats.collect(settings, self.queue.store.redis, self.queue.celery, list(PROVIDERS))
        jobs = GaugeMetricFamily("songqueue_jobs", "Jobs in each state (job store index sizes)", labels=["state"])
        for state, count in snapshot.jobs.items():
            jobs.add_metric([state], count)
        yield jobs
        in_flight = GaugeMetricFamily("songqueue_in_flight", "Upstream tasks in flight (SUBMITTING, SUBMITTED, "
                                      "GENERATING)", labels=["provider"])
        spent = GaugeMetricFamily("songqueue_spend_today", "Reserved for paid calls today (UTC), in the price unit",
                                  labels=["provider"])
        budget = GaugeMetricFamily("songqueue_daily_budget", "SONGQUEUE_{PROVIDER}_DAILY_BUDGET, where one is set",
                                   labels=["provider"])
        for provider, stats in snapshot.providers.items():
            in_flight.add_metric([provider], stats.in_flight)
            spent.add_metric([provider], stats.spent_today)
            if stats.daily_budget is not None:
                budget.add_metric([provider], stats.daily_budget)
        yield from (in_flight, spent, budget)
        depth = GaugeMetricFamily("songqueue_queue_depth", "Messages waiting in each broker queue", labels=["queue"])
        for name, count in snapshot.queues.items():
            depth.add_metric([name], count)
        yield depth
        last_round = self.queue.store.last_watchdog_round()
        watchdog = GaugeMetricFamily("songqueue_watchdog_last_round_timestamp_seconds",
                                     "Unix time of the watchdog's latest round (absent before the first)")
        if last_round is not None:
            watchdog.add_metric([], last_round)
        yield watchdog
        yield GaugeMetricFamily("songqueue_callback_endpoints_disabled",
                                "Callback receiver origins disabled (410 Gone, or failing past "
                                "SONGQUEUE_CALLBACK_DISABLE_AFTER): their deliveries are skipped",
                                value=endpoints.disabled_count(self.queue.store.redis, settings.key_prefix))
        yield from self._fleet()
        yield from self._worker_counters()

    def _fleet(self) -> Iterator[Metric]:
        """The live workers, from the cards each refreshes on its watchdog tick (producer/core/fleet.py):
        a worker that stops refreshing drops out within 3 intervals."""
        cards = fleet.read_all(self.queue.store.redis, self.queue.store.prefix)
        up = GaugeMetricFamily("songqueue_worker_up", "1 for each worker whose card is fresh (it refreshes it on "
                               "every watchdog tick)", labels=["worker", "version"])
        serve = GaugeMetricFamily("songqueue_worker_can_serve", "1 if the worker has the provider's API key, else 0",
                                  labels=["worker", "provider"])
        for card in cards:
            up.add_metric([card.worker, card.version], 1)
            for provider, own in sorted(card.providers.items()):
                serve.add_metric([card.worker, provider], 0 if own.key is None else 1)
        yield up
        yield serve
        yield GaugeMetricFamily("songqueue_workers", "Workers whose card is fresh", value=len(cards))

    def _worker_counters(self) -> Iterator[Metric]:
        redis = self.queue.store.redis
        prefix = self.queue.store.prefix
        pipe = redis.pipeline(transaction=False)
        families = (UPSTREAM_SECONDS, UPSTREAM_ERRORS, POLLS_PER_JOB, DOWNLOADED_BYTES, LIMIT_WAITS, JOBS_FINISHED,
                    JOB_SECONDS, SPEND, CALLBACKS, WATCHDOG_RESCHEDULES)
        for family in families:
            pipe.hgetall(keys.metric(prefix, family))
        raw = dict(zip(families, pipe.execute()))
        hashes = {family: {k.decode(): float(v) for k, v in fields.items()} for family, fields in raw.items()}

        yield _histogram("songqueue_upstream_request_seconds", "Upstream call latency by provider and call",
                         ["provider", "call"], hashes[UPSTREAM_SECONDS], LATENCY_BUCKETS)
        errors = CounterMetricFamily("songqueue_upstream_errors", "Upstream calls that failed, by error code",
                                     labels=["provider", "call", "code"])
        for field, value in sorted(hashes[UPSTREAM_ERRORS].items()):
            errors.add_metric(field.split(SEP), value)
        yield errors
        yield _histogram("songqueue_polls_per_job", "Fetch calls per job, observed when its polling ends",
                         ["provider"], hashes[POLLS_PER_JOB], POLL_BUCKETS)
        downloaded = CounterMetricFamily("songqueue_downloaded_bytes", "Bytes stored by the download step",
                                         labels=["provider", "asset"])
        for field, value in sorted(hashes[DOWNLOADED_BYTES].items()):
            downloaded.add_metric(field.split(SEP), value)
        yield downloaded
        waits = CounterMetricFamily("songqueue_limit_waits", "Times a job was held back by a shared limit or the "
                                    "budget", labels=["provider", "limit"])
        for field, value in sorted(hashes[LIMIT_WAITS].items()):
            waits.add_metric(field.split(SEP), value)
        yield waits
        yield _histogram("songqueue_job_duration_seconds", "Seconds from a job's creation to its end, by provider "
                         "and end state", ["provider", "state"], hashes[JOB_SECONDS], JOB_BUCKETS)
        counters = (
            ("songqueue_jobs_finished", "Jobs that ended, by provider, end state and error code", JOBS_FINISHED,
             ["provider", "state", "code"]),
            ("songqueue_spend", "Money charged to jobs, in the price unit (never reset)", SPEND, ["provider"]),
            ("songqueue_callbacks", "Callback events delivered, or failed after their last attempt", CALLBACKS,
             ["event", "outcome"]),
            ("songqueue_watchdog_reschedules", "Overdue jobs the watchdog sent on again, by state",
             WATCHDOG_RESCHEDULES, ["state"]),
        )
        for name, documentation, family, labels in counters:
            counter = CounterMetricFamily(name, documentation, labels=labels)
            for field, value in sorted(hashes[family].items()):
                counter.add_metric(field.split(SEP), value)
            yield counter


def _histogram(name: str, documentation: str, labels: list[str], fields: dict[str, float],
               bounds: tuple[float, ...]) -> HistogramMetricFamily:
    """Rebuild cumulative buckets from the per-bucket counts the workers keep."""
    per_series: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for field, value in fields.items():
        *series, last = field.split(SEP)
        per_series[tuple(series)][last] = value
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, counts in sorted(per_series.items()):
        running = 0.0
        buckets = []
        for bound in [*(format_bound(b) for b in bounds), "+Inf"]:
            running += counts.get(bound, 0.0)
            buckets.append((bound, running))
        family.add_metric(list(label_values), buckets, counts.get("sum", 0.0))
    return family


class _Collected(Collector):
    """What a scrape collected (in a thread), handed to prometheus_client's app to render."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def metrics_app(registry: Collector, token: str = "") -> Any:
    """An ASGI app serving `registry` on GET/HEAD /metrics; with `token`, only to
    `Authorization: Bearer <token>` (401 otherwise, before anything is collected)."""
    pool = ThreadPoolExecutor(SCRAPE_THREADS, "metrics-scrape")
    expected = token.encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] not in PATHS:
            await _plain(send, 404, b"not found; try /metrics\n")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, b"GET /metrics\n", [(b"allow", b"GET, HEAD")])
            return
        if expected and not _bearer_matches(scope["headers"], expected):
            await _plain(send, 401, b"a bearer token is required\n",
                         [(b"www-authenticate", b'Bearer realm="songqueue metrics"')])
            return
        collected = await asyncio.get_running_loop().run_in_executor(pool, lambda: list(registry.collect()))
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(_Collected(collected))
        await make_asgi_app(registry=scraped)(scope, receive, send)

    return app


def _bearer_matches(headers: list[tuple[bytes, bytes]], expected: bytes) -> bool:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, given = value.strip().partition(b" ")
            # Constant time: the comparison must not tell how much of a guess was right.
            return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), expected)
    return False


async def _plain(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def serve(queue: SongQueue, port: int, address: str = "127.0.0.1") -> int:
    """Serve /metrics until interrupted, under uvicorn with the API's guards (see above)."""
    from producer.api.server import serve as serve_asgi

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SongqueueCollector(queue))
    token = queue.settings.metrics_token.get_secret_value()
    name = "songqueue metrics (bearer token required)" if token else "songqueue metrics"
    return serve_asgi(metrics_app(registry, token), address, port, name=name, read_timeout=READ_TIMEOUT,
                      limit_concurrency=MAX_CONNECTIONS, path="/metrics")
