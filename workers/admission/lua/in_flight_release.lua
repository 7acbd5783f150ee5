-- Give back a place admitted for a job that will wait after all (rate or budget), unless
-- the job has meanwhile really gone in flight (another delivery of its submit moved it).
-- KEYS[1]  the provider's in-flight set   KEYS[2]  the job record (JSON)
-- ARGV[1]  job id
-- Returns 1 when the place was given back.
local raw = redis.call('GET', KEYS[2])
if raw then
  local state = cjson.decode(raw)['state']
  if state == 'SUBMITTING' or state == 'SUBMITTED' or state == 'GENERATING' then
    return 0
  end
end
return redis.call('ZREM', KEYS[1], ARGV[1])
