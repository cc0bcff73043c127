-- move_begin: step 1 of a move to or from a cell on another backend (authority, api backend).
-- Opens the move: a new epoch, a move id every later step presents, a lease. A source copy on
-- this backend is frozen (readable, writes refused); one on a cell's own backend is frozen there
-- next (cell_freeze). Asked again for the same move while it runs (a retried request), it
-- joins that move instead of opening another.
-- KEYS[1] location record    KEYS[2] source spec key (on this backend, if the source is here)
-- ARGV    target, move id, lease in ms, now (ISO 8601, for people reading the record), source,
--         '1' when the source copy is on this backend
-- Reply   {'ok', move id, epoch, {field, value, ...}} (the source copy's record, when here)
--         | {'already', epoch} (lives in the target) | {'not_found'} | {'wrong_store', home}
--         | {'moving', cell} | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
local lease_until = now_ms() + tonumber(ARGV[3])
if loc.move_id then
  if loc.move_to ~= ARGV[1] or loc.move_from ~= ARGV[5] then return {'moving', loc.move_to} end
  -- resume/repair settling it (within their own lease) take no one in
  if loc.giving_up and (int_of(loc.lease_until) or 0) >= now_ms() then
    return {'moving', loc.move_to}
  end
  redis.call('HDEL', KEYS[1], 'giving_up')
  redis.call('HSET', KEYS[1], 'lease_until', lease_until)
else
  if not loc.store then return {'not_found'} end
  if loc.store == ARGV[1] then return {'already', loc.epoch} end
  if loc.store ~= ARGV[5] then return {'wrong_store', loc.store} end
  if ARGV[6] == '1' then
    local rev = spec_rev(KEYS[2])
    if rev == false then return {'foreign', 'spec record'} end
    if not rev then return {'not_found'} end
    redis.call('HSET', KEYS[2], 'moving_to', ARGV[1])
  end
  loc.move_id, loc.epoch = ARGV[2], loc.epoch + 1
  redis.call('HSET', KEYS[1], 'epoch', loc.epoch, 'move_id', ARGV[2], 'move_to', ARGV[1],
    'move_from', ARGV[5], 'lease_until', lease_until, 'move_started', ARGV[4])
end
local record = {}
if ARGV[6] == '1' then record = redis.call('HGETALL', KEYS[2]) end
return {'ok', loc.move_id, loc.epoch, record}
