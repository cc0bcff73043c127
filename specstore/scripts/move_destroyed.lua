-- move_destroyed: the authority learns that a cell on another backend destroyed its copy
-- (destroy's second step, or repair). Only the copy installed under ``epoch`` counts: a late
-- report about an older copy changes nothing.
-- KEYS[1] location record    KEYS[2] source spec key (on this backend, if a move's source is here)
-- ARGV    cell, epoch of the destroyed copy, its last rev, seconds the buried record is kept,
--         '1' when an open move's source is here
-- Reply   {'ok', 'destroyed', source of the open move ('' = none), its move id}
--         | {'ok', 'stale'} | {'foreign', what}
local epoch, last = tonumber(ARGV[2]), tonumber(ARGV[3])
if not epoch or not last then return {'foreign', 'arguments'} end
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.epoch ~= epoch then return {'ok', 'stale'} end
local source, move_id = '', ''
if loc.move_id then
  if loc.move_to ~= ARGV[1] then return {'ok', 'stale'} end
  -- destroyed in the target before the move committed: the frozen source goes too
  if ARGV[5] == '1' and loc.move_from ~= '' then redis.call('DEL', KEYS[2]) end
  source, move_id = loc.move_from, loc.move_id
elseif loc.store ~= ARGV[1] then
  return {'ok', 'stale'}
end
bury(KEYS[1], math.max(loc.rev, last), loc.epoch + 1, 'destroyed', ARGV[4])
return {'ok', 'destroyed', source, move_id}
