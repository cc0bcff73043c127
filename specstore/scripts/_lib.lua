-- Shared by the scripts (each is sent with the parts of this file it uses, see
-- specstore.core.lua.link): the location record.
-- specstore:loc:{<uuid>} is a HASH. On the api backend it is the authority for the instance:
--   store        the store the spec lives in ('' once destroyed)
--   rev          the highest rev of the instance's lineage known here (a re-created spec
--                continues above it, so a rev held from before a destroy never matches)
--   epoch        +1 on every change of home (and every move opened); moves present it
--   home_epoch   the epoch the home's copy was installed under (a destroy there reports it)
--   state        live | destroyed | aborted
--   move_id, move_to, move_from, lease_until (ms, server time), move_started
--                only while a move to a cell on another backend runs
--   giving_up    set while resume/repair settles an expired move (no one may join it)
--   moved_to     (a cell's own backend) where the copy that lived here went
--   adopted_by   (a cell's own backend) the move id that installed the copy here
-- A cell's own backend also keeps <prefix>:fence:{<uuid>}, a STRING: the highest epoch of
-- a move given up there; an adopt of that epoch or an older one is refused.
-- On a cell's own backend the same record says what that backend holds: its store, and the
-- epoch of the move that installed the copy (or of the move that was aborted or destroyed).

-- (What a script is sent runs on every call: each function defined there costs a closure and
-- each table built at the top a table, per call.)

-- A count specstore wrote (rev, epoch, lease, fence): decimal digits only, at most 2^53 - 1
-- (exact in Lua's numbers); nil for anything else (tonumber also reads 'nan', 'inf', '0x10',
-- ' 2 ', '1e300').
local function int_of(text)
  if type(text) == 'string' and #text <= 16 and string.find(text, '^%d+$') then
    local n = tonumber(text)
    if n <= 9007199254740991 then return n end
  end
  return nil
end

-- True when a record's state and counts are ones specstore writes (rev may be absent).
local function ours(state, epoch, rev)
  return (state == 'live' or state == 'destroyed' or state == 'aborted' or state == 'creating'
          or state == 'moved') and int_of(epoch) ~= nil and (not rev or int_of(rev) ~= nil)
end

-- The record as a table (absent: store nil, rev 0, epoch 0), or nil when the key holds
-- something specstore did not write (another type, or a hash without our fields).
-- One HGETALL: an absent key and a hash without a state tell themselves apart in one call.
local function read_loc(key)
  local raw = redis.pcall('HGETALL', key)
  if raw.err then return nil end
  local loc = {}
  if #raw == 0 then
    loc.rev, loc.epoch = 0, 0
    return loc
  end
  for i = 1, #raw, 2 do
    loc[raw[i]] = raw[i + 1]  -- (fields not named above are never read)
  end
  if not ours(loc.state, loc.epoch, loc.rev) then return nil end
  loc.rev, loc.epoch = int_of(loc.rev or '0'), int_of(loc.epoch)
  loc.home_epoch = int_of(loc.home_epoch) or loc.epoch
  if loc.store == '' then loc.store = nil end
  return loc
end

-- True when the record says the spec lives in ``store`` and may be written there (no move
-- away from it runs): a write's usual case, read with one HMGET of six fields, which costs
-- Redis less than read_loc's HGETALL and table (a script that finds false takes read_loc
-- for the reply). Nil when the key is not a hash.
local function lives_in(key, store)
  local f = redis.pcall('HMGET', key, 'store', 'state', 'epoch', 'rev', 'move_id', 'move_from')
  if f.err then return nil end
  return f[1] == store and ours(f[2], f[3], f[4]) and not (f[5] and f[6] == store)
end

local FOREIGN = {'foreign', 'location record'}

-- The rev stored in a spec hash: a number, nil when absent, false when the key is not ours.
local function spec_rev(key)
  local rev = redis.pcall('HGET', key, 'rev')
  if type(rev) == 'table' and rev.err then return false end
  if not rev then
    if redis.call('EXISTS', key) == 1 then return false end
    return nil
  end
  return int_of(rev) or false
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A destroyed (or aborted) record keeps its rev and epoch for ttl seconds.
local function bury(key, rev, epoch, state, ttl)
  redis.call('HDEL', key, 'move_id', 'move_to', 'move_from', 'lease_until', 'move_started',
    'moved_to', 'giving_up')
  redis.call('HSET', key, 'store', '', 'rev', rev, 'epoch', epoch, 'state', state)
  redis.call('EXPIRE', key, ttl)
end

-- (absent: the caller has seen that the key does not exist, so there is nothing to clear)
local function write_spec(key, doc, rev, schema, project_id, user_id, created_at, updated_at,
                          absent)
  if not absent then redis.call('DEL', key) end
  redis.call('HSET', key, 'doc', doc, 'rev', rev, 'schema', schema, 'project_id', project_id,
    'user_id', user_id, 'created_at', created_at, 'updated_at', updated_at)
end

-- (absent: the record did not exist, so there is no field or expiry to clear)
local function make_live(key, store, rev, epoch, absent)
  if not absent then
    redis.call('HDEL', key, 'move_id', 'move_to', 'move_from', 'lease_until', 'move_started',
      'moved_to', 'adopted_by', 'giving_up')
  end
  redis.call('HSET', key, 'store', store, 'rev', rev, 'epoch', epoch, 'state', 'live',
    'home_epoch', epoch)
  if not absent then redis.call('PERSIST', key) end
end

-- The reply for a store that holds no live copy: where it went, if this backend knows.
local function not_here(loc)
  if loc.moved_to then return {'wrong_store', loc.moved_to} end
  return {'not_found'}
end

-- The fence of a cell's own backend: the highest epoch given up here (0 when none), or nil
-- when the key holds something specstore did not write.
local function read_fence(key)
  local fence = redis.pcall('GET', key)
  if type(fence) == 'table' then return nil end
  if not fence then return 0 end
  return int_of(fence)
end
