-- cell_freeze: step 1b of a move out of a cell on its own backend: the source copy there is
-- frozen (readable, writes refused) for the move the authority opened, and its record returned.
-- KEYS[1] source spec key    KEYS[2] location record (the source's backend)
-- ARGV    source, target, move id, epoch of the move
-- Reply   {'ok', {field, value, ...}} | {'stale'} (a newer epoch is here) | {'not_found'}
--         | {'wrong_store', home} | {'moving', cell} | {'foreign', what}
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
if loc.epoch >= tonumber(ARGV[4]) then return {'stale'} end
if not loc.store then return not_here(loc) end
if loc.store ~= ARGV[1] then return {'wrong_store', loc.store} end
if loc.move_id and loc.move_id ~= ARGV[3] then return {'moving', loc.move_to} end
local rev = spec_rev(KEYS[1])
if rev == false then return {'foreign', 'spec record'} end
if not rev then return {'not_found'} end
redis.call('HSET', KEYS[2], 'move_id', ARGV[3], 'move_to', ARGV[2], 'move_from', ARGV[1])
redis.call('HSET', KEYS[1], 'moving_to', ARGV[2])
return {'ok', redis.call('HGETALL', KEYS[1])}
