-- move_begin: step 1 of a promote to a cell on another backend (authority, api backend).
-- Opens the move: a new epoch, a move id every later step presents, a lease; the api copy is
-- frozen (writes refused) but stays readable. Asked again for the same cell while the move
-- runs (a retried request), it joins that move instead of opening another.
-- KEYS[1] location record    KEYS[2] api spec key
-- ARGV    cell, move id, lease in ms, now (ISO 8601, for people reading the record)
-- Reply   {'ok', move id, epoch, {field, value, ...}} (the api copy's record)
--         | {'already', epoch} (lives in the cell) | {'not_found'} | {'wrong_store', home}
--         | {'moving', cell} | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
local lease_until = now_ms() + tonumber(ARGV[3])
if loc.move_id then
  if loc.move_to ~= ARGV[1] or loc.move_from ~= 'api' then return {'moving', loc.move_to} end
  redis.call('HSET', KEYS[1], 'lease_until', lease_until)
else
  if not loc.store then return {'not_found'} end
  if loc.store == ARGV[1] then return {'already', loc.epoch} end
  if loc.store ~= 'api' then return {'wrong_store', loc.store} end
  local rev = spec_rev(KEYS[2])
  if rev == false then return {'foreign', 'spec record'} end
  if not rev then return {'not_found'} end
  loc.move_id, loc.epoch = ARGV[2], loc.epoch + 1
  redis.call('HSET', KEYS[1], 'epoch', loc.epoch, 'move_id', ARGV[2], 'move_to', ARGV[1],
    'move_from', 'api', 'lease_until', lease_until, 'move_started', ARGV[4])
  redis.call('HSET', KEYS[2], 'moving_to', ARGV[1])
end
return {'ok', loc.move_id, loc.epoch, redis.call('HGETALL', KEYS[2])}
