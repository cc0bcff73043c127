-- loc_repair: repair points a location record at a store (or buries it), only if the
-- record still holds the epoch and move id repair saw (a cell's record may keep the move id
-- of a move the authority has long settled: a source frozen by a move that crashed).
-- KEYS[1] location record
-- ARGV    epoch seen ('' = the record was absent), store ('' = bury), rev,
--         epoch to write ('' = keep it), seconds a buried record is kept,
--         move id seen ('' = none), store seen ('' = none), state seen ('' = absent)
-- Reply   {'ok', 'set'} | {'ok', 'changed'} | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
local seen = ARGV[1] == '' and 0 or tonumber(ARGV[1])
if loc.epoch ~= seen or (loc.move_id or '') ~= ARGV[6] or (loc.store or '') ~= ARGV[7]
    or (loc.state or '') ~= ARGV[8] then
  return {'ok', 'changed'}
end
local epoch = ARGV[4] == '' and loc.epoch or tonumber(ARGV[4])
local rev = math.max(loc.rev, tonumber(ARGV[3]))
if ARGV[2] == '' then bury(KEYS[1], rev, epoch, 'destroyed', ARGV[5])
else make_live(KEYS[1], ARGV[2], rev, epoch) end
return {'ok', 'set'}
