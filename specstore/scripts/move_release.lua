-- move_release: phase 3 of a move. Removes the api copy if it is still marked for this cell.
-- KEYS[1] api spec key    KEYS[2] location key (api backend)
-- ARGV    cell
-- Reply   {'ok', 'released'|'gone'} | {'moving', other cell}
local moving = redis.call('HGET', KEYS[1], 'moving_to')
if not moving then
  if redis.call('GET', KEYS[2]) == 'api' and redis.call('EXISTS', KEYS[1]) == 1 then
    return {'not_marked'}
  end
  return {'ok', 'gone'}
end
if moving ~= ARGV[1] then return {'moving', moving} end
redis.call('DEL', KEYS[1], KEYS[2])
return {'ok', 'released'}
