"""The one admission step before an upstream call: shared limits, then the daily budget.

`admit_submit` and `admit_poll` answer with one of:
- `Admitted(reservations)`: go on; the reservations (none for a free call or a poll) are the
  budget held for the call, the provider's and the API key's, and `settle` ends them, once,
  after the call.
- `Wait`: hold the job back, the reason shown in `songqueue status`: parked behind an
  in-flight limit (its provider's or its API key's; producer/core/store/parking.py), or by
  countdown for a rate or a budget under SONGQUEUE_BUDGET_POLICY=wait.
- `OverBudget`: the budget is spent and SONGQUEUE_BUDGET_POLICY=fail: end the job.
- `MovedOn`: the job is no longer to submit (cancelled, say): nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from producer.core.models.job_record import JobRecord
from producer.core.settings import Settings
from producer.core.store.api_keys import ApiKey
from workers import runtime
from workers.admission import budget, key_limits, limits
from workers.admission.budget import OverBudget, Reservation
from workers.admission.limits import Wait

__all__ = ["Admitted", "MovedOn", "OverBudget", "Wait", "admit_poll", "admit_submit", "PARKING_LIMITS", "release_places", "settle"]


# The waits that park a job instead of a countdown (producer/core/store/parking.py): a place
# freeing is an event the job store sees; a rate token or a new day is not.
PARKING_LIMITS = frozenset({"in_flight", "key_in_flight"})


@dataclass(frozen=True)
class Admitted:
    reservations: tuple[Reservation, ...] = ()


@dataclass(frozen=True)
class MovedOn:
    """The job left QUEUED/SUBMITTING between the task's read and its admission."""


def admit_submit(client: redis.Redis, settings: Settings, record: JobRecord,
                 price: float) -> Admitted | Wait | OverBudget | MovedOn:
    """In flight (the provider's, then the API key's), the submit rate, then the budgets
    (the provider's, then the key's), in that order.

    A place in flight taken before a later check says wait is given back, and so is a
    budget reserved before a later one refuses, so a waiting job never counts as in flight
    and never holds money.
    """
    key = key_limits.key_of(client, settings, record)
    try:
        wait = limits.admit_in_flight(client, settings, record.id, record.provider, record.created_at)
        if wait is None and key is not None:
            wait = key_limits.admit_in_flight(client, settings, record, key)
            if wait is not None:
                _wake(limits.release_in_flight(client, settings, record.id, record.provider))
    except limits.JobMovedOn:
        return MovedOn()
    if wait is not None:
        return wait
    held: Wait | OverBudget | None = limits.take_token(client, settings, record.provider, "submit")
    if held is None:
        reserved = _reserve(client, settings, record, key, price)
        if isinstance(reserved, Admitted):
            return reserved
        held = reserved.wait(settings) if settings.budget_policy == "wait" else reserved
    release_places(client, settings, record, key)
    return held


def release_places(client: redis.Redis, settings: Settings, record: JobRecord, key: ApiKey | None) -> None:
    """Give back the places a job was admitted to and will not use (it waits for a rate or a
    budget, or its intent was refused), and wake a parked job for each."""
    _wake(limits.release_in_flight(client, settings, record.id, record.provider),
          key_limits.release_in_flight(client, settings, record, key) if key is not None else None)


def _wake(*freed: str | None) -> None:
    sets = [s for s in freed if s is not None]
    if sets:
        runtime.store().wake_parked(sets)


def _reserve(client: redis.Redis, settings: Settings, record: JobRecord, key: ApiKey | None,
             price: float) -> Admitted | OverBudget:
    """The provider's budget, then the key's; what one reserved is given back when the other refuses."""
    shared = budget.reserve(client, settings, record.provider, price, job_id=record.id, version=record.version)
    if isinstance(shared, OverBudget):
        return shared
    own = key_limits.reserve(client, settings, key, price, job_id=record.id,
                             version=record.version) if key is not None else None
    if isinstance(own, OverBudget):
        settle(client, (shared,) if shared else (), billed=False, committed=False)
        return own
    return Admitted(tuple(r for r in (shared, own) if r is not None))


def admit_poll(client: redis.Redis, settings: Settings, provider: str) -> Admitted | Wait:
    wait = limits.take_token(client, settings, provider, "poll")
    return Admitted() if wait is None else wait


def settle(client: redis.Redis, reservations: tuple[Reservation, ...], billed: bool, committed: bool = True) -> None:
    """The one place a submit ends its reservations: kept when the call was (or may have
    been) billed, given back when the upstream refused it or it was never made.
    `committed`: the intent's write took them (workers/admission/budget.py); when it did
    not, the watchdog may have given them back already, and none is given back twice."""
    if billed and committed:
        return  # the intent committed them, and the call keeps them
    for reservation in reservations:
        budget.settle(client, reservation, give_back=not billed, committed=committed)
