-- Bring one aggregate from the layout before position lists to today's: its stream (a copy of its
-- events) becomes the list of their positions. KEYS[1] the old stream, KEYS[2] the position list.
-- Atomic, and a no-op for an aggregate already moved, so a migration that stopped midway is resumed.
if redis.call('TYPE', KEYS[1])['ok'] ~= 'stream' then return 0 end
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
redis.call('DEL', KEYS[2])
for _, entry in ipairs(entries) do redis.call('RPUSH', KEYS[2], entry[1]) end
redis.call('DEL', KEYS[1])
return #entries
