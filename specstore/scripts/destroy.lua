-- destroy: delete the spec where it lives; its location record keeps the last rev (buried).
-- KEYS[1] spec key in the target store    KEYS[2] location record (on the same backend)
-- ARGV    store, expected rev ('' = no check), seconds the buried record is kept,
--         '1' when this backend holds the authority (the epoch moves on) else ''
-- Reply   {'ok', last rev, epoch} | {'not_found'} | {'wrong_store', home} | {'conflict', rev}
--         | {'moving', cell} | {'foreign', what}
--         | {'not_found', last rev, epoch} (a cell's own backend, the copy destroyed here
--           before: the authority may not have been told yet)
-- On a cell's own backend the returned epoch is the one the authority is told (it fences
-- the authority's step: only the record of that very copy is buried there).
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
if not loc.store then
  if ARGV[4] ~= '1' and loc.state == 'destroyed' and not loc.moved_to then
    return {'not_found', loc.rev, loc.epoch}
  end
  return not_here(loc)
end
if loc.store ~= ARGV[1] then return {'wrong_store', loc.store} end
if loc.move_id and loc.move_from == ARGV[1] then return {'moving', loc.move_to} end
local rev = spec_rev(KEYS[1])
if rev == false then return {'foreign', 'spec record'} end
if not rev then return {'not_found'} end
if ARGV[2] ~= '' and rev ~= tonumber(ARGV[2]) then return {'conflict', rev} end
redis.call('DEL', KEYS[1])
local last, epoch = math.max(rev, loc.rev), loc.epoch
if ARGV[4] == '1' then epoch = epoch + 1 end
bury(KEYS[2], last, epoch, 'destroyed', ARGV[3])
return {'ok', last, epoch}
