"""The compare-and-set both record stores use: read, decide, then write in one Lua script
only if the record is still the one that was read.

A transition used to be WATCH, GET, MULTI/EXEC: three round trips. Now it is a GET and
one EVALSHA (producer/core/store/lua/compare_and_set.lua), or the EVALSHA alone when the
caller still has the bytes it last read or wrote (`seed`): the script compares the record's
sha1 with the sha1 of the bytes the decision was made on and, only if they match, runs the
decided writes (the record, its indexes, expiries) atomically. If the record changed in between, nothing is written and the
decision is taken again on the fresh value; nothing is ever written from a stale read.

Every key a script touches is passed in KEYS, as Redis Cluster requires; on Cluster they
must also share a hash slot (docs/architecture.md, "Redis keys").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TypeVar

import redis

from producer.core.store import scripts

T = TypeVar("T")


class Writes:
    """The writes a decision makes, recorded in order and sent as one script call. The
    methods are the few Redis commands the stores need, spelled as redis-py spells them."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.keys: dict[str, None] = {}

    def _add(self, *command: str) -> None:
        self.commands.append(list(command))
        self.keys[command[1]] = None

    def set(self, key: str, value: str) -> None:
        self._add("SET", key, value)

    def delete(self, key: str) -> None:
        self._add("DEL", key)

    def zadd(self, key: str, mapping: Mapping[str, float], nx: bool = False, xx: bool = False) -> None:
        flags = ["NX"] if nx else ["XX"] if xx else []
        for member, score in mapping.items():
            self._add("ZADD", key, *flags, repr(float(score)), member)

    def zrem(self, key: str, *members: str) -> None:
        if members:
            self._add("ZREM", key, *members)

    def hdel(self, key: str, field: str) -> None:
        self._add("HDEL", key, field)

    def decrby(self, key: str, amount: int) -> None:
        self._add("DECRBY", key, str(int(amount)))

    def hincrby(self, key: str, field: str, amount: int = 1) -> None:
        self._add("HINCRBY", key, field, str(int(amount)))

    def hincrbyfloat(self, key: str, field: str, amount: float) -> None:
        self._add("HINCRBYFLOAT", key, field, repr(float(amount)))

    def expireat(self, key: str, when: int) -> None:
        self._add("EXPIREAT", key, str(int(when)))

    def persist(self, key: str) -> None:
        self._add("PERSIST", key)


# Given the key's current value (None when missing): None to refuse, or the result and a
# function that records the writes.
Decision = Callable[[bytes | None], tuple[T, Callable[[Writes], None]] | None]


def update(client: redis.Redis, key: str, decide: Decision[T], seed: bytes | None = None) -> T | None:
    """Decide on the record and write the decision if the record is still what it was decided on.

    `seed`: the record's bytes as this process last read or wrote them. The first decision
    is made on them instead of on a GET; the script's sha1 check is the same, so a stale
    seed costs a refused script and a fresh read, never a write. A refusal (or an error)
    decided on the seed is only taken once a fresh read shows the same bytes; it is then
    not decided a second time.
    """
    script = scripts.script(client, "compare_and_set")  # producer/core/store/lua/compare_and_set.lua
    raw, seeded = (seed, True) if seed is not None else (client.get(key), False)
    while True:
        try:
            decided = decide(raw)
        except Exception:
            if seeded and (fresh := client.get(key)) != raw:
                raw, seeded = fresh, False
                continue
            raise
        if decided is None:
            if seeded and (fresh := client.get(key)) != raw:
                raw, seeded = fresh, False
                continue
            return None
        result, write = decided
        writes = Writes()
        write(writes)
        seen = hashlib.sha1(raw).hexdigest() if raw is not None else ""  # noqa: S324 - a change detector
        if script(keys=[key, *(k for k in writes.keys if k != key)], args=[seen, json.dumps(writes.commands)]):
            return result
        raw, seeded = client.get(key), False  # changed since it was read
