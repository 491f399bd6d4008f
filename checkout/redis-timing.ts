// The checkout's Redis timings: every command the client sends, from the
// moment it is handed to the client (its wait in the offline queue or behind
// an auto-pipeline included) to its reply, observed in
// flashcrowd_checkout_redis_duration_seconds{op}. `op` is bounded: a Lua
// script's name (EVALSHA of a known script), one of REDIS_OPS, or `other`.
import { createHash } from 'node:crypto';
import type { Command } from 'ioredis';
import { SCRIPT_NAMES, type RedisClient } from './store.ts';

/** The commands timed under their own name; any other is `other`. */
export const REDIS_OPS: ReadonlySet<string> = new Set([
  'get',
  'set',
  'del',
  'incr',
  'pexpire',
  'hget',
  'hgetall',
  'hmget',
  'hset',
  'hdel',
  'hlen',
  'sadd',
  'smembers',
  'zadd',
  'zrem',
  'zcard',
  'zrangebyscore',
  'multi',
  'exec',
  'xadd',
  'xack',
  'xautoclaim',
  'xgroup',
  'xreadgroup',
  'scan',
  'ping',
]);

/** The `op` label of a command: its script's name, its own name, or `other`. */
export function opOf(name: string, firstArg: unknown): string {
  if (name === 'evalsha' || name === 'eval') {
    const arg = typeof firstArg === 'string' ? firstArg : String(firstArg ?? '');
    const sha = name === 'eval' ? createHash('sha1').update(arg).digest('hex') : arg;
    return SCRIPT_NAMES.get(sha) ?? 'other';
  }
  return REDIS_OPS.has(name) ? name : 'other';
}

/**
 * Time every command `client` sends (replies and errors alike) with
 * `observe(op, seconds)`. Only this client: a duplicate (the stream
 * consumer's blocking reader) is not timed.
 */
export function timeRedis(client: RedisClient, observe: (op: string, seconds: number) => void) {
  const send = client.sendCommand.bind(client) as (c: Command, ...rest: unknown[]) => unknown;
  (client as unknown as { sendCommand: typeof send }).sendCommand = (
    command: Command,
    ...rest: unknown[]
  ) => {
    const started = performance.now();
    const op = opOf(command.name, command.args[0]);
    const done = () => observe(op, (performance.now() - started) / 1000);
    command.promise.then(done, done);
    return send(command, ...rest);
  };
}
