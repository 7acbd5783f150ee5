"""The spend ledger: money reserved for each provider's paid calls, per UTC day, in Redis.

The budget guard (workers/admission/budget.py) writes it before every paid call; `songqueue stats`
and `songqueue metrics` read it here. Amounts are kept as integer micro-units so that
concurrent increments add up exactly.
"""

from __future__ import annotations

import time

import redis

from producer.core.store import keys

MICROS = 1_000_000
# A day's key outlives its day by a week, for a look back in Redis; the ledger is not an archive.
KEEP_SECONDS = 8 * 24 * 3600


def utc_day(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if at is None else at))


def seconds_to_next_day(at: float | None = None) -> float:
    now = time.time() if at is None else at
    return 86400 - now % 86400


def to_micros(amount: float) -> int:
    return int(round(amount * MICROS))


def spent(client: redis.Redis, prefix: str, provider: str, day: str | None = None) -> float:
    """What was reserved for `provider` on `day` (default: today, UTC)."""
    raw = client.get(keys.spend(prefix, provider, day or utc_day()))
    return int(raw) / MICROS if raw else 0.0
