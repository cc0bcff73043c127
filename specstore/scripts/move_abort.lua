-- move_abort: give up an open move (authority), only after the cell was fenced against it
-- (cell_fence) or refused it: a promote leaves the spec in the api store, writable again; a
-- create leaves nothing but the lineage's rev.
-- KEYS[1] location record    KEYS[2] api spec key
-- ARGV    move id, seconds a buried record is kept
-- Reply   {'ok', 'rolled_back'} | {'fenced', home} | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.move_id ~= ARGV[1] then return {'fenced', loc.store or ''} end
if loc.move_from == 'api' then
  redis.call('HDEL', KEYS[2], 'moving_to')
  redis.call('HDEL', KEYS[1], 'move_id', 'move_to', 'move_from', 'lease_until', 'move_started')
elseif loc.rev == 0 then
  redis.call('DEL', KEYS[1])
else
  bury(KEYS[1], loc.rev, loc.epoch, 'destroyed', ARGV[2])
end
return {'ok', 'rolled_back'}
