-- Change an order's state without touching stock (e.g. paying -> pending_payment
-- after a naive failure, or paid -> refunded), validating the from-state.
-- KEYS: 1 order, 2 paying index
-- ARGV: 1 toState, 2 reason, 3 nowMs, 4 allowed from-states (comma-separated),
--       5 endLease (1: the pay call holding the order's lease has answered: drop payLeaseUntil)
-- Returns {status, state}: ok | wrong_state | not_found
local o = redis.call('HMGET', KEYS[1], 'state', 'id')
local st = o[1]
if not st then return {'not_found', ''} end
if not string.find(',' .. ARGV[4] .. ',', ',' .. st .. ',', 1, true) then return {'wrong_state', st} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'updatedAt', ARGV[3])
if ARGV[1] ~= 'paying' then redis.call('ZREM', KEYS[2], o[2]) end
if ARGV[5] == '1' then redis.call('HDEL', KEYS[1], 'payLeaseUntil') end
return {'ok', ARGV[1]}
