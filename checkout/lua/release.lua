-- End an unpaid order and give its stock back: reserved -> available, the
-- user's count down, deadline and paying entries removed.
-- KEYS: 1 stock, 2 bought, 3 order, 4 deadlines, 5 paying index
-- ARGV: 1 toState (expired | payment_failed | cancelled), 2 reason, 3 nowMs, 4 allowed from-states (comma-separated)
-- Returns {status, state} (released | wrong_state | not_found), then with released the order's user and qty
local o = redis.call('HMGET', KEYS[3], 'state', 'qty', 'user', 'id')
local st = o[1]
if not st then return {'not_found', ''} end
if not string.find(',' .. ARGV[4] .. ',', ',' .. st .. ',', 1, true) then return {'wrong_state', st} end
local qty = tonumber(o[2])
redis.call('HINCRBY', KEYS[1], 'reserved', -qty)
redis.call('HINCRBY', KEYS[1], 'available', qty)
if redis.call('HINCRBY', KEYS[2], o[3], -qty) <= 0 then redis.call('HDEL', KEYS[2], o[3]) end
redis.call('HSET', KEYS[3], 'state', ARGV[1], 'reason', ARGV[2], 'endedAt', ARGV[3], 'updatedAt', ARGV[3])
redis.call('ZREM', KEYS[4], o[4])
redis.call('ZREM', KEYS[5], o[4])
return {'released', ARGV[1], o[3], tostring(qty)}
