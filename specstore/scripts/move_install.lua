-- move_install: adopt and commit in one step when the target is a store on the authority's
-- own backend (a move out of a cell on its own backend into one that shares the api's).
-- KEYS[1] location record    KEYS[2] target spec key
-- ARGV    target, move id, doc, rev, schema, project_id, user_id, created_at, updated_at
-- Reply   {'ok', rev} | {'fenced', home} | {'exists', cell} | {'foreign', what}
local rev = tonumber(ARGV[4])
if not rev then return {'foreign', 'arguments'} end
local loc = read_loc(KEYS[1])
if not loc then return FOREIGN end
if loc.move_id ~= ARGV[2] then
  if loc.store == ARGV[1] then return {'ok', redis.call('HGET', KEYS[2], 'rev')} end
  return {'fenced', loc.store or ''}
end
if spec_rev(KEYS[2]) ~= nil then return {'exists', ARGV[1]} end
write_spec(KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], true)
make_live(KEYS[1], ARGV[1], math.max(loc.rev, rev), loc.epoch)
return {'ok', ARGV[4]}
