-- Set when a job's next fetch is due; it is no longer in flight (producer/core/store/poll_due.py).
-- KEYS[1]  the due set   KEYS[2]  the in-flight set
-- ARGV[1]  job id   ARGV[2]  when its next fetch is due
-- Returns nothing (nil).
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
