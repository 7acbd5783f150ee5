"""The one admission step before an upstream call: shared limits, then the daily budget.

`admit_submit` and `admit_poll` answer with one of:
- `Admitted(reservation)`: go on; the reservation (None for a free call or a poll) is the
  budget held for the call, and `settle` ends it, once, after the call.
- `Wait`: hold the job back by countdown, the reason shown in `songqueue status`
  (a shared limit, or the budget under SONGQUEUE_BUDGET_POLICY=wait).
- `OverBudget`: the budget is spent and SONGQUEUE_BUDGET_POLICY=fail: end the job.
- `MovedOn`: the job is no longer to submit (cancelled, say): nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from producer.models.job_record import JobRecord
from producer.settings import Settings
from workers.admission import budget, limits
from workers.admission.budget import OverBudget, Reservation
from workers.admission.limits import Wait

__all__ = ["Admitted", "MovedOn", "OverBudget", "Wait", "admit_poll", "admit_submit", "settle"]


@dataclass(frozen=True)
class Admitted:
    reservation: Reservation | None = None


@dataclass(frozen=True)
class MovedOn:
    """The job left QUEUED/SUBMITTING between the task's read and its admission."""


def admit_submit(client: redis.Redis, settings: Settings, record: JobRecord,
                 price: float) -> Admitted | Wait | OverBudget | MovedOn:
    """The in-flight limit, the submit rate, then the budget, in that order.

    A place in flight taken before a later check says wait is given back, so a waiting job
    never counts as in flight.
    """
    try:
        wait = limits.admit_in_flight(client, settings, record.id, record.provider)
    except limits.JobMovedOn:
        return MovedOn()
    if wait is not None:
        return wait
    held: Wait | OverBudget | None = limits.take_token(client, settings, record.provider, "submit")
    if held is None:
        reserved = budget.reserve(client, settings, record.provider, price)
        if not isinstance(reserved, OverBudget):
            return Admitted(reserved)
        held = reserved.wait(settings) if settings.budget_policy == "wait" else reserved
    limits.release_in_flight(client, settings, record.id, record.provider)
    return held


def admit_poll(client: redis.Redis, settings: Settings, provider: str) -> Admitted | Wait:
    wait = limits.take_token(client, settings, provider, "poll")
    return Admitted() if wait is None else wait


def settle(client: redis.Redis, reservation: Reservation | None, billed: bool) -> None:
    """The one place a reservation ends: kept when the call was (or may have been) billed,
    given back when the upstream refused it or it was never made."""
    if reservation is not None and not billed:
        client.decrby(reservation.key, reservation.micros)
