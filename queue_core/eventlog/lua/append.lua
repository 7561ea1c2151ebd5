-- Append a batch of events atomically, with an expected version per aggregate.
-- KEYS[1] the log stream, KEYS[2] the store's epoch, KEYS[3..] the aggregates' position lists.
-- ARGV[1] the epoch the writer knows ('' when it knows none yet), ARGV[2] number of aggregates n,
-- ARGV[3..n+2] their expected versions, then for each event: aggregate index (1-based, among KEYS[3..]),
-- event id, envelope.
-- An aggregate's position list holds the log positions of its events, oldest first: its length is its
-- version, and its events are read from the log at those positions (a list costs a few hundred bytes;
-- a stream per aggregate cost over 4 KB, almost all of it fixed).
-- Every check runs before the first write, so a refused batch writes nothing.
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
local function envelope_at(position)
  local entry = redis.call('XRANGE', KEYS[1], position, position)[1]
  if entry == nil then return nil end
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'e' then return fields[j + 1] end
  end
  return nil
end
-- A retried batch whose first delivery was written finds its own events, in order, right after each
-- aggregate's expected version: answer with their positions (DUP) instead of a conflict. Only a
-- conflict pays for this check; no per-event id index is kept.
local function already_appended()
  local positions = {'DUP'}
  local stored = {}
  for a = 1, n do
    local after = redis.call('LLEN', KEYS[2 + a]) - tonumber(ARGV[2 + a])
    stored[a] = {positions = after > 0 and redis.call('LRANGE', KEYS[2 + a], -after, -1) or {}, next = 1}
  end
  for i = 0, count - 1 do
    local slot = stored[tonumber(ARGV[first + 3 * i])]
    local position = slot.positions[slot.next]
    local envelope = position and envelope_at(position)
    if envelope == nil or cjson.decode(envelope)['id'] ~= ARGV[first + 3 * i + 1] then
      if i > 0 then return redis.error_reply('APPEND_FAILED part of the batch is already appended') end
      return nil
    end
    slot.next = slot.next + 1
    positions[#positions + 1] = position
  end
  return positions
end
for a = 1, n do
  local actual = redis.call('LLEN', KEYS[2 + a])
  if actual ~= tonumber(ARGV[2 + a]) then
    if actual > tonumber(ARGV[2 + a]) then
      local dup = already_appended()
      if dup then
        -- A write of its own (the epoch, unchanged), so a WAIT after this reply covers the batch found written.
        if epoch and dup[1] == 'DUP' then redis.call('SET', KEYS[2], epoch) end
        return dup  -- the positions, or the error for a batch appended only in part
      end
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
for i = 0, count - 1 do
  local envelope = ARGV[first + 3 * i + 2]
  chain = redis.sha1hex(chain .. envelope)
  local position = redis.call('XADD', KEYS[1], '*', 'e', envelope, 'h', chain)
  first_hash = first_hash or chain
  redis.call('RPUSH', KEYS[2 + tonumber(ARGV[first + 3 * i])], position)
  result[#result + 1] = position
end
if genesis then redis.call('SET', KEYS[2], first_hash) end
return result
