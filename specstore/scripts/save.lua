-- save: overwrite the spec where it lives, compare-and-set on rev when one is given.
-- KEYS[1] spec key in the target store    KEYS[2] location key
-- ARGV    store, expected rev ('' = no check), doc, schema, project_id, user_id, now,
--         major version of the writer's schema
-- Reply   {'ok', new_rev} | {'not_found'} | {'wrong_store', home} | {'conflict', rev}
--         | {'incompatible', stored schema}   (never overwrite a newer major version)
--         | {'moving', cell}   (the api copy is frozen while a move to another backend runs)
local home = redis.call('GET', KEYS[2])
if not home then return {'not_found'} end
if home ~= ARGV[1] then return {'wrong_store', home} end
local stored = redis.call('HMGET', KEYS[1], 'rev', 'schema', 'moving_to')
local rev, schema = stored[1], stored[2]
if not rev then return {'not_found'} end
if stored[3] then return {'moving', stored[3]} end
if ARGV[2] ~= '' and rev ~= ARGV[2] then return {'conflict', rev} end
local major = schema and tonumber(string.match(schema, '/(%d+)%.%d+$'))
if major and major > tonumber(ARGV[8]) then return {'incompatible', schema} end
local new_rev = tonumber(rev) + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'rev', new_rev, 'schema', ARGV[4],
  'project_id', ARGV[5], 'user_id', ARGV[6], 'updated_at', ARGV[7])
return {'ok', new_rev}
