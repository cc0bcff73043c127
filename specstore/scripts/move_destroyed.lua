-- move_destroyed: the authority learns that a cell on another backend destroyed its copy
-- (destroy's second step, or repair). Only the copy installed under ``epoch`` counts -- the
-- target copy of the open move, or the home's -- a late report about an older copy changes
-- nothing. The home destroyed while a move out of it was open (before it was frozen) ends
-- that move too: its next step finds it gone.
-- KEYS[1] location record    KEYS[2] source spec key (on this backend, if a move's source is here)
-- ARGV    cell, epoch of the destroyed copy, its last rev, seconds the buried record is kept,
--         '1' when an open move's source is here
-- Reply   {'ok', 'destroyed', source of the open move ('' = none), its move id}
--         | {'ok', 'stale'} | {'foreign', what}
local epoch, last = tonumber(ARGV[2]), tonumber(ARGV[3])
if not epoch or not last then return {'foreign', 'arguments'} end
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
local source, move_id = '', ''
if loc.move_id and loc.move_to == ARGV[1] and loc.epoch == epoch then
  -- destroyed in the target before the move committed: the frozen source goes too
  if ARGV[5] == '1' and loc.move_from ~= '' then redis.call('DEL', KEYS[2]) end
  source, move_id = loc.move_from, loc.move_id
elseif loc.store ~= ARGV[1] or loc.home_epoch ~= epoch then
  return {'ok', 'stale'}
end
bury(KEYS[1], math.max(loc.rev, last), loc.epoch + 1, 'destroyed', ARGV[4])
return {'ok', 'destroyed', source, move_id}
