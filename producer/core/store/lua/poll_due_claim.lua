-- Claim one batch of a batch-polled provider's due jobs (producer/core/store/poll_due.py).
-- Claims that lapsed go back to the due set first, due at once. Then nothing, unless some
-- job is due by now; else every job due by now + window (the longest overdue first), up to
-- size, moved in flight until now + lease.
-- KEYS[1]  the due set   KEYS[2]  the in-flight set
-- ARGV[1]  now   ARGV[2]  window (s)   ARGV[3]  size   ARGV[4]  lease (s)
-- Returns the claimed job ids (an empty list when nothing is due).
local due, inflight = KEYS[1], KEYS[2]
local now, window, size, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for _, job in ipairs(redis.call('ZRANGEBYSCORE', inflight, '-inf', now)) do
  redis.call('ZREM', inflight, job)
  redis.call('ZADD', due, now, job)
end
local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
if #first == 0 or tonumber(first[2]) > now then
  return {}
end
local claimed = redis.call('ZRANGEBYSCORE', due, '-inf', now + window, 'LIMIT', 0, size)
for _, job in ipairs(claimed) do
  redis.call('ZREM', due, job)
  redis.call('ZADD', inflight, now + lease, job)
end
return claimed
