-- set_location: point the location record at a store ('' = delete it), only if it still
-- holds the value repair saw ('' = absent).
-- KEYS[1] location key    ARGV seen value, new value
-- Reply   {'ok', 'set'} | {'ok', 'changed'}
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return {'ok', 'changed'} end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return {'ok', 'set'}
