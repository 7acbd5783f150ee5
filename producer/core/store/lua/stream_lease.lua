-- Take or renew one open event stream's lease under its API key's cap (producer/api/key_caps.py).
-- KEYS[1]  the key's open streams (sorted set: lease id -> when the lease lapses;
--          producer/core/store/keys.py key_streams)
-- ARGV[1]  the lease id   ARGV[2]  the cap (most streams at once)   ARGV[3]  the lease, seconds
-- Returns 1 when the lease is held (taken, or renewed) until now + ARGV[3], 0 when the key's
-- live leases are at the cap. Lapsed leases (their API process died without closing them)
-- are dropped first, so they never count; time is the Redis server's, one clock for every
-- API process.
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], tostring(now + ttl), ARGV[1])
-- The set itself goes once its last lease lapses.
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
return 1
