-- move_seize: resume/repair take over an open move to settle it, only if its lease expired
-- (by this server's clock) -- checked here, atomically, not from an earlier scan. From then on
-- no retried request may join the move; the seizer has a fresh lease to finish settling.
-- KEYS[1] location record
-- ARGV    move id, lease in ms
-- Reply   {'ok', 'seized'} | {'running'} (within its lease) | {'fenced', home} | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.move_id ~= ARGV[1] then return {'fenced', loc.store or ''} end
local now = now_ms()
if (int_of(loc.lease_until) or 0) >= now then return {'running'} end
redis.call('HSET', KEYS[1], 'giving_up', '1', 'lease_until', now + tonumber(ARGV[2]))
return {'ok', 'seized'}
