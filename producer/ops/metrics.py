"""`songqueue metrics [--host H] --port N`: a Prometheus endpoint for songqueue, a process of its own.

Everything is read at scrape time: gauges from the job store's indexes, the spend ledger and
the broker (producer/ops/operator_stats.py), counters and histograms from the hashes the workers
keep in Redis (workers/metrics.py, names in producer/core/store/metric_schema.py). Nothing is cached
here, so any number of exporters may run and a restart loses nothing.

Flower has its own `/metrics` (task counts and runtimes per worker, from Celery events);
this one knows about jobs, providers, money and queues, which Flower cannot see.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from producer.client.songqueue import SongQueue
from producer.core.log_json import install_server_logging
from producer.core.models.providers import PROVIDERS
from producer.core.store import keys
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
from producer.ops.metrics_server import MetricsServer

log = logging.getLogger("songqueue.metrics")


class SongqueueCollector(Collector):
    def __init__(self, queue: SongQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily("songqueue_build", "The songqueue version serving these metrics",
                               value={"version": _version()})
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
        yield from self._worker_counters()

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


def _version() -> str:
    try:
        return importlib.metadata.version("songqueue")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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


def serve(queue: SongQueue, port: int, address: str = "127.0.0.1") -> int:
    """Serve /metrics until interrupted (producer/ops/metrics_server.py: timeouts, bounded threads, optional token)."""
    install_server_logging()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SongqueueCollector(queue))
    server = MetricsServer(lambda: generate_latest(registry), token=queue.settings.metrics_token.get_secret_value())

    async def run() -> None:
        listening = await server.start(address, port)
        bound = listening.sockets[0].getsockname()[1]
        print(f"songqueue metrics on http://{address}:{bound}/metrics"
              f"{' (bearer token required)' if server.token else ''}", flush=True)
        async with listening:
            await listening.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
