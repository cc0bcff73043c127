-- cell_adopt: step 2 of a move (the target's own backend): write the copy, fenced by the
-- move's epoch and id. The copy of this very move is kept as it is (the step may run twice);
-- a move this backend already saw given up, destroyed or superseded is refused.
-- KEYS[1] target spec key    KEYS[2] location record    KEYS[3] fence (this backend)
-- ARGV    target, epoch, doc, rev, schema, project_id, user_id, created_at, updated_at, move id
-- Reply   {'ok', rev, 'moved'|'already'} | {'stale'} | {'exists', home} | {'foreign', what}
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
local fence = read_fence(KEYS[3])
if not fence then return {'foreign', 'fence'} end
local epoch, rev = tonumber(ARGV[2]), tonumber(ARGV[4])
if not epoch or not rev then return {'foreign', 'arguments'} end
if fence >= epoch or loc.epoch > epoch then return {'stale'} end
if loc.epoch == epoch then
  if loc.store == ARGV[1] and loc.adopted_by == ARGV[10] then
    local stored = spec_rev(KEYS[1])
    if type(stored) ~= 'number' then return {'foreign', 'spec record'} end
    return {'ok', stored, 'already'}
  end
  return {'stale'}
end
if loc.store then return {'exists', loc.store} end
if spec_rev(KEYS[1]) ~= nil then return {'exists', ARGV[1]} end
-- (the key is absent: the first write is an HSET, which Redis refuses at its memory limit
-- before anything was written; a DEL first would let every later write through)
write_spec(KEYS[1], ARGV[3], rev, ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], true)
make_live(KEYS[2], ARGV[1], rev, epoch)
redis.call('HSET', KEYS[2], 'adopted_by', ARGV[10])
return {'ok', rev, 'moved'}
