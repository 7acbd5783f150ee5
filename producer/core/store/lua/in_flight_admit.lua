-- Admit a job to its provider's in-flight set if there is room (or it is already in).
-- KEYS[1]  the provider's in-flight set (producer/core/store/keys.py in_flight)
-- KEYS[2]  the job record (JSON)
-- ARGV[1]  job id   ARGV[2]  the limit   ARGV[3]  now (score)
-- ARGV[4..]  the states a job may be admitted in (workers/admission/limits.py ADMISSIBLE_STATES)
-- Returns {1 admitted | 0 no room | -1 the job is no longer about to submit, members}.
-- Checking the state here, atomically, is what keeps a job cancelled a moment ago from
-- being added after the job store took it out.
local raw = redis.call('GET', KEYS[2])
if not raw then
  return {-1, 0}
end
local state = cjson.decode(raw)['state']
local admissible = false
for i = 4, #ARGV do
  if state == ARGV[i] then
    admissible = true
  end
end
if not admissible then
  return {-1, 0}
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {1, redis.call('ZCARD', KEYS[1])}
end
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return {1, count + 1}
end
return {0, count}
