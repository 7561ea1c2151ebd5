-- Append a batch of events atomically, with an expected version per aggregate.
-- KEYS[1] the log stream, KEYS[2] the event-id hash, KEYS[3..] the aggregates' own streams.
-- ARGV[1] number of aggregates n, ARGV[2..n+1] their expected versions,
-- then for each event: aggregate index (1-based, among KEYS[3..]), event id, envelope.
-- Every check runs before the first write: Lua has no rollback.
local n = tonumber(ARGV[1])
local first = n + 2
local count = (#ARGV - n - 1) / 3
if count < 1 or count ~= math.floor(count) then
  return redis.error_reply('APPEND_FAILED malformed batch')
end
-- Reads that also check each key's type, so a wrong type fails here, before any write.
redis.call('XLEN', KEYS[1])
local seen = 0
for i = 0, count - 1 do
  local event_id = ARGV[first + 3 * i + 1]
  if redis.call('HEXISTS', KEYS[2], event_id) == 1 then seen = seen + 1 end
  for j = 0, i - 1 do
    if ARGV[first + 3 * j + 1] == event_id then
      return redis.error_reply('APPEND_FAILED duplicate event id in batch')
    end
  end
end
if seen == count then
  local positions = {'DUP'}
  for i = 0, count - 1 do
    positions[#positions + 1] = redis.call('HGET', KEYS[2], ARGV[first + 3 * i + 1])
  end
  return positions
elseif seen > 0 then
  return redis.error_reply('APPEND_FAILED part of the batch is already appended')
end
-- Each aggregate stream's newest id must be behind the log's newest, or its XADD below would
-- fail after the log's had succeeded (only hand-edited or badly restored keys get here).
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local log_top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
for a = 1, n do
  local actual = redis.call('XLEN', KEYS[2 + a])
  if actual ~= tonumber(ARGV[1 + a]) then
    return {'CONFLICT', a, actual}
  end
  if actual > 0 then
    local top = redis.call('XREVRANGE', KEYS[2 + a], '+', '-', 'COUNT', 1)
    if #log_top == 0 then
      return redis.error_reply('APPEND_FAILED aggregate stream exists but the log is empty')
    end
    local ams, aseq = id_parts(top[1][1])
    local lms, lseq = id_parts(log_top[1][1])
    if ams > lms or (ams == lms and aseq > lseq) then
      return redis.error_reply('APPEND_FAILED aggregate stream is ahead of the log')
    end
  end
end
local result = {'OK'}
for i = 0, count - 1 do
  local agg_key = KEYS[2 + tonumber(ARGV[first + 3 * i])]
  local event_id = ARGV[first + 3 * i + 1]
  local envelope = ARGV[first + 3 * i + 2]
  local position = redis.call('XADD', KEYS[1], '*', 'e', envelope)
  redis.call('XADD', agg_key, position, 'e', envelope)
  redis.call('HSET', KEYS[2], event_id, position)
  result[#result + 1] = position
end
return result
