-- cell_unfreeze: giving up a move whose source and target share a cell's own backend, or
-- unfreezing the source after the authority aborted the move. Atomically here: either the
-- move already renamed the copy to the target (then it must be finished), or the source is
-- unfrozen and the move can no longer happen here.
-- KEYS[1] source spec key    KEYS[2] location record (the source's backend)
-- ARGV    move id, target, epoch of the move
-- Reply   {'ok', 'adopted', rev} | {'ok', 'destroyed', last rev} | {'ok', 'aborted'}
--         | {'foreign', what}
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
if loc.epoch == tonumber(ARGV[3]) and loc.adopted_by == ARGV[1] then
  if loc.store == ARGV[2] then return {'ok', 'adopted', loc.rev} end
  -- renamed to the target, then destroyed there before the authority heard of either
  if loc.state == 'destroyed' then return {'ok', 'destroyed', loc.rev} end
end
if loc.move_id == ARGV[1] then
  redis.call('HDEL', KEYS[2], 'move_id', 'move_to', 'move_from')
  redis.call('HDEL', KEYS[1], 'moving_to')
end
return {'ok', 'aborted'}
