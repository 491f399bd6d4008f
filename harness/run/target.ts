// `flashcrowd run`, the target: the system under load. The embedded stack
// (Redis or a local Redis Cluster, the three mocks, the checkout built as the
// preset says), or the user's --target with the mocks and Redis it names.
// Every Redis client of the harness (audit, quiescence, faults) connects with
// connectTargetRedis: a cluster client when the target's Redis is a cluster.
import { ReplyError } from 'ioredis';
import { connectRedis, type RedisClient } from '../../checkout/store.ts';
import { UsageError } from '../errors.ts';
import { clusterBuildProblems, type Preset } from '../preset.ts';
import { startStack, type Stack, type StackOptions, type StackUrls } from '../stack.ts';
import { aofOf } from './faults.ts';
import { checkUrl, targetList, type RunOptions } from './options.ts';
import type { RunContext } from './preset.ts';

/** The mock gateways, in the order the run applies chaos, scrapes and reports. */
export const SERVICES = ['bank', 'wallet', 'coupon'] as const;
export type Service = (typeof SERVICES)[number];

export interface Target {
  urls: StackUrls;
  /** All three mocks known: chaos applies and the ledgers can be audited. */
  haveMocks: boolean;
  /** The stack this run started (undefined with --target). */
  stack?: Stack;
}

export async function startTarget(
  ctx: RunContext,
  /** From the faults stage (harness/run/faults.ts): proxies in front of the links, Redis with AOF. */
  extra: Pick<StackOptions, 'beforeCheckout' | 'redisAof'> = {},
): Promise<Target> {
  const { r, o, build } = ctx;
  if (o.target) {
    const urls = targetUrls(o, o.target);
    if (!urls.bank || !urls.wallet || !urls.coupon)
      ctx.warnings.push(
        '--target without --bank, --wallet and --coupon: no chaos applied, and the audit was skipped, so every invariant is undecided (invariants.broken counts them)',
      );
    if (urls.redis) await checkRedisKind(urls);
    ctx.print(
      `target: checkout ${urls.checkout} (the harness did not start it; --set and the preset's checkout build do not apply)`,
    );
    return { urls, haveMocks: haveMocks(urls) };
  }
  const set = [
    ...Object.entries(build.set).map(([k, v]) => `${k}=${v}`),
    // The checkout's own durations (payment deadline, sweeper, reconciler) follow the run's time-scale.
    ...(Object.keys(build.set).includes('timeScale') ? [] : [`timeScale=${r.timeScale}`]),
  ];
  const stack = await startStack({
    seed: r.seed,
    timeScale: r.timeScale,
    mode: build.mode,
    set,
    instances: build.instances,
    ...(build.redisCluster ? { redisCluster: build.redisCluster } : {}),
    logDir: r.dir,
    log: ctx.print,
    ...aofOf(build.redisPersistence, false),
    ...(o.host !== undefined ? { host: o.host } : {}),
    ...extra,
  });
  return { urls: stack.urls, haveMocks: haveMocks(stack.urls), stack };
}

function targetUrls(o: RunOptions, target: string): StackUrls {
  const allow = o.allowRemoteTarget;
  const checkouts = targetList(target).map((t) => checkUrl('--target', t, allow));
  return {
    checkout: checkouts[0]!,
    ...(checkouts.length > 1 ? { checkouts } : {}),
    bank: o.bank ? checkUrl('--bank', o.bank, allow) : '',
    wallet: o.wallet ? checkUrl('--wallet', o.wallet, allow) : '',
    coupon: o.coupon ? checkUrl('--coupon', o.coupon, allow) : '',
    redis: o.redis ?? '',
    ...(o.redisCluster ? { redisCluster: true } : {}),
  };
}

/** A client of the target's Redis for the harness: a cluster client on a Redis Cluster. */
export function connectTargetRedis(urls: StackUrls): RedisClient {
  return connectRedis(urls.redis, urls.redisCluster === true);
}

/**
 * The --redis of a --target is what --redis-cluster says it is (INFO cluster
 * `cluster_enabled`): a plain client on a cluster node is answered MOVED for
 * most keys, a cluster client on one Redis cannot start.
 */
async function checkRedisKind(urls: StackUrls): Promise<void> {
  const probe = connectRedis(urls.redis, false);
  probe.on('error', () => undefined);
  let info: string;
  try {
    info = await probe.info('cluster');
  } catch (e) {
    // INFO refused (an ACL, a renamed command): nothing to compare; the audit says what it can read.
    if (e instanceof ReplyError) return;
    throw new UsageError(`--redis ${urls.redis} does not answer: ${(e as Error).message}`);
  } finally {
    probe.disconnect();
  }
  const enabled = /cluster_enabled:1/.test(info);
  if (enabled && !urls.redisCluster)
    throw new UsageError(
      `--redis ${urls.redis} is a node of a Redis Cluster (cluster_enabled:1): give --redis-cluster, so that the audit reads it with a cluster client`,
    );
  if (!enabled && urls.redisCluster)
    throw new UsageError(
      `--redis-cluster, but --redis ${urls.redis} is not a Redis Cluster node (cluster_enabled:0): drop --redis-cluster`,
    );
}

/**
 * The Redis a build asks the harness to start, checked before anything
 * starts: a Redis Cluster has no persistence (exit 2 naming the field).
 */
export function checkStackRedis(
  preset: Preset,
  build: Preset['checkout'],
  o: Pick<RunOptions, 'target'>,
): void {
  if (o.target) return;
  const problems = clusterBuildProblems(build, 'checkout');
  if (problems.length)
    throw new UsageError(
      `preset ${preset.name}: ${problems.map((p) => `${p.field}: ${p.reason}`).join('; ')}`,
    );
}

const haveMocks = (urls: StackUrls) => Boolean(urls.bank && urls.wallet && urls.coupon);
