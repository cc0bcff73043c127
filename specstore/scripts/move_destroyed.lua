-- move_destroyed: the authority learns that a cell on another backend destroyed its copy
-- (destroy's second step, or repair). Only the copy installed under ``epoch`` counts: a late
-- report about an older copy changes nothing.
-- KEYS[1] location record    KEYS[2] api spec key
-- ARGV    cell, epoch of the destroyed copy, its last rev, seconds the buried record is kept
-- Reply   {'ok', 'destroyed'|'stale'} | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.epoch ~= tonumber(ARGV[2]) then return {'ok', 'stale'} end
if loc.move_id then
  if loc.move_to ~= ARGV[1] then return {'ok', 'stale'} end
  if loc.move_from == 'api' then redis.call('DEL', KEYS[2]) end  -- destroyed before commit
elseif loc.store ~= ARGV[1] then
  return {'ok', 'stale'}
end
bury(KEYS[1], math.max(loc.rev, tonumber(ARGV[3])), loc.epoch + 1, 'destroyed', ARGV[4])
return {'ok', 'destroyed'}
