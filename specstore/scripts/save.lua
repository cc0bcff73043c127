-- save: overwrite the spec where it lives, compare-and-set on rev when one is given.
-- KEYS[1] spec key in the target store    KEYS[2] location record (on the same backend)
-- ARGV    store, expected rev ('' = no check), doc, schema, project_id, user_id, now,
--         major version of the writer's schema
-- Reply   {'ok', new_rev} | {'not_found'} | {'wrong_store', home} | {'conflict', rev}
--         | {'incompatible', stored schema}   (never overwrite a newer major version)
--         | {'moving', cell}   (the copy is frozen while a move away from it runs)
--         | {'foreign', what}
if not lives_in(KEYS[2], ARGV[1]) then
  local loc = read_loc(KEYS[2])
  if not loc then return FOREIGN end
  if not loc.store then return not_here(loc) end
  if loc.store ~= ARGV[1] then return {'wrong_store', loc.store} end
  if loc.move_id and loc.move_from == ARGV[1] then return {'moving', loc.move_to} end
end
local stored = redis.pcall('HMGET', KEYS[1], 'rev', 'schema')
if stored.err then return {'foreign', 'spec record'} end
local rev, schema = stored[1], stored[2]
if not rev then return {'not_found'} end
local rev_number = int_of(rev)
if not rev_number then return {'foreign', 'spec record'} end
if ARGV[2] ~= '' and rev ~= ARGV[2] then return {'conflict', rev} end
if schema ~= ARGV[4] then  -- (a document of the writer's own schema and version needs no check)
  local major = schema and tonumber(string.match(schema, '/(%d+)%.%d+$'))
  if major and major > tonumber(ARGV[8]) then return {'incompatible', schema} end
end
local new_rev = rev_number + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'rev', new_rev, 'schema', ARGV[4],
  'project_id', ARGV[5], 'user_id', ARGV[6], 'updated_at', ARGV[7])
return {'ok', new_rev}
