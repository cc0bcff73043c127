-- move_claim: step 1 of a create (or import) into a cell on another backend (authority).
-- Opens a move from nowhere: the instance is reserved for the cell under a new epoch, so no
-- other store can create it, and the rev the new spec starts at continues the lineage.
-- KEYS[1] location record
-- ARGV    cell, move id, lease in ms, now (ISO 8601), lowest rev wanted (an import's own),
--         '1' = a destroyed instance may be created again (a create; an import with overwrite)
-- Reply   {'ok', epoch, rev} | {'exists', home} | {'moving', cell} | {'buried'}
--         | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.move_id then return {'moving', loc.move_to} end
if loc.store then return {'exists', loc.store} end
if loc.state == 'destroyed' and ARGV[6] ~= '1' then return {'buried'} end
local epoch, rev = loc.epoch + 1, math.max(tonumber(ARGV[5]), loc.rev + 1)
redis.call('HSET', KEYS[1], 'store', '', 'rev', loc.rev, 'epoch', epoch, 'state', 'creating',
  'move_id', ARGV[2], 'move_to', ARGV[1], 'move_from', '',
  'lease_until', now_ms() + tonumber(ARGV[3]), 'move_started', ARGV[4])
redis.call('PERSIST', KEYS[1])
return {'ok', epoch, rev}
