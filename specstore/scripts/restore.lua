-- restore: write a whole exported record (doc, rev, timestamps kept), for import.
-- KEYS[1] spec key in the target store    KEYS[2] location key
-- ARGV    store, doc, rev, schema, project_id, user_id, created_at, updated_at,
--         overwrite ('1' = replace a spec already stored in the same store)
-- Reply   {'ok', 'created'|'replaced'|'unchanged'} | {'exists', home}
local home = redis.call('GET', KEYS[2])
if home == ARGV[1] then
  local stored = redis.call('HMGET', KEYS[1], 'doc', 'rev')
  if stored[1] == ARGV[2] and stored[2] == ARGV[3] then return {'ok', 'unchanged'} end
end
if home and (home ~= ARGV[1] or ARGV[9] ~= '1') then return {'exists', home} end
if not home and redis.call('EXISTS', KEYS[1]) == 1 and ARGV[9] ~= '1' then
  return {'exists', ARGV[1]}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'rev', ARGV[3], 'schema', ARGV[4],
  'project_id', ARGV[5], 'user_id', ARGV[6], 'created_at', ARGV[7], 'updated_at', ARGV[8])
redis.call('SET', KEYS[2], ARGV[1])
if home then return {'ok', 'replaced'} end
return {'ok', 'created'}
