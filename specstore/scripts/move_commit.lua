-- move_commit: last step of a move at the authority: the target becomes the home; a source
-- copy on this backend is deleted (one on a cell's own backend is released there next:
-- cell_release). Only the move that is still open may commit.
-- KEYS[1] location record    KEYS[2] source spec key (on this backend, if the source is here)
-- ARGV    target, move id, rev of the copy the target adopted, '1' when the source is here
-- Reply   {'ok', 'committed'|'already'} | {'fenced', home} (the move was settled otherwise)
--         | {'foreign', what}
local rev = tonumber(ARGV[3])
if not rev then return {'foreign', 'arguments'} end
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.move_id ~= ARGV[2] then
  if loc.store == ARGV[1] and not loc.move_id then return {'ok', 'already'} end
  return {'fenced', loc.store or ''}
end
if ARGV[4] == '1' and loc.move_from ~= '' then redis.call('DEL', KEYS[2]) end
make_live(KEYS[1], ARGV[1], math.max(loc.rev, rev), loc.epoch)
return {'ok', 'committed'}
