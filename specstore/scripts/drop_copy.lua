-- drop_copy: delete a spec copy only if its rev is still the one repair saw.
-- KEYS[1] spec key    ARGV rev
-- Reply   {'ok', 'dropped'} | {'ok', 'changed'}
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[1] then return {'ok', 'changed'} end
redis.call('DEL', KEYS[1])
return {'ok', 'dropped'}
