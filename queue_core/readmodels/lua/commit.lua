-- Move a read-model namespace forward: write its documents and indexes and its checkpoint together,
-- only if the checkpoint is still the one the folder started from (another process may have won), and, for the
-- live namespace, only while no import, restore or rebuild holds the maintenance marker: that operation writes
-- the whole read models itself, and a fold of a half-loaded log committed between its drop and its write
-- would leave index entries that its write does not remove.
-- KEYS[1] the checkpoint; KEYS[2] the maintenance marker; KEYS[3..] the hashes and sorted sets touched.
-- ARGV[1] expected checkpoint ('' for none), ARGV[2] new checkpoint, ARGV[3] '1' if the marker must be absent,
-- then ops of 4 values:
--   'H' key-index field value   (HSET)      'D' key-index field ''   (HDEL)
--   'Z' key-index member score  (ZADD)      'R' key-index member ''  (ZREM)
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  return {'MAINTENANCE'}
end
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return {'CONFLICT', current}
end
for i = 4, #ARGV, 4 do
  local op, key, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  if op == 'H' then redis.call('HSET', key, a, b)
  elseif op == 'D' then redis.call('HDEL', key, a)
  elseif op == 'Z' then redis.call('ZADD', key, b, a)
  elseif op == 'R' then redis.call('ZREM', key, a)
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return {'OK'}
