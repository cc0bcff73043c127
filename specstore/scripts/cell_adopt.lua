-- cell_adopt: step 2 of a move (the cell's own backend): write the cell copy, fenced by the
-- move's epoch. The copy of this very move is kept as it is (the step may run twice); a move
-- this backend already saw aborted, destroyed or superseded is refused.
-- KEYS[1] cell spec key    KEYS[2] location record (cell backend)
-- ARGV    cell, epoch, doc, rev, schema, project_id, user_id, created_at, updated_at
-- Reply   {'ok', rev, 'moved'|'already'} | {'stale'} | {'exists', home} | {'foreign', what}
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
local epoch = tonumber(ARGV[2])
if loc.epoch > epoch then return {'stale'} end
if loc.epoch == epoch then
  if loc.store == ARGV[1] then return {'ok', redis.call('HGET', KEYS[1], 'rev'), 'already'} end
  return {'stale'}
end
if loc.store then return {'exists', loc.store} end
if spec_rev(KEYS[1]) ~= nil then return {'exists', ARGV[1]} end
write_spec(KEYS[1], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
make_live(KEYS[2], ARGV[1], tonumber(ARGV[4]), epoch)
return {'ok', ARGV[4], 'moved'}
