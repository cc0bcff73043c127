-- move_commit: last step of a move (authority): the cell becomes the home; the api copy, if
-- the move came from it, is deleted. Only the move that is still open may commit.
-- KEYS[1] location record    KEYS[2] api spec key
-- ARGV    cell, move id, rev of the copy the cell adopted
-- Reply   {'ok', 'committed'|'already'} | {'fenced', home} (the move was settled otherwise)
--         | {'foreign', what}
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.move_id ~= ARGV[2] then
  if loc.store == ARGV[1] and not loc.move_id then return {'ok', 'already'} end
  return {'fenced', loc.store or ''}
end
if loc.move_from == 'api' then redis.call('DEL', KEYS[2]) end
make_live(KEYS[1], ARGV[1], math.max(loc.rev, tonumber(ARGV[3])), loc.epoch)
return {'ok', 'committed'}
