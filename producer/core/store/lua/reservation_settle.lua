-- End a budget reservation: kept, or given back, exactly once.
-- KEYS[1]  the pending reservations (hash)   KEYS[2]  the day's spend it was taken from
-- ARGV[1]  the reservation's id   ARGV[2]  its price (micro-units)
-- ARGV[3]  "1" to give it back (the call was certainly not billed, or never made)
-- ARGV[4]  "1" when the intent committed it (the job store's write took it out of the hash)
-- A pending reservation is given back only by whoever takes it out of the hash (the run
-- that made it, or the watchdog), so it is never given back twice.
-- Returns 1 when the price was given back.
local pending = redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[3] == '1' and (pending == 1 or ARGV[4] == '1') then
  redis.call('DECRBY', KEYS[2], ARGV[2])
  return 1
end
return 0
