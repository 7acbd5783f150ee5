"""What a fault row does to a running songqueue, and the proof that it landed.

Each disruption waits for its moment (jobs in a state, a crash point reached), does its
harm, and returns the time of the fault (Unix time, like the records' transitions): recovery is
measured from there. One
that cannot prove its fault landed raises, and the row fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import redis
import stack

from producer import JobState
from producer.core.store import keys
from producer.core.task_names import POLL, QUEUE_POLL
from tests.faults.harness import Harness
from workers.fault_points import hit_key

Disruption = Callable[[Harness, list[str]], float]
LIVE = {JobState.SUBMITTED, JobState.GENERATING}


def wait_for(h: Harness, ids: list[str], states: set[JobState], every: bool, timeout: float = 60) -> None:
    """Until all (every=True) or any of the jobs are in `states`."""
    test = all if every else any
    stack.wait_until(lambda: test(s in states for s in h.states(ids)), timeout,
                     f"{'all' if every else 'a'} job in {sorted(s.value for s in states)}")


def kill_workers_when(states: set[JobState], every: bool = True) -> Disruption:
    """SIGKILL every worker (pool children too) once jobs are in `states`; start a fresh one."""
    def disrupt(h: Harness, ids: list[str]) -> float:
        wait_for(h, ids, states, every)
        fault_at = time.time()
        h.kill_workers()
        h.start_worker()
        return fault_at
    return disrupt


def kill_workers_twice_when(states: set[JobState]) -> Disruption:
    """Two SIGKILLs in a row (the second hits the fresh worker right after it is ready)."""
    def disrupt(h: Harness, ids: list[str]) -> float:
        wait_for(h, ids, states, every=True)
        h.kill_workers()
        h.start_worker()
        fault_at = time.time()
        h.kill_workers()
        h.start_worker()
        return fault_at
    return disrupt


def crash_point_hit(point: str, times: int = 1) -> Disruption:
    """The fault is the point's own action (SONGQUEUE_FAULT_POINT); this waits until a worker
    reached the point. With times=2 it re-arms the point once it fired, so the next worker to
    reach it (the killed step's redelivery, as a rule) dies there too: twice in a row."""
    def disrupt(h: Harness, ids: list[str]) -> float:
        client = redis.Redis.from_url(h.redis_url)
        key = hit_key(h.prefix, point)
        for n in range(times):
            stack.wait_until(lambda: client.exists(key), 90, f"a worker at {point} (hit {n + 1} of {times})")
            if n + 1 < times:
                client.delete(key)
        return time.time()
    return disrupt


def restart_redis_when(states: set[JobState], *, kill: bool = False, every: bool = True) -> Disruption:
    """Restart the row's Redis (same port, same data dir) once jobs are in `states`:
    gracefully, or by SIGKILL (writes not yet fsynced to the append-only file are lost)."""
    def disrupt(h: Harness, ids: list[str]) -> float:
        wait_for(h, ids, states, every)
        at_fault = Counter(str(s) for s in h.states(ids))
        fault_at = time.time()
        h.restart_redis(kill=kill)
        after = Counter(str(s) for s in h.states(ids))
        h.notes.append(f"Redis {'SIGKILL' if kill else 'SIGTERM'} with jobs {dict(at_fault)}; "
                       f"after the restart the records say {dict(after)}")
        return fault_at
    return disrupt


def backlog_then_kill(messages: int) -> Disruption:
    """Workers die mid-poll; while none runs, `messages` poll messages (for jobs that do not
    exist: each is a no-op) are parked on the poll queue; then a fresh worker starts. The
    watchdog round must run while that backlog is still queued: it is not a queued message."""
    def disrupt(h: Harness, ids: list[str]) -> float:
        wait_for(h, ids, LIVE, every=True)
        fault_at = time.time()
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
        return fault_at
    return disrupt
