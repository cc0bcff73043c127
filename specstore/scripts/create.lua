-- create: store a new spec in the target store and record its home.
-- KEYS[1] spec key in the target store    KEYS[2] location key
-- KEYS[3] tombstone key (last rev of a destroyed spec of this instance, if any)
-- ARGV    store, doc, schema, project_id, user_id, now
-- Reply   {'ok', rev} | {'exists', home}
-- The rev continues above a destroyed predecessor's, so a rev held from before a
-- destroy + re-create can never compare-and-set the new spec (no ABA).
local home = redis.call('GET', KEYS[2])
if home then return {'exists', home} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', ARGV[1]} end
local rev = tonumber(redis.call('GET', KEYS[3]) or '0') + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'rev', rev, 'schema', ARGV[3],
  'project_id', ARGV[4], 'user_id', ARGV[5], 'created_at', ARGV[6], 'updated_at', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return {'ok', rev}
