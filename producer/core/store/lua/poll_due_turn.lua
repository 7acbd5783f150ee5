-- The drainer's turn: renew its lease while jobs remain, step down when none is left
-- (producer/core/store/poll_due.py).
-- KEYS[1]  the due set   KEYS[2]  the in-flight set   KEYS[3]  the drainer (string)
-- ARGV[1]  the drainer's token   ARGV[2]  its ttl (ms)
-- Returns 2 = still the drainer and jobs remain (lease renewed), 1 = nothing is left, so it
-- stepped down, 0 = another drainer has taken over.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return 0
end
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[3])
  return 1
end
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 2
