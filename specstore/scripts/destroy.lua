-- destroy: delete the spec where it lives and its location record.
-- KEYS[1] spec key in the target store    KEYS[2] location key    KEYS[3] tombstone key
-- ARGV    store, expected rev ('' = no check), tombstone lifetime in seconds
-- Reply   {'ok', rev} | {'not_found'} | {'wrong_store', home} | {'conflict', rev}
--         | {'moving', cell}
local home = redis.call('GET', KEYS[2])
if not home then return {'not_found'} end
if home ~= ARGV[1] then return {'wrong_store', home} end
local stored = redis.call('HMGET', KEYS[1], 'rev', 'moving_to')
local rev = stored[1]
if not rev then return {'not_found'} end
if stored[2] then return {'moving', stored[2]} end
if ARGV[2] ~= '' and rev ~= ARGV[2] then return {'conflict', rev} end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], rev, 'EX', ARGV[3])
return {'ok', rev}
