-- move_intent: phase 1 of a move to a cell on another backend. Marks the api copy with the
-- target cell (writes to it are refused from now on) and returns the record to copy.
-- KEYS[1] api spec key    KEYS[2] location key (api backend)
-- ARGV    cell, now
-- Reply   {'ok', field, value, ...} (the whole record) | {'not_found'} | {'wrong_store', home}
--         | {'moving', other cell}
local home = redis.call('GET', KEYS[2])
if not home then return {'not_found'} end
if home ~= 'api' then return {'wrong_store', home} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found'} end
local moving = redis.call('HGET', KEYS[1], 'moving_to')
if moving and moving ~= ARGV[1] then return {'moving', moving} end
if not moving then
  redis.call('HSET', KEYS[1], 'moving_to', ARGV[1], 'moving_since', ARGV[2])
end
local record = redis.call('HGETALL', KEYS[1])
table.insert(record, 1, 'ok')
return record
