-- cell_release: after a move out of a cell on its own backend committed: the frozen source
-- copy is deleted; the record keeps where it went (writes here get WrongStoreError) and the
-- last rev for a while.
-- KEYS[1] source spec key    KEYS[2] location record (the source's backend)
-- ARGV    move id, target, seconds the record is kept
-- Reply   {'ok', 'released'|'gone'} | {'foreign', what}
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
if loc.move_id ~= ARGV[1] then return {'ok', 'gone'} end
local rev = spec_rev(KEYS[1]) or 0
redis.call('DEL', KEYS[1])
bury(KEYS[2], math.max(loc.rev, rev), loc.epoch, 'moved', ARGV[3])
redis.call('HSET', KEYS[2], 'moved_to', ARGV[2])
return {'ok', 'released'}
