-- A captured payment for an order: reserved -> sold and the order paid.
-- A capture for an order that already expired or failed (its stock was
-- released) never revives stock silently (I9): it is re-reserved when stock
-- remains, the shopper's purchase limit allows it and the caller does, else
-- flagged for a refund; both counted.
-- KEYS: 1 stock, 2 bought, 3 order, 4 deadlines, 5 paying index, 6 counters
-- ARGV: 1 paymentRef, 2 amount, 3 nowMs, 4 allowReReserve (1/0), 5 channel
-- Returns {status, state, order fields...}: paid | duplicate | double_capture | late_rereserved | late_refund | amount_mismatch | not_found,
-- or double_capture_again | late_refund_again: the same extra or late capture seen again (another
-- checkout instance, or a later pass, found it before its refund went through): refund, count once.
local o = redis.call('HMGET', KEYS[3], 'state', 'qty', 'amount', 'paymentRef', 'user', 'id', 'extraCapture', 'lateCapture')
local st = o[1]
if not st then return {'not_found', ''} end
-- Answer with the order as it is now, so the caller needs no second read.
local function answer(status, state)
  local r = redis.call('HGETALL', KEYS[3])
  table.insert(r, 1, state)
  table.insert(r, 1, status)
  return r
end
local qty = tonumber(o[2])
local id = o[6]
if tonumber(ARGV[2]) ~= tonumber(o[3]) then
  redis.call('HINCRBY', KEYS[6], 'amount_mismatch', 1)
  return answer('amount_mismatch', st)
end
if st == 'paid' or st == 'refunded' then
  if o[4] == ARGV[1] then return answer('duplicate', st) end
  if o[7] == ARGV[1] then return answer('double_capture_again', st) end
  redis.call('HINCRBY', KEYS[6], 'double_capture', 1)
  redis.call('HSET', KEYS[3], 'extraCapture', ARGV[1])
  return answer('double_capture', st)
end
if st == 'pending_payment' or st == 'paying' then
  redis.call('HINCRBY', KEYS[1], 'reserved', -qty)
  redis.call('HINCRBY', KEYS[1], 'sold', qty)
  redis.call('HSET', KEYS[3], 'state', 'paid', 'paymentRef', ARGV[1], 'paidChannel', ARGV[5], 'paidAt', ARGV[3], 'updatedAt', ARGV[3], 'reason', '')
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  return answer('paid', 'paid')
end
-- expired, cancelled or payment_failed: the reservation is gone. Re-reserve
-- only within the per-user limit: the shopper may have bought the unit again
-- with another order meanwhile (I4), and then this payment is refunded.
local s = redis.call('HMGET', KEYS[1], 'available', 'limit')
local available = tonumber(s[1])
local limit = tonumber(s[2] or '0')
local within = true
if limit > 0 then
  local have = tonumber(redis.call('HGET', KEYS[2], o[5]) or '0')
  within = have + qty <= limit
end
if ARGV[4] == '1' and available >= qty and within then
  redis.call('HINCRBY', KEYS[1], 'available', -qty)
  redis.call('HINCRBY', KEYS[1], 'sold', qty)
  redis.call('HINCRBY', KEYS[2], o[5], qty)
  redis.call('HSET', KEYS[3], 'state', 'paid', 'paymentRef', ARGV[1], 'paidChannel', ARGV[5], 'paidAt', ARGV[3], 'updatedAt', ARGV[3], 'lateFrom', st, 'reason', 'late_payment_rereserved')
  redis.call('HINCRBY', KEYS[6], 'late_rereserved', 1)
  return answer('late_rereserved', 'paid')
end
if o[8] == ARGV[1] then return answer('late_refund_again', st) end
redis.call('HSET', KEYS[3], 'lateCapture', ARGV[1], 'updatedAt', ARGV[3])
redis.call('HINCRBY', KEYS[6], 'late_refund', 1)
return answer('late_refund', st)
