-- create: store a new spec in a store on the authority's (api) backend and record its home.
-- KEYS[1] spec key in the target store    KEYS[2] location record
-- ARGV    store, doc, schema, project_id, user_id, now
-- Reply   {'ok', rev} | {'exists', home} | {'foreign', what}
-- The rev continues above the lineage's (a destroyed predecessor's revs), so a rev held from
-- before a destroy + re-create never compare-and-sets the new spec (no ABA).
local loc = read_loc(KEYS[2])
if not loc then return FOREIGN end
if loc.store then return {'exists', loc.store} end
if loc.move_id then return {'exists', loc.move_to} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', ARGV[1]} end
local rev = loc.rev + 1
write_spec(KEYS[1], ARGV[2], rev, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[6], true)
make_live(KEYS[2], ARGV[1], rev, loc.epoch + 1, loc.state == nil)
return {'ok', rev}
