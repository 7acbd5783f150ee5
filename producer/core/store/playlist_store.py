"""Playlist run records in Redis: one claim per scheduled slot, compare-and-set transitions.

The same discipline as `producer.core.store.job_store`: a run record changes only by an optimistic
transaction that checks its state first, so a task that runs twice changes nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

import redis

from producer.core.models.playlist_run import PlaylistRun, RunState
from producer.core.store import keys, optimistic, retention

log = logging.getLogger("songqueue.playlist_store")

# How long a slot's claim is kept. A beat only ever fires the latest slot (after a restart
# with a stale schedule file, the one it may already have fired), so a claim is asked
# again minutes later at most; 30 days is ample and keeps the keys of a fast schedule
# from piling up forever.
CLAIM_TTL = 30 * 24 * 3600


class PlaylistStore:
    def __init__(self, client: redis.Redis, prefix: str = "songqueue", retention: float = 0) -> None:
        """`retention`: seconds an ended run stays in Redis (SONGQUEUE_PLAYLIST_RUN_RETENTION); 0 keeps it."""
        self.redis = client
        self.prefix = prefix
        self.retention = retention

    def create(self, run: PlaylistRun, check_in: float) -> tuple[PlaylistRun, bool]:
        """Store a new CREATING run; returns (run, created).

        A scheduled run (`run.slot` set) claims its (playlist, slot): of any number of
        attempts at one slot (two beats, a beat restarted mid-schedule, a redelivered
        message) the first wins and the others get its run back. The claim and the record
        are written in one transaction, so a crash between them cannot leave either alone.
        """
        claim = keys.playlist_slot(self.prefix, run.playlist, int(run.slot)) if run.slot is not None else None
        while True:
            with self.redis.pipeline(transaction=True) as pipe:
                try:
                    winner = None
                    if claim is not None:
                        pipe.watch(claim)
                        winner = pipe.get(claim)
                    if winner is None:
                        pipe.multi()
                        if claim is not None:
                            pipe.set(claim, run.id, ex=CLAIM_TTL)
                        pipe.set(keys.playlist_run(self.prefix, run.id), run.model_dump_json())
                        pipe.zadd(keys.playlist_runs(self.prefix), {run.id: run.created_at})
                        pipe.zadd(keys.playlist_runs(self.prefix, run.playlist), {run.id: run.created_at})
                        pipe.zadd(keys.playlist_open(self.prefix), {run.id: run.created_at + check_in})
                        pipe.execute()
                        return run, True
                except redis.WatchError:
                    continue
            existing = self.get(winner.decode())
            if existing is None:
                raise RuntimeError(f"playlist {run.playlist}: the claim on slot {int(run.slot or 0)} points at a missing run")
            return existing, False

    def get(self, run_id: str) -> PlaylistRun | None:
        raw = self.redis.get(keys.playlist_run(self.prefix, run_id))
        return PlaylistRun.model_validate_json(raw) if raw else None

    def apply(
        self,
        run_id: str,
        expect: Collection[RunState],
        mutate: Callable[[PlaylistRun], None] | None = None,
        to: RunState | None = None,
        *,
        token: int | None = None,
        check_in: float | None = None,
    ) -> PlaylistRun | None:
        """Mutate the run and/or move it to `to`, only if its state is in `expect` (and its
        check token is still `token`, when given). `check_in` moves the sweep's deadline.
        Returns the run as written, or None when it is missing or has moved on."""
        key = keys.playlist_run(self.prefix, run_id)

        def decide(raw: bytes | None) -> tuple[PlaylistRun, Callable[[optimistic.Writes], None]] | None:
            if raw is None:
                return None
            run = PlaylistRun.model_validate_json(raw)
            if run.state not in expect or (token is not None and run.check_token != token):
                return None
            if mutate is not None:
                mutate(run)
            now = time.time()
            if to is not None:
                run.state = to
            run.version += 1
            run.updated_at = now

            def write(pipe: optimistic.Writes) -> None:
                pipe.set(key, run.model_dump_json())
                if run.state.terminal:
                    pipe.zrem(keys.playlist_open(self.prefix), run_id)
                    retention.expire_run(pipe, self.prefix, run, self.retention)
                elif check_in is not None:
                    pipe.zadd(keys.playlist_open(self.prefix), {run_id: now + check_in})

            return run, write

        return optimistic.update(self.redis, key, decide)

    def recent(self, playlist: str | None = None, limit: int = 20) -> list[PlaylistRun]:
        ids = self.redis.zrevrange(keys.playlist_runs(self.prefix, playlist), 0, limit - 1)
        runs = (self.get(i.decode()) for i in ids)
        return [r for r in runs if r is not None]

    def prune_ended(self, now: float) -> int:
        """Drop the index entries of runs whose records expired; returns how many."""
        return retention.prune_runs(self.redis, self.prefix, self.retention, now)

    def overdue(self, now: float, limit: int = 200) -> list[str]:
        """Runs not ended whose sweep deadline has passed."""
        return [i.decode() for i in self.redis.zrangebyscore(keys.playlist_open(self.prefix), "-inf", now,
                                                             start=0, num=limit)]

    def try_sweep_round(self, seconds: float) -> bool:
        """A lease so one sweep runs per interval, even with two beats by mistake."""
        return bool(self.redis.set(keys.playlist_sweep_lock(self.prefix), "1", nx=True,
                                   px=max(1, int(seconds * 1000))))

    def check_in(self, run_id: str, seconds: float) -> None:
        """Push back an open run's sweep deadline (each check that finds it still open)."""
        self.redis.zadd(keys.playlist_open(self.prefix), {run_id: time.time() + seconds}, xx=True)
