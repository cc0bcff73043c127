-- restore: write a whole exported record (doc and timestamps kept), for import.
-- KEYS[1] spec key in the target store    KEYS[2] location record (on the same backend)
-- ARGV    store, doc, rev, schema, project_id, user_id, created_at, updated_at,
--         overwrite ('1' = replace a spec already living in the same store),
--         '1' when this backend holds the authority (a new home may be made here) else ''
-- Reply   {'ok', 'created'|'replaced'|'unchanged', rev} | {'exists', home}
--         | {'moving', cell} | {'unclaimed'} (a new home on a cell's own backend goes
--         through the authority first) | {'buried'} (destroyed since: only overwrite
--         restores it) | {'foreign', what}
-- The rev written continues the lineage: at least the record's, above any rev seen before.
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
if loc.move_id then return {'moving', loc.move_to} end
local wanted = tonumber(ARGV[3])
if loc.store == ARGV[1] then
  local stored = redis.pcall('HMGET', KEYS[1], 'doc', 'rev')
  if stored.err or not int_of(stored[2]) then return {'foreign', 'spec record'} end
  if stored[1] == ARGV[2] then return {'ok', 'unchanged', stored[2]} end
  if ARGV[9] ~= '1' then return {'exists', ARGV[1]} end
  local rev = math.max(wanted, int_of(stored[2]) + 1, loc.rev + 1)
  write_spec(KEYS[1], ARGV[2], rev, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
  -- the record stays as it is (on a cell's own backend it may mark the adoption of a move
  -- the authority has not committed yet); only its rev follows the lineage
  redis.call('HSET', KEYS[2], 'rev', rev)
  return {'ok', 'replaced', rev}
end
if loc.store then return {'exists', loc.store} end
if loc.state == 'destroyed' and ARGV[9] ~= '1' then return {'buried'} end
if ARGV[10] ~= '1' then return {'unclaimed'} end
if spec_rev(KEYS[1]) ~= nil then return {'exists', ARGV[1]} end
local rev = math.max(wanted, loc.rev + 1)
write_spec(KEYS[1], ARGV[2], rev, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
make_live(KEYS[2], ARGV[1], rev, loc.epoch + 1)
return {'ok', 'created', rev}
