-- promote: move a spec from the api store to a cell store (atomic, idempotent).
-- KEYS[1] api spec key    KEYS[2] cell spec key    KEYS[3] location key
-- ARGV    cell
-- Reply   {'ok', rev, 'moved'|'already'} | {'not_found'} | {'wrong_store', home}
--         | {'moving', other cell} | {'exists', cell} (the cell key holds something else)
local home = redis.call('GET', KEYS[3])
if not home then return {'not_found'} end
if home == ARGV[1] then
  return {'ok', redis.call('HGET', KEYS[2], 'rev') or '0', 'already'}
end
if home ~= 'api' then return {'wrong_store', home} end
local stored = redis.call('HMGET', KEYS[1], 'rev', 'moving_to')
local rev = stored[1]
if not rev then return {'not_found'} end
if stored[2] then return {'moving', stored[2]} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists', ARGV[1]} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[1])
return {'ok', rev, 'moved'}
