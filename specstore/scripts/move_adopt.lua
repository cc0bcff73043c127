-- move_adopt: phase 2 of a move. Writes the cell copy on the cell's backend, idempotently:
-- a cell copy of the same or a newer rev is kept as it is.
-- KEYS[1] cell spec key    KEYS[2] location key (cell backend)
-- ARGV    cell, doc, rev, schema, project_id, user_id, created_at, updated_at
-- Reply   {'ok', rev, 'moved'|'already'} | {'wrong_store', home}
--         | {'exists', cell} (the cell key holds something that is not this spec's copy)
local home = redis.call('GET', KEYS[2])
if home and home ~= ARGV[1] then return {'wrong_store', home} end
local rev = redis.call('HGET', KEYS[1], 'rev')
if home and rev and tonumber(rev) >= tonumber(ARGV[3]) then return {'ok', rev, 'already'} end
-- a copy of ours always has its location record and a rev; anything else is not ours to replace
if (rev and not home) or (not rev and redis.call('EXISTS', KEYS[1]) == 1) then
  return {'exists', ARGV[1]}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'rev', ARGV[3], 'schema', ARGV[4],
  'project_id', ARGV[5], 'user_id', ARGV[6], 'created_at', ARGV[7], 'updated_at', ARGV[8])
redis.call('SET', KEYS[2], ARGV[1])
return {'ok', ARGV[3], 'moved'}
