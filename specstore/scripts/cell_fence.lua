-- cell_fence: before an open move is given up (the target's own backend). Either this
-- move's copy is already here (then the move must be finished, not undone), or it was
-- destroyed here, or the epoch is recorded in the fence so that any later adopt of this
-- move (or an older one) is refused -- whatever the location record holds.
-- KEYS[1] target spec key    KEYS[2] location record    KEYS[3] fence (this backend)
-- ARGV    epoch, seconds the fence is kept, move id
-- Reply   {'ok', 'adopted', rev} | {'ok', 'destroyed', last rev} | {'ok', 'aborted'}
--         | {'foreign', what} (nothing was written: the move cannot be given up safely)
local epoch = tonumber(ARGV[1])
if not epoch then return {'foreign', 'arguments'} end
local loc = read_loc(KEYS[2])
if loc and loc.epoch == epoch and loc.adopted_by == ARGV[3] then
  if loc.store then
    local rev = spec_rev(KEYS[1])
    if type(rev) ~= 'number' then return {'foreign', 'spec record'} end
    return {'ok', 'adopted', rev}
  end
  if loc.state == 'destroyed' then return {'ok', 'destroyed', loc.rev} end
end
local fence = read_fence(KEYS[3])
if not fence then return {'foreign', 'fence'} end
if fence < epoch then redis.call('SET', KEYS[3], epoch, 'EX', ARGV[2]) end
return {'ok', 'aborted'}
