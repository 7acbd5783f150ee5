"""The budget guard: a provider's daily budget, reserved in Redis before each paid call.

`SONGQUEUE_{PROVIDER}_DAILY_BUDGET` (unset = unlimited) caps what the calls of one UTC day
may cost, priced as the job record's `cost` is (`SONGQUEUE_{PROVIDER}_PRICE_PER_CALL`
times the model's factor). The price is reserved atomically *before* the call, so two
submits racing for the last of a budget cannot both get it; a call the upstream refused
is given back, one that may have been billed stays (workers/admission/gate.py settle). Over budget, a submit waits
(`SONGQUEUE_BUDGET_POLICY=wait`: tried again every `SONGQUEUE_BUDGET_WAIT` seconds and at
the turn of the UTC day) or fails with `budget_exceeded` (`fail`).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from producer.settings import Settings
from producer.store import keys, spend
from workers.admission.limits import Wait, jittered, run_script


@dataclass(frozen=True)
class Reservation:
    key: str
    micros: int


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


def reserve(client: redis.Redis, settings: Settings, provider: str, price: float) -> Reservation | OverBudget | None:
    """Reserve `price` for one call today; None when there is nothing to reserve (price 0)."""
    return reserve_under(client, keys.spend(settings.key_prefix, provider, spend.utc_day()),
                         settings.daily_budget(provider), price,
                         provider, f"SONGQUEUE_{provider.upper()}_DAILY_BUDGET")


def reserve_under(client: redis.Redis, day_key: str, budget: float | None, price: float,
                  whose: str, knob: str) -> Reservation | OverBudget | None:
    """Reserve `price` in the day's spend counter `day_key` under `budget` (None: unlimited)."""
    if price <= 0:
        return None
    micros = spend.to_micros(price)
    ok, total = run_script(client, "budget_reserve", [day_key],
                           [micros, -1 if budget is None else spend.to_micros(budget), spend.KEEP_SECONDS])
    if ok:
        return Reservation(day_key, micros)
    assert budget is not None
    return OverBudget(whose, knob, spend.utc_day(), int(total) / spend.MICROS, budget, price)
