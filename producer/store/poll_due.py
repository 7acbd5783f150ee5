"""The due set of a batch-polled provider: which jobs are due a fetch, and when.

One sorted set per provider (`keys.poll_due`), job id -> the time its next fetch is due.
A poll claims, in one Lua call, its own job and every other job due within the batch
window, up to the batch size; claiming pushes each claimed score `lease` seconds ahead,
so a worker that dies mid-batch leaves its jobs due again shortly, never lost. After the
fetch each claimed job is given its next due time (or dropped once its polling ends).
"""

from __future__ import annotations

from typing import Any

# KEYS[1] the due set; ARGV: job id, now, window, batch size, lease.
# Returns {} when the job is not due yet (its score, as text, is the second element of
# {"wait", score}), else {"claimed", id1, id2, ...} with the job first.
_CLAIM = """
local key, job = KEYS[1], ARGV[1]
local now, window, size, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local score = tonumber(redis.call('ZSCORE', key, job))
if score and score > now then
  return {'wait', tostring(score)}
end
local claimed = {job}
local due = redis.call('ZRANGEBYSCORE', key, '-inf', now + window, 'LIMIT', 0, size)
for _, other in ipairs(due) do
  if other ~= job and #claimed < size then
    claimed[#claimed + 1] = other
  end
end
for _, id in ipairs(claimed) do
  redis.call('ZADD', key, now + lease, id)
end
table.insert(claimed, 1, 'claimed')
return claimed
"""


def claim(redis: Any, key: str, job_id: str, now: float, window: float, size: int,
          lease: float) -> tuple[list[str], float | None]:
    """(claimed job ids, job first; None) or ([], the time `job_id` is next due)."""
    reply = redis.eval(_CLAIM, 1, key, job_id, repr(now), repr(window), str(size), repr(lease))
    kind, *rest = [x.decode() if isinstance(x, bytes) else str(x) for x in reply]
    if kind == "wait":
        return [], float(rest[0])
    return rest, None


def schedule(redis: Any, key: str, job_id: str, at: float) -> None:
    redis.zadd(key, {job_id: at})


def drop(redis: Any, key: str, job_id: str) -> None:
    redis.zrem(key, job_id)
