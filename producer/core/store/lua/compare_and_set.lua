-- Compare-and-set a record: run the decided writes only if the record is still the one the
-- decision was made on (producer/core/store/optimistic.py).
-- KEYS[1]  the record   KEYS[2..]  every other key the writes touch (Redis Cluster wants them)
-- ARGV[1]  sha1 of the record as read ("" when it was missing)
-- ARGV[2]  the writes: a JSON list of Redis commands, all arguments strings
-- Returns 1 when the writes were made, 0 when the record had changed (nothing written).
local current = redis.call('GET', KEYS[1])
local seen = current and redis.sha1hex(current) or ''
if seen ~= ARGV[1] then return 0 end
for _, command in ipairs(cjson.decode(ARGV[2])) do
  redis.call(unpack(command))
end
return 1
