-- Renew or release a lease, only while it is still this holder's (another may hold it once it expired).
-- KEYS[1] the lease, ARGV[1] its holder, ARGV[2] the new time to live in ms (0: release it).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
