-- create: store a new spec in the target store and record its home.
-- KEYS[1] spec key in the target store    KEYS[2] location key
-- ARGV    store, doc, schema, project_id, user_id, now
-- Reply   {'ok', 1} | {'exists', home}
local home = redis.call('GET', KEYS[2])
if home then return {'exists', home} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', ARGV[1]} end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'rev', 1, 'schema', ARGV[3],
  'project_id', ARGV[4], 'user_id', ARGV[5], 'created_at', ARGV[6], 'updated_at', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1])
return {'ok', 1}
