-- Every change to one room, and every look at it that must keep a connection's order:
-- one atomic step. It numbers the room's entries (`n`) and messages (`seq`), keeps the
-- room's members, history and idempotency keys, appends the entry to the room's log
-- (for nodes catching up) and publishes it on `P:events`, which every node reads in the
-- order Redis ran the steps. Answers meant for one node go on that node's channel.
--
-- KEYS: 1 meta, 2 members, 3 hist, 4 log, 5 nodes, 6 idem, 7 idemt (all tagged {room})
-- ARGV: 1 prefix, 2 room, 3 op, 4 deadline (ms; later: do nothing), 5 origin node,
--       6 ask ('' = answer in the reply only), 7 member id, 8 a1, 9 a2, 10 epoch candidate,
--       11 history_len, 12 room_ttl_ms, 13 max_rooms, 14 idempotency_ttl_ms,
--       15 idempotency_keys_max, 16 log_len
local P, R, op, origin, ask, id, a1, a2 = ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local meta, members, hist, log, nodes, idem, idemt = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local hist_len, ttl, max_rooms = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local idem_ttl, idem_max, log_len = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[4]) then return {'late'} end

local function room_keys(room)
  local k = {}
  for _, part in ipairs({'meta', 'members', 'hist', 'log', 'nodes', 'idem', 'idemt'}) do
    table.insert(k, P .. ':{' .. room .. '}:' .. part)
  end
  return k
end
local function node_rooms(node) return P .. ':node:{' .. node .. '}:rooms' end
local function to_node(node, fields) redis.call('PUBLISH', P .. ':node:' .. node, cjson.encode(fields)) end
-- The outcome of a WebSocket ask that is not an entry: on the origin's channel, in order.
local function answer(fields)
  fields.r = R
  if ask ~= '' then fields.a = ask; to_node(origin, fields) end
  return fields
end
local function refuse(code)
  answer({k = 'refused', err = code})
  return {'refused', code}
end

local m = redis.call('HMGET', meta, 'epoch', 'n', 'seq', 'ms', 'idle')
local exists = m[1] ~= false
local epoch, n, seq = m[1], tonumber(m[2] or '0'), tonumber(m[3] or '0')
if exists then now = math.max(now, tonumber(m[4])) end -- a room's clock never goes back

local function snapshot(fields)
  fields.e = epoch; fields.n = n; fields.s = seq; fields.ms = now
  fields.members = table.concat(redis.call('HVALS', members), '\n')
  fields.hist = table.concat(redis.call('LRANGE', hist, 0, -1), '\n')
  return fields
end
-- A new life of the room: seq from 1 again, under a new epoch. Past MAX_ROOMS_TOTAL the
-- empty room idle longest goes first; with none, the room cannot be made.
local function new_life()
  if max_rooms > 0 and not redis.call('ZSCORE', P .. ':rooms', R) and redis.call('ZCARD', P .. ':rooms') >= max_rooms then
    local idlest = redis.call('ZRANGE', P .. ':idle', 0, 0)[1]
    if not idlest then return false end
    if redis.call('HLEN', P .. ':{' .. idlest .. '}:members') > 0 then return false end
    redis.call('DEL', unpack(room_keys(idlest)))
    redis.call('ZREM', P .. ':rooms', idlest); redis.call('ZREM', P .. ':idle', idlest)
  end
  redis.call('DEL', meta, members, hist, log, nodes, idem, idemt)
  epoch, n, seq, exists = ARGV[10], 0, 0, true
  redis.call('ZADD', P .. ':rooms', 0, R); redis.call('ZREM', P .. ':idle', R)
  return true
end
-- The room's next entry: numbered, logged, and published to every node.
local function emit(fields)
  n = n + 1
  fields.r = R; fields.e = epoch; fields.n = n; fields.ms = now; fields.o = origin
  if ask ~= '' then fields.a = ask end
  local json = cjson.encode(fields)
  redis.call('XADD', log, 'MAXLEN', '~', log_len, n .. '-1', 'j', json)
  redis.call('PUBLISH', P .. ':events', json)
end
-- A member record in; its node follows the room from now on (it got the snapshot first).
local function add(json)
  local who = cjson.decode(json)
  who.at = now; who.node = origin
  local rec = cjson.encode(who)
  redis.call('HSET', members, who.id, rec)
  redis.call('HINCRBY', nodes, origin, 1)
  redis.call('SADD', node_rooms(origin), R)
  return rec, who.id
end
local function remove(rec)
  local who = cjson.decode(rec)
  redis.call('HDEL', members, who.id)
  if redis.call('HINCRBY', nodes, who.node, -1) <= 0 then
    redis.call('HDEL', nodes, who.node); redis.call('SREM', node_rooms(who.node), R)
  end
end
local function post(text, rec)
  seq = seq + 1
  local item = cjson.encode({s = seq, at = now, x = text, f = rec or false})
  if hist_len > 0 then
    redis.call('RPUSH', hist, item); redis.call('LTRIM', hist, -hist_len, -1)
  end
  return item
end
local function following(node) return tonumber(redis.call('HGET', nodes, node) or '0') > 0 end

