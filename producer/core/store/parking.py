"""Parked jobs: a job waiting for an in-flight place costs no task runs while it waits.

A submit that finds its provider's or its API key's in-flight set full is parked, in the
same Lua step that refused it (producer/core/store/lua/in_flight_admit.lua): its id goes
into the set's park queue (`keys.parked`, a sorted set scored by the job's creation time, so
the oldest goes first), the reason and the limit go on its record (`waiting_for`, `parked`)
and its submit task returns without a retry: no Celery message, no countdown.

A place frees where the job store moves a job out of an in-flight state (it ends, backs off
to QUEUED, is cancelled, or its songs are ready to download): right after that write the
store wakes the oldest parked job of each set the job left (`wake`): it pops it (ZPOPMIN,
so two wakers never take the same job) and sends its submit under the job's own fencing
token (a parked job has no message left, so there is nothing to fence off). A woken job
that finds the place taken meanwhile (by a job that was never parked) is parked again at
its old place, the head of the queue.

A wake lost to a crash between the write that freed the place and the send is healed by
the watchdog: a parked job stays in its due index (`SONGQUEUE_PARKED_CHECK` ahead, capped
at the caller's deadline), and the watchdog's (QUEUED, parked) row resends its submit only
when it is no longer in its park queue or its set has room; otherwise it only looks again
later (workers/tasks/watchdog.py).

Who sends: the store's `waker` (set by the workers' runtime and by producer/core/enqueue.py);
a store without one (a script's own) wakes nobody and leaves it to the watchdog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from producer.core import task_names
from producer.core.models.job_record import JobRecord, JobState
from producer.core.store import keys

if TYPE_CHECKING:
    from producer.core.store.job_store import JobStore

PROVIDER_LIMIT = "in_flight"
KEY_LIMIT = "key_in_flight"
# Popped job ids found no longer QUEUED are skipped; at most this many per wake.
_SKIPS = 16


def limit_sets(prefix: str, record: JobRecord) -> dict[str, str]:
    """The in-flight sets a job is held to, by limit name (its provider's; its API key's)."""
    sets = {PROVIDER_LIMIT: keys.in_flight(prefix, record.provider)}
    if record.api_key:
        sets[KEY_LIMIT] = keys.key_in_flight(prefix, record.api_key)
    return sets


def park_queue(prefix: str, record: JobRecord, limit: str) -> str:
    """The park queue of the job's `limit` ("in_flight" or "key_in_flight")."""
    return keys.parked(limit_sets(prefix, record)[limit])


def wake(store: JobStore, in_flight_sets: Iterable[str]) -> int:
    """A place freed in each of `in_flight_sets`: send the submit of the oldest job parked
    behind each; returns how many were sent."""
    if store.waker is None:
        return 0
    sent = 0
    for in_flight_set in in_flight_sets:
        for _ in range(_SKIPS):
            popped = store.redis.zpopmin(keys.parked(in_flight_set), 1)
            if not popped:
                break
            record = store.get(popped[0][0].decode())
            if record is not None and record.state is JobState.QUEUED:
                store.waker(record)
                sent += 1
                break
    return sent


def waker(celery: Any) -> Callable[[JobRecord], None]:
    """A store's `waker` sending through `celery` (any Celery app: tasks go out by name)."""
    def send(record: JobRecord) -> None:
        celery.send_task(task_names.SUBMIT, args=[record.id, record.token],
                         argsrepr=task_names.argsrepr(record.id, provider=record.provider, request=record.request))
    return send
