"""An API key's own limits, held by the workers as the provider's are: in flight and daily budget.

`songqueue keys create --max-in-flight N --daily-budget X` sets them on a key, and a job
submitted through the HTTP API names its key (JobRecord.api_key). The submit step admits
such a job under the provider's limits and then its key's, with the same scripts on the
same Redis, so a key's limits hold across every worker and every API process together.
A job over its key's limit is accepted (201) and waits QUEUED, the reason on its record
(`waiting_for`), exactly like a job over a provider's limit: nothing is refused that a
later moment could run, and the API need not guess what the workers will do.

- **In flight** counts the key's jobs with an upstream task in flight (SUBMITTING,
  SUBMITTED, GENERATING), as the provider limit does. The job store keeps the key's set in
  the same transaction as each state change (producer/core/store/job_store.py), so a job that
  ends, backs off or is cancelled frees its place at once and nothing leaks.
- **Daily budget**: each paid call reserves its price in the key's spend counter for the
  UTC day before the call, atomically (the provider budget's script), so the jobs of one
  key cannot together overshoot its budget, however many are in flight.
  SONGQUEUE_BUDGET_POLICY decides, as for a provider: `wait` for the next day or `fail`.

A revoked key's jobs already queued still run: revoking stops new submits, it does not
cancel work (an operator cancels with `songqueue cancel`).
"""

from __future__ import annotations

import redis

from producer.core.models.job_record import JobRecord
from producer.core.settings import Settings
from producer.core.store import keys, spend
from producer.core.store.api_keys import ApiKey, KeyStore
from workers.admission.budget import OverBudget, Reservation, reserve_under
from workers.admission.limits import Wait, admit_to, jittered, release_from


def key_of(client: redis.Redis, settings: Settings, record: JobRecord) -> ApiKey | None:
    """The key that submitted the job, when it has limits to hold it to."""
    if not record.api_key:
        return None
    key = KeyStore(client, settings.key_prefix).get(record.api_key)
    if key is None or (key.max_in_flight is None and key.daily_budget is None):
        return None
    return key


def _describe(key: ApiKey) -> str:
    return f"API key {key.id} ({key.name})"


def admit_in_flight(client: redis.Redis, settings: Settings, record: JobRecord, key: ApiKey) -> Wait | None:
    """A place among the key's jobs in flight, or a Wait; raises JobMovedOn."""
    if key.max_in_flight is None or admit_to(client, settings.key_prefix, keys.key_in_flight(settings.key_prefix, key.id),
                                             record.id, key.max_in_flight, record.created_at):
        return None
    return Wait("key_in_flight", f"{_describe(key)} in-flight limit: {key.max_in_flight} job(s) at once "
                "(songqueue keys create --max-in-flight)", jittered(settings.limit_wait))


def release_in_flight(client: redis.Redis, settings: Settings, record: JobRecord, key: ApiKey) -> str | None:
    """Give back a place `admit_in_flight` gave a job that is to wait for something else;
    the set, when a place was given back."""
    if key.max_in_flight is not None:
        return release_from(client, settings.key_prefix, keys.key_in_flight(settings.key_prefix, key.id), record.id)
    return None


def reserve(client: redis.Redis, settings: Settings, key: ApiKey, price: float, *, job_id: str,
            version: int) -> Reservation | OverBudget | None:
    """Reserve one call's price under the key's daily budget; None when it has none or the call is free."""
    if key.daily_budget is None:
        return None
    return reserve_under(client, settings.key_prefix, keys.key_spend(settings.key_prefix, key.id, spend.utc_day()),
                         key.daily_budget, price, _describe(key), "songqueue keys create --daily-budget",
                         job_id=job_id, version=version)

