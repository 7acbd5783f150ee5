"""The optimistic transaction both record stores use: WATCH, read, decide, MULTI/EXEC.

If the key changes between the read and the write, Redis refuses the EXEC and the whole
decision is taken again on the fresh value; nothing is ever written from a stale read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
from redis.client import Pipeline

T = TypeVar("T")
# Given the key's current value (None when missing): None to refuse, or the result and a
# function that queues the writes on the transaction.
Decision = Callable[[bytes | None], tuple[T, Callable[[Pipeline], None]] | None]


def update(client: redis.Redis, key: str, decide: Decision[T]) -> T | None:
    while True:
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                decided = decide(pipe.get(key))
                if decided is None:
                    return None
                result, write = decided
                pipe.multi()
                write(pipe)
                pipe.execute()
                return result
            except redis.WatchError:
                continue
