-- cell_move_within: the adopt of a move between two cells on the same (cell) backend: the
-- frozen source copy becomes the target's, under the move's epoch, in one step.
-- KEYS[1] source spec key    KEYS[2] target spec key    KEYS[3] location record
-- ARGV    source, target, move id, epoch
-- Reply   {'ok', rev, 'moved'|'already'} | {'stale'} | {'exists', cell} | {'foreign', what}
local loc = read_loc(KEYS[3])
if not loc then return FOREIGN end
local epoch = tonumber(ARGV[4])
if loc.store == ARGV[2] and loc.epoch == epoch and loc.adopted_by == ARGV[3] then
  return {'ok', redis.call('HGET', KEYS[2], 'rev'), 'already'}
end
if loc.store ~= ARGV[1] or loc.move_id ~= ARGV[3] then return {'stale'} end
local rev = spec_rev(KEYS[1])
if not rev then return {'stale'} end
if spec_rev(KEYS[2]) ~= nil then return {'exists', ARGV[2]} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HDEL', KEYS[2], 'moving_to')
make_live(KEYS[3], ARGV[2], math.max(rev, loc.rev), epoch)
redis.call('HSET', KEYS[3], 'adopted_by', ARGV[3])
return {'ok', rev, 'moved'}
