-- Move an order into paying before calling a gateway, and return it.
-- KEYS: 1 order, 2 paying index (zset orderId -> since)
-- ARGV: 1 nowMs, 2 channel ('' keeps the order's), 3 allowConcurrent (1: a second pay while paying is let through, the naive way),
--       4 leaseUntilMs: until when the pay call that starts now may still answer (0: no lease); no
--         checkout instance settles the order before then (the reconciler skips a leased order)
-- Returns {status, field, value, ...}: ok | in_progress | wrong_state | not_found, then the order's fields
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'not_found'} end
local function answer(status)
  local r = redis.call('HGETALL', KEYS[1])
  table.insert(r, 1, status)
  return r
end
if st == 'paying' and ARGV[3] ~= '1' then return answer('in_progress') end
if st ~= 'pending_payment' and st ~= 'paying' then return answer('wrong_state') end
local id = redis.call('HGET', KEYS[1], 'id')
redis.call('HSET', KEYS[1], 'state', 'paying', 'payStartedAt', ARGV[1], 'updatedAt', ARGV[1])
if ARGV[4] and ARGV[4] ~= '0' and ARGV[4] ~= '' then
  -- A second concurrent pay (naive reclick) keeps the later of the two leases.
  local held = tonumber(redis.call('HGET', KEYS[1], 'payLeaseUntil') or '0')
  if tonumber(ARGV[4]) > held then redis.call('HSET', KEYS[1], 'payLeaseUntil', ARGV[4]) end
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'channel', ARGV[2]) end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZADD', KEYS[2], ARGV[1], id)
return answer('ok')
