-- Join a job to a batch-polled provider's due set as due now, unless it is already due at
-- some time or in flight, and take the drainer's role if nobody holds it
-- (producer/core/store/poll_due.py).
-- KEYS[1]  the due set   KEYS[2]  the in-flight set   KEYS[3]  the drainer (string)
-- ARGV[1]  job id   ARGV[2]  now   ARGV[3]  the caller's drainer token   ARGV[4]  drainer ttl (ms)
-- Returns 1 when the caller has just become the provider's drainer (it must start one), else 0.
local due, inflight, drainer = KEYS[1], KEYS[2], KEYS[3]
local job, now = ARGV[1], tonumber(ARGV[2])
if not redis.call('ZSCORE', due, job) and not redis.call('ZSCORE', inflight, job) then
  redis.call('ZADD', due, now, job)
end
if redis.call('SET', drainer, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return 1
end
return 0
