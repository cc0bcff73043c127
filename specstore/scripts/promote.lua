-- promote: move a spec from its store to another store on the same backend as the authority
-- (atomic, idempotent): api -> cell after scheduling, or cell -> cell.
-- KEYS[1] source spec key    KEYS[2] target spec key    KEYS[3] location record
-- ARGV    target, source
-- Reply   {'ok', rev, 'moved'|'already'} | {'not_found'} | {'wrong_store', home}
--         | {'moving', cell} | {'exists', cell} (the cell key holds something else)
--         | {'foreign', what}
local loc = read_loc(KEYS[3])
if not loc then return FOREIGN end
if loc.move_id then return {'moving', loc.move_to} end
if not loc.store then return {'not_found'} end
if loc.store == ARGV[1] then
  return {'ok', redis.call('HGET', KEYS[2], 'rev') or '0', 'already'}
end
if loc.store ~= ARGV[2] then return {'wrong_store', loc.store} end
local rev = spec_rev(KEYS[1])
if rev == false then return {'foreign', 'spec record'} end
if not rev then return {'not_found'} end
if spec_rev(KEYS[2]) ~= nil then return {'exists', ARGV[1]} end
redis.call('RENAME', KEYS[1], KEYS[2])
make_live(KEYS[3], ARGV[1], math.max(rev, loc.rev), loc.epoch + 1)
return {'ok', rev, 'moved'}
