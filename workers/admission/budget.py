"""The budget guard: a provider's daily budget, reserved in Redis before each paid call.

`SONGQUEUE_{PROVIDER}_DAILY_BUDGET` (unset = unlimited) caps what the calls of one UTC day
may cost, priced as the job record's `cost` is (`SONGQUEUE_{PROVIDER}_PRICE_PER_CALL`
times the model's factor). The price is reserved atomically *before* the call, so two
submits racing for the last of a budget cannot both get it; a call the upstream refused
is given back, one that may have been billed stays (workers/admission/gate.py settle). Over budget, a submit waits
(`SONGQUEUE_BUDGET_POLICY=wait`: tried again every `SONGQUEUE_BUDGET_WAIT` seconds and at
the turn of the UTC day) or fails with `budget_exceeded` (`fail`).

A reservation is pending (`{prefix}:reservations`) from the moment it is made until the
submit's intent commits it: the intent's write (QUEUED -> SUBMITTING, a job-store
compare-and-set) takes it out of the hash in the same atomic step. A worker that dies
between reserving and the intent leaves it pending; the watchdog round gives back every
pending reservation whose job has moved past the version the reservation was made on,
because the intent it was made for was conditioned on that version and can never be
written any more (`return_stranded`). Why not reserve inside the intent's write: the
budget check must be atomic with the increment (a Lua script of its own), and the job
store's compare-and-set runs unconditional writes only.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

import redis

from producer.core.settings import Settings
from producer.core.store import keys, scripts, spend
from producer.core.store.job_store import JobStore
from workers.admission.limits import Wait, jittered

log = logging.getLogger("songqueue.admission")


@dataclass(frozen=True)
class Reservation:
    key: str  # the day's spend it was taken from
    micros: int
    id: str
    pending: str  # the hash of pending reservations


@dataclass(frozen=True)
class OverBudget:
    whose: str  # "udio", or "API key 3f2a… (name)"
    knob: str  # what raises the budget, named in the message
    day: str
    spent: float
    budget: float
    price: float

    def message(self) -> str:
        return (f"{self.whose}'s daily budget is spent: {self.spent:g} of {self.budget:g} on {self.day} (UTC), "
                f"and this call costs {self.price:g} ({self.knob})")

    def wait(self, settings: Settings) -> Wait:
        # Back at the turn of the day at the latest, when the day's budget is new.
        seconds = min(jittered(settings.budget_wait), spend.seconds_to_next_day() + 1)
        return Wait("budget", f"{self.whose} daily budget: {self.spent:g} of {self.budget:g} spent on "
                    f"{self.day} (UTC); waits for the next day or a larger {self.knob}", seconds)


def reserve(client: redis.Redis, settings: Settings, provider: str, price: float, *, job_id: str,
            version: int) -> Reservation | OverBudget | None:
    """Reserve `price` for one call today, for the job read at `version`; None when there
    is nothing to reserve (price 0)."""
    return reserve_under(client, settings.key_prefix, keys.spend(settings.key_prefix, provider, spend.utc_day()),
                         settings.provider(provider).daily_budget, price,
                         provider, f"SONGQUEUE_{provider.upper()}_DAILY_BUDGET", job_id=job_id, version=version)


def reserve_under(client: redis.Redis, prefix: str, day_key: str, budget: float | None, price: float,
                  whose: str, knob: str, *, job_id: str, version: int) -> Reservation | OverBudget | None:
    """Reserve `price` in the day's spend counter `day_key` under `budget` (None: unlimited),
    pending until the intent of the job read at `version` commits it."""
    if price <= 0:
        return None
    micros = spend.to_micros(price)
    reservation = Reservation(day_key, micros, uuid.uuid4().hex, keys.reservations(prefix))
    entry = json.dumps({"job": job_id, "key": day_key, "micros": micros, "version": version})
    ok, total = scripts.run(client, "budget_reserve", [day_key, reservation.pending],
                            [micros, -1 if budget is None else spend.to_micros(budget), spend.KEEP_SECONDS,
                             reservation.id, entry])
    if ok:
        return reservation
    assert budget is not None
    return OverBudget(whose, knob, spend.utc_day(), int(total) / spend.MICROS, budget, price)


def settle(client: redis.Redis, reservation: Reservation, give_back: bool, committed: bool) -> bool:
    """Keep or give back `reservation` (workers/admission/gate.py settle); True if given back."""
    return bool(scripts.run(client, "reservation_settle", [reservation.pending, reservation.key],
                            [reservation.id, reservation.micros, int(give_back), int(committed)]))


def return_stranded(client: redis.Redis, store: JobStore) -> int:
    """Give back the pending reservations no intent can commit any more (a watchdog round's
    work); returns how many."""
    pending = keys.reservations(store.prefix)
    returned = 0
    for raw_id, raw in client.hgetall(pending).items():
        entry = json.loads(raw)
        record = store.get(entry["job"])
        if record is not None and record.version == entry["version"]:
            continue  # its intent may still be written (the job will be overdue if its worker died)
        reservation = Reservation(entry["key"], int(entry["micros"]), raw_id.decode(), pending)
        if settle(client, reservation, give_back=True, committed=False):
            log.warning("job %s: gave back a budget reservation its submit left before the intent",
                        entry["job"], extra={"job_id": entry["job"]})
            returned += 1
    return returned
