"""What a fault row does to a running songqueue, and the proof that it landed.

Each disruption waits for its moment (jobs in a state, a crash point reached), does its
harm, and returns the Fault: its time (Unix time, like the records' transitions) and the
jobs it caught mid-flight. Recovery is measured on those jobs only, from the fault to their
end. One that cannot prove its fault landed raises, and the row fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import redis
import stack

from producer import JobState
from producer.core.store import keys
from producer.core.task_names import POLL, QUEUE_POLL
from tests.faults.harness import Harness
from workers.fault_points import hit_key

LIVE = {JobState.SUBMITTED, JobState.GENERATING}


@dataclass(frozen=True)
class Fault:
    at: float
    # The jobs the fault caught: the one whose task hit a crash point, or every job not yet
    # ended when a whole worker (or Redis) went down.
    jobs: frozenset[str]


Disruption = Callable[[Harness, list[str]], Fault]


def in_flight(h: Harness, ids: list[str], at: float) -> Fault:
    """The jobs not ended at `at`: what a worker or Redis going down catches."""
    return Fault(at, frozenset(i for i, s in zip(ids, h.states(ids)) if s is not None and not s.terminal))


def wait_for(h: Harness, ids: list[str], states: set[JobState], every: bool, timeout: float = 60) -> None:
    """Until all (every=True) or any of the jobs are in `states`."""
    test = all if every else any
    stack.wait_until(lambda: test(s in states for s in h.states(ids)), timeout,
                     f"{'all' if every else 'a'} job in {sorted(s.value for s in states)}")


def kill_workers_when(states: set[JobState], every: bool = True) -> Disruption:
    """SIGKILL every worker (pool children too) once jobs are in `states`; start a fresh one."""
    def disrupt(h: Harness, ids: list[str]) -> Fault:
        wait_for(h, ids, states, every)
        fault = in_flight(h, ids, time.time())
        h.kill_workers()
        h.start_worker()
        return fault
    return disrupt


def kill_workers_twice_when(states: set[JobState]) -> Disruption:
    """Two SIGKILLs in a row (the second hits the fresh worker right after it is ready)."""
    def disrupt(h: Harness, ids: list[str]) -> Fault:
        wait_for(h, ids, states, every=True)
        h.kill_workers()
        h.start_worker()
        fault = in_flight(h, ids, time.time())
        h.kill_workers()
        h.start_worker()
        return fault
    return disrupt


def crash_point_hit(point: str, times: int = 1) -> Disruption:
    """The fault is the point's own action (SONGQUEUE_FAULT_POINT); this waits until a worker
    reached the point. With times=2 it re-arms the point once it fired, so the next worker to
    reach it (the killed step's redelivery, as a rule) dies there too: twice in a row. The
    job caught is the one whose task hit the point (the hit key names it); a `kill_worker`
    also catches every job in flight on that worker, so there it is every job not ended."""
    def disrupt(h: Harness, ids: list[str]) -> Fault:
        client = redis.Redis.from_url(h.redis_url)
        key = hit_key(h.prefix, point)
        caught: set[str] = set()
        first = None
        for n in range(times):
            raw = stack.wait_until(lambda: client.get(key), 90, f"a worker at {point} (hit {n + 1} of {times})")
            action, job, at = raw.decode().split("|")
            first = float(at) if first is None else first
            if action == "kill_worker":
                # The machine is gone: what it ran is caught, and another takes its place.
                caught |= in_flight(h, ids, float(at)).jobs
                h.kill_workers()
                h.start_worker()
            caught |= {job} & set(ids)
            if n + 1 < times:
                client.delete(key)
        assert first is not None
        return Fault(first, frozenset(caught or in_flight(h, ids, first).jobs))
    return disrupt


def restart_redis_when(states: set[JobState], *, kill: bool = False, every: bool = True) -> Disruption:
    """Restart the row's Redis (same port, same data dir) once jobs are in `states`:
    gracefully, or by SIGKILL (writes not yet fsynced to the append-only file are lost)."""
    def disrupt(h: Harness, ids: list[str]) -> Fault:
        wait_for(h, ids, states, every)
        at_fault = Counter(str(s) for s in h.states(ids))
        fault = in_flight(h, ids, time.time())
        h.restart_redis(kill=kill)
        after = Counter(str(s) for s in h.states(ids))
        h.notes.append(f"Redis {'SIGKILL' if kill else 'SIGTERM'} with jobs {dict(at_fault)}; "
                       f"after the restart the records say {dict(after)}")
        return fault
    return disrupt


def backlog_then_kill(messages: int) -> Disruption:
    """Workers die mid-poll; while none runs, `messages` poll messages (for jobs that do not
    exist: each is a no-op) are parked on the poll queue; then a fresh worker starts. The
    watchdog round must run while that backlog is still queued: it is not a queued message."""
    def disrupt(h: Harness, ids: list[str]) -> Fault:
        wait_for(h, ids, LIVE, every=True)
        fault = in_flight(h, ids, time.time())
        h.kill_workers()
        client = redis.Redis.from_url(h.redis_url)
        with h.queue.celery.producer_or_acquire() as producer:
            for n in range(messages):
                h.queue.celery.send_task(POLL, args=[f"parked-{n}"], queue=QUEUE_POLL, producer=producer)
        parked = client.llen(QUEUE_POLL)
        if parked < messages:
            raise AssertionError(f"only {parked} of {messages} messages parked on the poll queue")
        before = client.get(keys.watchdog_last_round(h.prefix))
        h.start_worker()
        seen: dict[str, int] = {}

        def round_under_backlog() -> bool:
            pipe = client.pipeline()
            pipe.get(keys.watchdog_last_round(h.prefix))
            pipe.llen(QUEUE_POLL)
            last, waiting = pipe.execute()
            seen["waiting"] = waiting
            return last != before and waiting >= messages // 2

        stack.wait_until(round_under_backlog, 60, "a watchdog round while the poll backlog is queued")
        h.notes.append(f"watchdog round ran with {seen['waiting']} of {messages} parked messages still queued")
        return fault
    return disrupt
