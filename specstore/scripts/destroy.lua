-- destroy: delete the spec where it lives and its location record.
-- KEYS[1] spec key in the target store    KEYS[2] location key
-- ARGV    store, expected rev ('' = no check)
-- Reply   {'ok', rev} | {'not_found'} | {'wrong_store', home} | {'conflict', rev}
local home = redis.call('GET', KEYS[2])
if not home then return {'not_found'} end
if home ~= ARGV[1] then return {'wrong_store', home} end
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return {'not_found'} end
if ARGV[2] ~= '' and rev ~= ARGV[2] then return {'conflict', rev} end
redis.call('DEL', KEYS[1], KEYS[2])
return {'ok', rev}
