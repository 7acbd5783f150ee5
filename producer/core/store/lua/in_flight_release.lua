-- Give back a place admitted for a job that will wait after all (rate or budget), unless
-- the job has meanwhile really gone in flight (another delivery of its submit moved it).
-- KEYS[1]  the provider's in-flight set   KEYS[2]  the job record (JSON)
-- ARGV[1]  job id   ARGV[2..]  the in-flight states (job_record.py IN_FLIGHT_STATES)
-- Returns 1 when the place was given back.
local raw = redis.call('GET', KEYS[2])
if raw then
  local state = cjson.decode(raw)['state']
  for i = 2, #ARGV do
    if state == ARGV[i] then
      return 0
    end
  end
end
return redis.call('ZREM', KEYS[1], ARGV[1])
