-- Move a read-model namespace forward: write its documents and indexes and its checkpoint together,
-- only if the checkpoint is still the one the folder started from (another process may have won).
-- KEYS[1] the checkpoint; KEYS[2..] the hashes and sorted sets touched.
-- ARGV[1] expected checkpoint ('' for none), ARGV[2] new checkpoint, then ops of 4 values:
--   'H' key-index field value   (HSET)      'D' key-index field ''   (HDEL)
--   'Z' key-index member score  (ZADD)      'R' key-index member ''  (ZREM)
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return {'CONFLICT', current}
end
for i = 3, #ARGV, 4 do
  local op, key, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  if op == 'H' then redis.call('HSET', key, a, b)
  elseif op == 'D' then redis.call('HDEL', key, a)
  elseif op == 'Z' then redis.call('ZADD', key, b, a)
  elseif op == 'R' then redis.call('ZREM', key, a)
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return {'OK'}
