-- cell_fence: before an open move is given up (the cell's own backend). Either the move's
-- copy is already here (then the move must be finished, not undone), or the epoch is
-- recorded as aborted so that a late adopt of that move is refused.
-- KEYS[1] cell spec key    KEYS[2] location record (cell backend)
-- ARGV    epoch, seconds the aborted record is kept
-- Reply   {'ok', 'adopted', rev} | {'ok', 'destroyed', last rev} | {'ok', 'aborted'}
--         | {'foreign', what}
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
local epoch = tonumber(ARGV[1])
if loc.epoch == epoch and loc.store then
  return {'ok', 'adopted', redis.call('HGET', KEYS[1], 'rev')}
end
if loc.epoch == epoch and loc.state == 'destroyed' then return {'ok', 'destroyed', loc.rev} end
if loc.epoch < epoch and not loc.store then
  bury(KEYS[2], loc.rev, epoch, 'aborted', ARGV[2])
end
-- a newer epoch, or a live copy of another lineage: an adopt of this move is refused anyway
return {'ok', 'aborted'}
