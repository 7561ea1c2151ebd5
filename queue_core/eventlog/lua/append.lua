-- Append a batch of events atomically, with an expected version per aggregate.
-- KEYS[1] the log stream, KEYS[2] the store's epoch, KEYS[3..] the aggregates' own streams.
-- ARGV[1] the epoch the writer knows ('' when it knows none yet), ARGV[2] number of aggregates n,
-- ARGV[3..n+2] their expected versions, then for each event: aggregate index (1-based, among KEYS[3..]),
-- event id, envelope.
-- Every check runs before the first write but one, whose failure undoes the batch's entries (below).
-- Each log entry carries 'h', the SHA-1 of the previous entry's 'h' followed by its own envelope:
-- a chain that an edited, removed or reordered event breaks (queue_core/chain.py walks it).
-- The epoch is the 'h' of the log's first entry, set with it: a writer that knew one refuses a store
-- without it (Redis came back empty) or with another (another store), so no log silently starts afresh.
local n = tonumber(ARGV[2])
local first = n + 3
local count = (#ARGV - n - 2) / 3
if count < 1 or count ~= math.floor(count) then
  return redis.error_reply('APPEND_FAILED malformed batch')
end
-- KEYS[n+3] (after the aggregates) the maintenance marker: while an import, restore or rebuild holds it,
-- nothing is appended (queue_core/eventlog/maintenance_mode.py).
local marker = #KEYS > n + 2 and redis.call('GET', KEYS[n + 3])
if marker then return redis.error_reply('MAINTENANCE ' .. marker) end
local epoch = redis.call('GET', KEYS[2])
if ARGV[1] ~= '' and epoch ~= ARGV[1] then
  return redis.error_reply('STORE_EPOCH ' .. (epoch or ''))
end
-- Reads that also check each key's type, so a wrong type fails here, before any write.
redis.call('XLEN', KEYS[1])
-- A retried batch whose first delivery was written finds its own events, in order, right after each
-- aggregate's expected version: answer with their positions (DUP) instead of a conflict. Only a
-- conflict pays for this check; no per-event id index is kept.
local function already_appended()
  local positions = {'DUP'}
  local stored = {}
  for a = 1, n do
    local after = redis.call('XLEN', KEYS[2 + a]) - tonumber(ARGV[2 + a])
    local newest = after > 0 and redis.call('XREVRANGE', KEYS[2 + a], '+', '-', 'COUNT', after) or {}
    stored[a] = {entries = newest, next = #newest}
  end
  for i = 0, count - 1 do
    local slot = stored[tonumber(ARGV[first + 3 * i])]
    local entry = slot.entries[slot.next]
    if entry == nil or cjson.decode(entry[2][2])['id'] ~= ARGV[first + 3 * i + 1] then
      if i > 0 then return redis.error_reply('APPEND_FAILED part of the batch is already appended') end
      return nil
    end
    slot.next = slot.next - 1
    positions[#positions + 1] = entry[1]
  end
  return positions
end
for a = 1, n do
  local actual = redis.call('XLEN', KEYS[2 + a])
  if actual ~= tonumber(ARGV[2 + a]) then
    if actual > tonumber(ARGV[2 + a]) then
      local dup = already_appended()
      if dup then return dup end  -- the positions, or the error for a batch appended only in part
    end
    return {'CONFLICT', a, actual}
  end
end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local chain = ''
local genesis = #top == 0
if genesis and epoch then
  return redis.error_reply('STORE_EPOCH ' .. epoch .. ' log-missing')
end
if not genesis then
  local fields = top[1][2]
  for j = 1, #fields, 2 do
    if fields[j] == 'h' then chain = fields[j + 1] end
  end
end
local result = {'OK'}
local first_hash = nil
-- An aggregate stream ahead of the log (hand-edited or badly restored keys) makes its XADD fail
-- after the log's succeeded: undo this batch's entries then, instead of checking before every append.
local written = {}
for i = 0, count - 1 do
  local agg_key = KEYS[2 + tonumber(ARGV[first + 3 * i])]
  local envelope = ARGV[first + 3 * i + 2]
  chain = redis.sha1hex(chain .. envelope)
  local position = redis.call('XADD', KEYS[1], '*', 'e', envelope, 'h', chain)
  first_hash = first_hash or chain
  written[#written + 1] = {KEYS[1], position}
  local added = redis.pcall('XADD', agg_key, position, 'e', envelope)
  if type(added) == 'table' and added.err then
    for _, entry in ipairs(written) do redis.call('XDEL', entry[1], entry[2]) end
    return redis.error_reply('APPEND_FAILED aggregate stream is ahead of the log')
  end
  written[#written + 1] = {agg_key, position}
  result[#result + 1] = position
end
if genesis then redis.call('SET', KEYS[2], first_hash) end
return result
