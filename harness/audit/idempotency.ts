// I10, idempotency: the same key replays the same answer, another payload
// under it is 422, one still running is 409. Nothing in Redis or the ledgers
// shows a replay, so the audit leaves it undecided; test/checkout-orders.test.ts
// probes it over HTTP.
import { undecided } from './breaks.ts';
import type { InvariantResult } from './report.ts';

export function idempotencyResult(): InvariantResult {
  return undecided(
    'I10',
    'not observable from Redis and the ledgers: idempotent replays, 422 on another payload and 409 while running are probed over HTTP (test/checkout-orders.test.ts)',
  );
}
