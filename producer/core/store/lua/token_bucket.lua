-- Take one token from a provider's shared rate bucket (workers/admission/limits.py take_token).
-- KEYS[1]  the bucket (hash: tokens, at)
-- ARGV[1]  the refill rate (tokens per second)   ARGV[2]  the burst (most tokens it holds)
-- Returns "0" when a token was taken, else the seconds until one will be there (a string:
-- Redis would truncate a Lua number to an integer). Time is the Redis server's, so every
-- worker shares one clock.
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
local at = tonumber(redis.call('HGET', KEYS[1], 'at'))
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- An idle bucket is full again after burst/rate seconds: no need to keep it longer.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
