-- Reserve the price of one paid call against a provider's daily budget, atomically, so
-- concurrent submits cannot overshoot it, and note the reservation as pending.
-- KEYS[1]  the day's spend (integer micro-units; producer/core/store/keys.py spend)
-- KEYS[2]  the pending reservations (hash; producer/core/store/keys.py reservations)
-- ARGV[1]  price (micro-units)   ARGV[2]  budget (micro-units; -1 = unlimited)
-- ARGV[3]  seconds to keep the day's key
-- ARGV[4]  the reservation's id   ARGV[5]  its entry (JSON: job, key, micros, version)
-- Returns {reserved (1|0), spend after (or as it stands, when refused)}.
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local price = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
if budget >= 0 and spent + price > budget then
  return {0, spent}
end
spent = redis.call('INCRBY', KEYS[1], price)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
return {1, spent}
