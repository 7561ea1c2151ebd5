-- Drop compacted aggregates from Redis once their cold copy is listed in the cold tier's manifest.
-- KEYS[1] the read-model hash the documents are in, KEYS[2] the kept copies of trimmed entries, KEYS[3] the
-- set of compacted aggregates, then for each aggregate: its position list, its run-output stream, and its
-- index keys.
-- ARGV: for each aggregate: its id, the version the cold copy holds, how many index keys follow its two keys.
-- An aggregate whose version moved since it was copied (a late event) is left hot, whole; its cold copy
-- is then never read (reads look in Redis first). Returns the ids dropped.
local dropped = {}
local k = 4
local i = 1
while i <= #ARGV do
  local id, version, indexes = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local list, output = KEYS[k], KEYS[k + 1]
  if redis.call('LLEN', list) == version then
    local positions = redis.call('LRANGE', list, 0, -1)
    for _, position in ipairs(positions) do redis.call('HDEL', KEYS[2], position) end
    redis.call('DEL', list, output)
    redis.call('HDEL', KEYS[1], id)
    redis.call('SADD', KEYS[3], id)
    for j = 1, indexes do redis.call('ZREM', KEYS[k + 1 + j], id) end
    dropped[#dropped + 1] = id
  end
  k = k + 2 + indexes
  i = i + 3
end
return dropped
