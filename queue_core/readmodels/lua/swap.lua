-- Replace one read-model namespace with another in one step: readers never see half of each.
-- ARGV[1] the prefix of the rebuilt namespace's keys, ARGV[2] the prefix of the namespace it replaces;
-- ARGV[3] '1' if the maintenance marker (KEYS[1]) must be absent: a reader's rebuild after an upgrade, which must
-- not replace what an import, restore or rebuild that began meanwhile writes (returns -1, nothing replaced).
-- KEYS inside a script is fine here: an operator's rebuild, on a namespace of a few hundred keys.
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local replaced = redis.call('KEYS', ARGV[2] .. '*')
for _, key in ipairs(replaced) do redis.call('DEL', key) end
local rebuilt = redis.call('KEYS', ARGV[1] .. '*')
for _, key in ipairs(rebuilt) do
  redis.call('RENAME', key, ARGV[2] .. string.sub(key, #ARGV[1] + 1))
end
return #rebuilt
