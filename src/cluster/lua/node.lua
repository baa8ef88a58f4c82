-- What is about nodes, not one room: heartbeats, finding lost nodes, member ids,
-- whispers (through the member directory), the list of rooms and its upkeep.
--
-- ARGV: 1 prefix, 2 op, 3 this node, then the op's own.
local P, op, me = ARGV[1], ARGV[2], ARGV[3]
local function nk(node, part) return P .. ':node:{' .. node .. '}' .. (part and (':' .. part) or '') end
local function to_node(node, fields) redis.call('PUBLISH', P .. ':node:' .. node, cjson.encode(fields)) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if op == 'beat' then -- 4 NODE_TIMEOUT_MS
  redis.call('SET', nk(me), now, 'PX', ARGV[4]); redis.call('SADD', P .. ':nodes', me)
  return 'ok'
elseif op == 'lost' then -- the registered nodes not heard from, each with its rooms
  local lost = {}
  for _, node in ipairs(redis.call('SMEMBERS', P .. ':nodes')) do
    if node ~= me and redis.call('EXISTS', nk(node)) == 0 then
      table.insert(lost, {node, redis.call('SMEMBERS', nk(node, 'rooms'))})
    end
  end
  return lost
elseif op == 'forget' then -- 4 a lost node whose every room was reaped
  local gone = ARGV[4]
  if redis.call('EXISTS', nk(gone)) == 1 or redis.call('SCARD', nk(gone, 'rooms')) > 0 then return 'not_yet' end
  for _, id in ipairs(redis.call('SMEMBERS', nk(gone, 'members'))) do redis.call('DEL', P .. ':member:{' .. id .. '}') end
  redis.call('DEL', nk(gone, 'members'), nk(gone, 'rooms')); redis.call('SREM', P .. ':nodes', gone)
  return 'ok'
elseif op == 'leaving' then -- this node stopped cleanly: nobody need reap it
  redis.call('DEL', nk(me), nk(me, 'members')); redis.call('SREM', P .. ':nodes', me)
  return 'ok'
elseif op == 'ids' then -- 4 block size, 5 floor (now in µs): the block's last id
  if tonumber(redis.call('GET', P .. ':ids') or '0') < tonumber(ARGV[5]) then redis.call('SET', P .. ':ids', ARGV[5]) end
  return redis.call('INCRBY', P .. ':ids', ARGV[4])
elseif op == 'connect' then -- 4 id, 5 the member's record
  redis.call('SET', P .. ':member:{' .. ARGV[4] .. '}', me .. '\t' .. ARGV[5])
  redis.call('SADD', nk(me, 'members'), ARGV[4])
  return 'ok'
elseif op == 'disconnect' then -- 4 id
  redis.call('DEL', P .. ':member:{' .. ARGV[4] .. '}')
  redis.call('SREM', nk(me, 'members'), ARGV[4])
  return 'ok'
elseif op == 'barrier' then -- 4 ask: answered in order with this node's other asks
  to_node(me, {k = 'barrier', a = ARGV[4]})
  return 'ok'
elseif op == 'whisper' then -- 4 deadline, 5 ask, 6 to, 7 from record, 8 text
  if now > tonumber(ARGV[4]) then return 'late' end
  local entry = redis.call('GET', P .. ':member:{' .. ARGV[6] .. '}')
  local node, to
  if entry then node, to = string.match(entry, '^([^\t]*)\t(.*)$') end
  if not node or redis.call('EXISTS', nk(node)) == 0 then
    to_node(me, {k = 'refused', a = ARGV[5], err = 'unknown_member', m = ARGV[6]})
    return 'unknown'
  end
  local e = {k = 'whisper', m = ARGV[6], to = to, from = ARGV[7], x = ARGV[8], ms = now}
  if node ~= me then to_node(node, e) end
  e.a = ARGV[5]; to_node(me, e)
  return 'ok'
elseif op == 'rooms' then -- 4 ask or '', 5 '-' or '(<after>', 6 limit, 7 members listed per room
  local out = {}
  local per = tonumber(ARGV[7])
  for _, r in ipairs(redis.call('ZRANGEBYLEX', P .. ':rooms', ARGV[5], '+', 'LIMIT', 0, tonumber(ARGV[6]) + 1)) do
    local mk = P .. ':{' .. r .. '}:members'
    if redis.call('EXISTS', P .. ':{' .. r .. '}:meta') == 1 then
      local listed = ''
      if per > 0 then listed = table.concat(redis.call('HVALS', mk), '\n') end
      table.insert(out, r .. '\t' .. redis.call('HLEN', mk) .. '\t' .. listed)
    end
  end
  local list = table.concat(out, '\r')
  if ARGV[4] ~= '' then to_node(me, {k = 'rooms', a = ARGV[4], list = list}) end
  return list
elseif op == 'sweep' then -- the rooms whose keys expired leave the index; the count
  for _, r in ipairs(redis.call('ZRANGEBYSCORE', P .. ':idle', '-inf', now, 'LIMIT', 0, 1000)) do
    if redis.call('EXISTS', P .. ':{' .. r .. '}:meta') == 0 then
      redis.call('ZREM', P .. ':rooms', r); redis.call('ZREM', P .. ':idle', r)
    end
  end
  return redis.call('ZCARD', P .. ':rooms')
end
return redis.error_reply('unknown op ' .. op)
