-- Read a batch of orders in one round trip (the audit reads a whole sale this
-- way): one JSON text for the batch, which the client parses natively, instead
-- of a reply of its own per order and per field.
-- KEYS: the order hashes (one SKU's, so one hash tag and one cluster slot)
-- ARGV: the fields to read
-- Returns JSON: one array per key, the fields' values in ARGV's order (false
-- where a field, or the whole order, is missing).
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HMGET', key, unpack(ARGV))
end
return cjson.encode(out)
