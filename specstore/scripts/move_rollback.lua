-- move_rollback: give up a half-done move: the api copy stays the home and is writable again.
-- KEYS[1] api spec key
-- ARGV    cell
-- Reply   {'ok', 'rolled_back'|'not_marked'}
local moving = redis.call('HGET', KEYS[1], 'moving_to')
if moving ~= ARGV[1] then return {'ok', 'not_marked'} end
redis.call('HDEL', KEYS[1], 'moving_to', 'moving_since')
return {'ok', 'rolled_back'}
