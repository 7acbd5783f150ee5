"""What an operator sees at a glance (`songqueue stats`, and the gauges of `songqueue metrics`):
jobs by state, upstream tasks in flight, today's spend against the budget, queue depths.

Read from the job store's indexes and the spend ledger (counts, never a scan of records)
and from the broker (messages waiting in each queue).
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery

from producer.core.broker import queue_depths
from producer.core.models.job_record import JobState
from producer.core.settings import Settings
from producer.core.store import keys, spend


@dataclass(frozen=True)
class ProviderStats:
    in_flight: int
    max_in_flight: int | None
    spent_today: float
    daily_budget: float | None


@dataclass(frozen=True)
class Snapshot:
    day: str  # UTC, the spend's day
    jobs: dict[str, int]  # state -> jobs in it
    providers: dict[str, ProviderStats]
    queues: dict[str, int]  # queue -> messages waiting (not those a worker holds)

    def as_dict(self) -> dict[str, object]:
        return {
            "day": self.day,
            "jobs": self.jobs,
            "providers": {name: vars(p) for name, p in self.providers.items()},
            "queues": self.queues,
        }


def collect(settings: Settings, store_redis: object, celery: Celery, providers: list[str]) -> Snapshot:
    prefix = settings.key_prefix
    pipe = store_redis.pipeline(transaction=False)  # type: ignore[attr-defined]
    for state in JobState:
        pipe.zcard(keys.jobs_in_state(prefix, state.value))
    for provider in providers:
        pipe.zcard(keys.in_flight(prefix, provider))
    counts = pipe.execute()
    jobs = {state.value: int(n) for state, n in zip(JobState, counts)}
    day = spend.utc_day()
    stats = {
        provider: ProviderStats(
            in_flight=int(n), max_in_flight=settings.provider(provider).max_in_flight,
            spent_today=spend.spent(store_redis, prefix, provider, day),
            daily_budget=settings.provider(provider).daily_budget,
        )
        for provider, n in zip(providers, counts[len(JobState):])
    }
    return Snapshot(day=day, jobs=jobs, providers=stats, queues=queue_depths(celery))

