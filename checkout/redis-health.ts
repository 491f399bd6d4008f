// What the checkout answers while Redis is unreachable, restarting, loading or
// paused: a prompt 503 with a reason code, never a hang or a bare 500. A
// request that arrives while the client is not connected is refused at once;
// one whose Redis command fails mid-way (the connection dropped, the command
// timed out) is answered from the error.
import { HttpError } from '../mock-gateways/errors.ts';
import type { RedisClient } from './store.ts';

/** The reason codes of a 503 for Redis (docs/CHECKOUT.md, "Redis unavailable"). */
export type RedisReason = 'redis_unavailable' | 'redis_timeout';

// ioredis' own errors and Redis' refusals while it cannot serve.
const TIMEOUT = /^Command timed out/;
const UNAVAILABLE = [
  /^Reached the max retries per request limit/, // MaxRetriesPerRequestError
  /^Connection is closed/,
  /^Stream isn't writeable/,
  /^LOADING\b/,
  /^MASTERDOWN\b/,
  /^CLUSTERDOWN\b/,
  /^TRYAGAIN\b/,
  /^BUSY\b/,
  /^Failed to refresh slots cache/,
  /\bECONNREFUSED\b|\bECONNRESET\b|\bEPIPE\b|\bETIMEDOUT\b/,
];

/** The 503 reason of an error that says Redis cannot serve now; undefined for any other error. */
export function redisReason(err: unknown): RedisReason | undefined {
  if (!(err instanceof Error)) return undefined;
  if (err.name === 'MaxRetriesPerRequestError') return 'redis_unavailable';
  if (TIMEOUT.test(err.message)) return 'redis_timeout';
  if (UNAVAILABLE.some((re) => re.test(err.message))) return 'redis_unavailable';
  return undefined;
}

/** The 503 for a Redis that cannot serve (`detail`: what the client said). */
export function redisUnavailable(reason: RedisReason, detail: string): HttpError {
  return new HttpError(
    503,
    reason,
    reason === 'redis_timeout'
      ? `the checkout's Redis did not answer in time (${detail}); retry shortly`
      : `the checkout's Redis is unavailable (${detail}); retry shortly`,
  );
}

/** Whether the client is connected and ready (not connecting, reconnecting or loading). */
export function redisReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

/** Wait until the client is ready, or `ms` passed; true when ready. */
export async function waitForRedis(client: RedisClient, ms: number): Promise<boolean> {
  if (redisReady(client)) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(t);
      client.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const t = setTimeout(() => done(redisReady(client)), ms);
    client.on('ready', onReady);
  });
}

/**
 * Say once when the client loses Redis and once when it is back (ioredis
 * otherwise prints every failed reconnection as an unhandled error event).
 */
export function reportRedisOutages(client: RedisClient, log: (line: string) => void): void {
  let down = false;
  client.on('error', (e: Error) => {
    if (down) return;
    down = true;
    log(`[checkout] Redis: ${e.message}; answering 503 redis_unavailable until it is back`);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log('[checkout] Redis is back');
  });
}
