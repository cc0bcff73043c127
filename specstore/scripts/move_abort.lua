-- move_abort: give up an open move at the authority, only after the target was fenced
-- against it (cell_fence) or refused it: a move leaves the spec in its source store (a source
-- copy here is writable again; one on a cell's own backend is unfrozen next: cell_unfreeze);
-- a create leaves nothing but the lineage's rev.
-- KEYS[1] location record    KEYS[2] source spec key (on this backend, if the source is here)
-- ARGV    move id, seconds a buried record is kept, '1' when the source is here
-- Reply   {'ok', 'rolled_back'} | {'fenced', home} | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.move_id ~= ARGV[1] then return {'fenced', loc.store or ''} end
if loc.move_from ~= '' then
  if ARGV[3] == '1' then redis.call('HDEL', KEYS[2], 'moving_to') end
  redis.call('HDEL', KEYS[1], 'move_id', 'move_to', 'move_from', 'lease_until', 'move_started',
    'giving_up')
else  -- a create that never finished: the record keeps the epoch (never reused) and the rev
  bury(KEYS[1], loc.rev, loc.epoch, loc.rev == 0 and 'aborted' or 'destroyed', ARGV[2])
end
return {'ok', 'rolled_back'}
