"""Limits shared by every worker, kept in Redis: upstream tasks in flight, submit and poll rates.

Per provider (settings `SONGQUEUE_{PROVIDER}_MAX_IN_FLIGHT`, `_SUBMIT_RATE`, `_POLL_RATE`):

- **In flight**: the job store keeps a set of the provider's jobs in SUBMITTING, SUBMITTED
  or GENERATING, changed in the same transaction as the job's state (producer/core/store/job_store.py).
  A submit is admitted into that set by one Lua script when there is room, before its state
  changes; a job that ends, backs off or is cancelled leaves it with that state change, so
  no count can leak when a job ends or a worker dies.
- **Rates**: a token bucket per provider and call, refilled at the rate per second up to a
  burst of one second's worth (at least 1 token), on the Redis server's clock.

Each check is one atomic script (producer/core/store/lua/, run by producer/core/store/scripts.py).
A job over a rate gets a `Wait`: the task retries by countdown (no worker slot is held) and
the reason goes on the job record. A job over an in-flight limit is parked instead
(producer/core/store/parking.py): no task runs until a place frees and wakes it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import redis

from producer.core.models.job_record import IN_FLIGHT_STATES, JobState
from producer.core.settings import Settings
from producer.core.store import keys, scripts

# The states in which a job may still be admitted: about to submit, or submitting again
# after a redelivery. The scripts get these names (and IN_FLIGHT_STATES) as arguments.
ADMISSIBLE_STATES = frozenset({JobState.QUEUED, JobState.SUBMITTING})


@dataclass(frozen=True)
class Wait:
    """Why a job cannot go on now, and when to try again."""

    limit: str  # "in_flight", "submit_rate", "poll_rate" or "budget": a metrics label
    reason: str  # for `songqueue status`; stable while the cause is, so it is written once
    seconds: float


def jittered(seconds: float) -> float:
    """Spread waiting jobs out so they do not all come back in the same instant."""
    return seconds * random.uniform(1.0, 1.5)


class JobMovedOn(Exception):
    """The job is no longer QUEUED or SUBMITTING (cancelled, say): nothing to admit."""


def admit_in_flight(client: redis.Redis, settings: Settings, job_id: str, provider: str,
                    since: float = 0.0) -> Wait | None:
    """A place among the provider's upstream tasks in flight, or a Wait (the job parked, at
    `since`, its creation time: producer/core/store/parking.py); raises JobMovedOn."""
    limit = settings.provider(provider).max_in_flight
    if limit is None or admit_to(client, settings.key_prefix, keys.in_flight(settings.key_prefix, provider),
                                 job_id, limit, since):
        return None
    return Wait("in_flight", f"{provider} in-flight limit: {limit} upstream task(s) at once "
                f"(SONGQUEUE_{provider.upper()}_MAX_IN_FLIGHT)", jittered(settings.limit_wait))


def release_in_flight(client: redis.Redis, settings: Settings, job_id: str, provider: str) -> str | None:
    """Give back a place `admit_in_flight` gave a job that is to wait for something else;
    the set, when a place was given back (a parked job is to be woken for it)."""
    if settings.provider(provider).max_in_flight is not None:
        return release_from(client, settings.key_prefix, keys.in_flight(settings.key_prefix, provider), job_id)
    return None


def admit_to(client: redis.Redis, prefix: str, in_flight: str, job_id: str, limit: int, since: float = 0.0) -> bool:
    """Admit the job into the in-flight set `in_flight` (a provider's or an API key's) if it
    holds fewer than `limit`, else park it there at `since`; raises JobMovedOn when the job is
    no longer about to submit."""
    admitted, _ = scripts.run(client, "in_flight_admit", [in_flight, keys.job(prefix, job_id), keys.parked(in_flight)],
                              [job_id, limit, time.time(), since, *names(ADMISSIBLE_STATES)])
    if admitted == -1:
        raise JobMovedOn(job_id)
    return bool(admitted)


def release_from(client: redis.Redis, prefix: str, in_flight: str, job_id: str) -> str | None:
    """Give back the job's place in `in_flight`, unless it has meanwhile gone in flight for
    real; `in_flight` when a place was given back, else None."""
    given = scripts.run(client, "in_flight_release", [in_flight, keys.job(prefix, job_id)],
                        [job_id, *names(IN_FLIGHT_STATES)])
    return in_flight if given else None


def take_token(client: redis.Redis, settings: Settings, provider: str, call: str) -> Wait | None:
    """One `call` ("submit" or "poll") under the provider's shared rate; a Wait when over it."""
    rate = settings.provider(provider).call_rate(call)
    if rate is None:
        return None
    wait = float(scripts.run(client, "token_bucket", [keys.rate_bucket(settings.key_prefix, provider, call)],
                             [rate, max(1.0, rate)]))
    if wait <= 0:
        return None
    return Wait(f"{call}_rate", f"{provider} {call} rate limit: {rate:g}/s "
                f"(SONGQUEUE_{provider.upper()}_{call.upper()}_RATE)", jittered(wait))


def names(states: frozenset[JobState]) -> list[str]:
    return sorted(state.value for state in states)