local result = {'ok'}
if op == 'join' then -- a1 the member record {id, name, user}
  if not exists and not new_life() then return refuse('rooms_full') end
  if redis.call('HEXISTS', members, id) == 1 then
    answer({k = 'again', m = id})
  else
    if not following(origin) then to_node(origin, snapshot({k = 'follow', r = R})) end
    local rec = add(a1)
    emit({k = 'join', m = id, rec = rec})
  end
elseif op == 'leave' or op == 'kick' then -- a1 the reason
  local rec = exists and redis.call('HGET', members, id)
  if not rec then return refuse('not_in_room') end
  remove(rec)
  emit({k = op, m = id, why = a1, rec = rec})
elseif op == 'rename' then -- a1 the new name
  local rec = exists and redis.call('HGET', members, id)
  if not rec then return refuse('not_in_room') end
  local who = cjson.decode(rec); who.name = a1; rec = cjson.encode(who)
  redis.call('HSET', members, id, rec)
  emit({k = 'rename', m = id, rec = rec})
elseif op == 'say' then -- a1 the text
  local rec = exists and redis.call('HGET', members, id)
  if not rec then return refuse('not_in_room') end
  post(a1, rec)
  emit({k = 'say', m = id, s = seq, x = a1})
elseif op == 'publish' then -- a1 the text, a2 the Idempotency-Key or ''
  if a2 ~= '' and exists then
    for _, old in ipairs(redis.call('ZRANGEBYSCORE', idemt, '-inf', now - idem_ttl)) do
      redis.call('HDEL', idem, old); redis.call('ZREM', idemt, old)
    end
    local first = redis.call('HGET', idem, a2)
    if first then return {'first', first, epoch} end
    if redis.call('ZCARD', idemt) >= idem_max then return {'refused', 'too_many_keys'} end
  end
  if a2 ~= '' and idem_max == 0 then return {'refused', 'too_many_keys'} end
  if not exists and not new_life() then return {'refused', 'rooms_full'} end
  local item = post(a1, nil)
  if a2 ~= '' then redis.call('HSET', idem, a2, item); redis.call('ZADD', idemt, now, a2) end
  emit({k = 'publish', s = seq, x = a1})
  result = {'ok', item, epoch}
elseif op == 'who' then -- the origin answers from its replica, or from this snapshot
  if following(origin) then answer({k = 'who'})
  elseif exists then answer(snapshot({k = 'who', found = '1'}))
  else answer({k = 'who'}) end
  return {'ok'}
elseif op == 'view' then -- the HTTP view of one room
  if not exists then return {'none'} end
  return {'ok', cjson.encode(snapshot({}))}
elseif op == 'reap' then -- a1 a lost node: its members leave, exactly once
  if redis.call('EXISTS', P .. ':node:{' .. a1 .. '}') == 1 then return {'alive'} end
  if exists then
    for _, rec in ipairs(redis.call('HVALS', members)) do
      if cjson.decode(rec).node == a1 then
        remove(rec)
        emit({k = 'leave', m = cjson.decode(rec).id, why = 'node_lost', rec = rec})
      end
    end
  end
  redis.call('HDEL', nodes, a1); redis.call('SREM', node_rooms(a1), R)
elseif op == 'resume' then -- a1 'epoch n' this node applied, a2 its members here, one record a line
  -- Answered in the reply, not on the node's channel: what it carries can be large,
  -- and the channel is what a node falling behind may have just been cut off from.
  local known_epoch, known_n = string.match(a1, '^(%S*) (%d+)$')
  known_n = tonumber(known_n)
  if exists and epoch == known_epoch and n >= known_n then -- nothing this node saw was lost
    local tail = redis.call('XRANGE', log, (known_n + 1) .. '-1', '+')
    if n == known_n or (tail[1] and tail[1][1] == (known_n + 1) .. '-1') then
      local entries = {}
      for _, e in ipairs(tail) do table.insert(entries, e[2][2]) end
      return {'tail', table.concat(entries, '\n')}
    end
    return {'follow', cjson.encode(snapshot({k = 'follow', r = R, resync = '1'}))} -- the log no longer reaches back
  end
  if not exists or epoch == known_epoch then
    if not new_life() then return {'refused', 'rooms_full'} end
  end
  for line in string.gmatch(a2, '[^\n]+') do
    local mid = cjson.decode(line).id
    if redis.call('HEXISTS', members, mid) == 0 then
      local rec = add(line)
      emit({k = 'rejoin', m = mid, rec = rec})
    end
  end
  result = {'follow', cjson.encode(snapshot({k = 'follow', r = R, resync = '1'}))}
else
  return redis.error_reply('unknown op ' .. op)
end

if exists then
  redis.call('HSET', meta, 'epoch', epoch, 'n', n, 'seq', seq, 'ms', now)
  if redis.call('HLEN', members) == 0 then -- empty: kept ROOM_TTL_MS from its last use
    if ttl == 0 then
      redis.call('DEL', meta, members, hist, log, nodes, idem, idemt)
      redis.call('ZREM', P .. ':rooms', R); redis.call('ZREM', P .. ':idle', R)
    else
      redis.call('HSET', meta, 'idle', '1')
      redis.call('ZADD', P .. ':idle', now + ttl, R)
      for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl) end
    end
  elseif m[5] then -- occupied again: kept for good while it is
    redis.call('HDEL', meta, 'idle')
    redis.call('ZREM', P .. ':idle', R)
    for _, k in ipairs(KEYS) do redis.call('PERSIST', k) end
  end
end
return result
