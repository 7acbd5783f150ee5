-- Admit one request of an API key at the API's edge, in one round trip: the key's record,
-- whether it may call the route, and a token of its request rate (producer/api/key_caps.py).
-- KEYS[1]  the key's record (JSON, producer/core/store/api_keys.py)
-- KEYS[2]  the key's request-rate bucket (hash: tokens, at; keys.py key_rate)
-- ARGV[1]  the scope the route needs ("admin" holds every scope)
-- ARGV[2]  the fleet's request rate (SONGQUEUE_KEY_REQUEST_RATE), for a key without its own
-- ARGV[3]  the burst, in seconds of the rate (SONGQUEUE_KEY_REQUEST_BURST)
-- Returns {} for no such key; else {record, verdict}: verdict "revoked", "forbidden" (the key
-- lacks the scope), or the seconds until a token is there ("0": a token was taken; a string,
-- as token_bucket.lua returns it). A revoked or forbidden key takes no token.
local raw = redis.call('GET', KEYS[1])
if not raw then
  return {}
end
local key = cjson.decode(raw)
if key.revoked_at ~= cjson.null and key.revoked_at ~= nil then
  return {raw, 'revoked'}
end
local allowed = false
for _, scope in ipairs(key.scopes or {}) do
  if scope == ARGV[1] or scope == 'admin' then
    allowed = true
  end
end
if not allowed then
  return {raw, 'forbidden'}
end
local rate = tonumber(ARGV[2])
if key.request_rate ~= cjson.null and key.request_rate ~= nil then
  rate = tonumber(key.request_rate)
end
local burst = math.max(1, rate * tonumber(ARGV[3]))
-- The token bucket of token_bucket.lua on KEYS[2], the same arithmetic: one key's bucket is
-- taken by this script only, so the two cannot drift apart on it.
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local tokens = tonumber(redis.call('HGET', KEYS[2], 'tokens'))
local at = tonumber(redis.call('HGET', KEYS[2], 'at'))
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
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[2], math.ceil(burst / rate * 1000) + 1000)
return {raw, tostring(wait)}
