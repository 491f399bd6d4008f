-- A shopper's units of a bucketed SKU, across its buckets: the per-shopper
-- limit (I4) held before a reservation takes a unit from any bucket, given
-- back when the reservation fails or is released. One key per shopper and
-- SKU (its own hash tag, so the ledger spreads over the cluster too).
-- KEYS: 1 the ledger (a count)
-- ARGV: 1 qty (> 0: hold; < 0: give back), 2 limit (0: none)
-- Returns 1 (held or given back) | 0 (holding qty would pass the limit: nothing held)
local qty = tonumber(ARGV[1])
local n = redis.call('INCRBY', KEYS[1], qty)
if qty > 0 and tonumber(ARGV[2]) > 0 and n > tonumber(ARGV[2]) then
  n = redis.call('DECRBY', KEYS[1], qty)
  if n <= 0 then redis.call('DEL', KEYS[1]) end
  return 0
end
if n <= 0 then redis.call('DEL', KEYS[1]) end
return 1
