-- Admit a job to an in-flight set (a provider's or an API key's) if there is room (or it is
-- already in); when there is none, park it in the set's park queue in the same step.
-- KEYS[1]  the in-flight set (producer/core/store/keys.py in_flight / key_in_flight)
-- KEYS[2]  the job record (JSON)
-- KEYS[3]  the set's park queue (keys.py parked; producer/core/store/parking.py)
-- ARGV[1]  job id   ARGV[2]  the limit   ARGV[3]  now (score)   ARGV[4]  the job's place in
--          the park queue (its creation time: oldest first)
-- ARGV[5..]  the states a job may be admitted in (workers/admission/limits.py ADMISSIBLE_STATES)
-- Returns {1 admitted | 0 no room: parked | -1 the job is no longer about to submit, members}.
-- Checking the state here, atomically, is what keeps a job cancelled a moment ago from
-- being added after the job store took it out. Parking here, in the step that found no
-- room, is what keeps a place freed a moment later from waking nobody: the store's wake
-- after that write finds the job in the queue.
local raw = redis.call('GET', KEYS[2])
if not raw then
  return {-1, 0}
end
local state = cjson.decode(raw)['state']
local admissible = false
for i = 5, #ARGV do
  if state == ARGV[i] then
    admissible = true
  end
end
if not admissible then
  return {-1, 0}
end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {1, redis.call('ZCARD', KEYS[1])}
end
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {1, count + 1}
end
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[1])
return {0, count}
