-- Reserve stock for a new order, atomically: per-user limit, stock, order
-- record, payment deadline, user index and idempotency key, in one slot
-- (every key shares the SKU's hash tag {sku:ID}).
-- KEYS: 1 stock, 2 bought, 3 order, 4 deadlines, 5 user's orders, 6 idempotency key
-- ARGV: 1 orderId, 2 sku, 3 user, 4 qty, 5 nowMs, 6 deadlineMs, 7 useIdem (1/0),
--       8 idemTtlMs, 9 payload hash, 10 coupon, 11 discount, 12 channel,
--       13 checked (1: the caller checked stock and limit in an earlier round trip and this
--          script takes the stock without looking again: the naive splitStockCheck, which oversells)
--       14 bucket ('': the SKU has one bucket; else this bucket's number, recorded on the order,
--          and the shopper's limit is held across buckets by limit_ledger.lua, not checked here)
-- Returns {status, orderId, amount, order fields...} (fields only with ok): ok | replay | idem_mismatch | unknown_sku | sold_out | limit_exceeded
local qty = tonumber(ARGV[4])
if ARGV[7] == '1' then
  local existing = redis.call('GET', KEYS[6])
  if existing then
    local sep = string.find(existing, '|', 1, true)
    local id = string.sub(existing, 1, sep - 1)
    if string.sub(existing, sep + 1) ~= ARGV[9] then return {'idem_mismatch', id, ''} end
    return {'replay', id, ''}
  end
end
local s = redis.call('HMGET', KEYS[1], 'available', 'limit', 'price')
if not s[1] then return {'unknown_sku', '', ''} end
local available = tonumber(s[1])
local limit = tonumber(s[2] or '0')
local price = tonumber(s[3] or '0')
if ARGV[13] ~= '1' then
  if available < qty then return {'sold_out', '', ''} end
  if limit > 0 and ARGV[14] == '' then
    local have = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0')
    if have + qty > limit then return {'limit_exceeded', '', ''} end
  end
end
redis.call('HINCRBY', KEYS[1], 'available', -qty)
redis.call('HINCRBY', KEYS[1], 'reserved', qty)
redis.call('HINCRBY', KEYS[2], ARGV[3], qty)
local amount = price * qty - tonumber(ARGV[11])
if amount < 1 then amount = 1 end
redis.call('HSET', KEYS[3],
  'id', ARGV[1], 'sku', ARGV[2], 'user', ARGV[3], 'qty', qty, 'amount', amount,
  'coupon', ARGV[10], 'discount', ARGV[11], 'channel', ARGV[12], 'state', 'pending_payment',
  'createdAt', ARGV[5], 'updatedAt', ARGV[5], 'deadline', ARGV[6], 'attempts', 0)
if ARGV[14] ~= '' then redis.call('HSET', KEYS[3], 'bucket', ARGV[14]) end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
if ARGV[7] == '1' then
  redis.call('SET', KEYS[6], ARGV[1] .. '|' .. ARGV[9], 'PX', ARGV[8])
end
local order = redis.call('HGETALL', KEYS[3])
table.insert(order, 1, tostring(amount))
table.insert(order, 1, ARGV[1])
table.insert(order, 1, 'ok')
return order
