// `flashcrowd checkout`: the reference checkout with its Redis and mocks.
// Whatever is not given (Redis, mocks) is started here and stopped with it.
// With --instances N (N > 1), N checkout processes (children of this one,
// each a `flashcrowd checkout` given the Redis and the mocks) share them.
import { applyOverrides, defaultConfig, NAIVE_BEHAVIOURS } from '../checkout/config.ts';
import { startCheckout } from '../checkout/service.ts';
import { ValidationError } from '../mock-gateways/errors.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { UsageError } from './errors.ts';
import { startMocks } from './mocks.ts';
import { startRedis, type RedisHandle } from './redis.ts';
import { instancesOf, startCheckoutInstance, type RunningInstance } from './stack.ts';

export interface CheckoutCommandOptions {
  port: number;
  host: string;
  redis?: string;
  cluster: boolean;
  bank?: string;
  wallet?: string;
  coupon?: string;
  mode: 'naive' | 'hardened';
  set: string[];
  seed: number;
  adminRemote: boolean;
  publicUrl?: string;
  json?: boolean;
  /** Checkout processes on the one Redis and set of mocks (1-16, default 1). */
  instances?: number;
}

function checkUrl(name: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    const u = new URL(v);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new UsageError(`--${name} must be an http(s) URL, got "${v}"`);
  }
  return v;
}

export async function runCheckoutCommand(
  o: CheckoutCommandOptions,
  onSignals: (stop: () => Promise<void>) => void,
): Promise<void> {
  const given = {
    bank: checkUrl('bank', o.bank),
    wallet: checkUrl('wallet', o.wallet),
    coupon: checkUrl('coupon', o.coupon),
  };
  const publicUrl = checkUrl('public-url', o.publicUrl);
  const n = instancesOf(o.instances);
  if (n > 1 && publicUrl)
    throw new UsageError(
      '--public-url names one checkout; with --instances each instance is called back at its own address: drop one of them',
    );
  if (n > 1 && o.port > 0 && o.port + n - 1 > 65535)
    throw new UsageError(`--port ${o.port} with --instances ${n} runs past port 65535`);
  const some = Object.values(given).filter(Boolean).length;
  if (some > 0 && some < 3)
    throw new UsageError(
      'give all of --bank, --wallet and --coupon, or none (then the mocks start here)',
    );
  let redis: RedisHandle | undefined;
  let mocks: RunningService[] = [];
  const instances: RunningInstance[] = [];
  const stopAll = async () => {
    await Promise.all(instances.splice(0).map((x) => x.stop()));
    await Promise.all(mocks.map((m) => m.close()));
    await redis?.close();
  };
  try {
    const redisUrl = o.redis ?? (redis = await startRedis()).url;
    if (some === 0) mocks = await startMocks({ target: 'all', seed: o.seed });
    const urls =
      some === 0
        ? (Object.fromEntries(mocks.map((m) => [m.name, m.url])) as Record<
            'bank' | 'wallet' | 'coupon',
            string
          >)
        : (given as Record<'bank' | 'wallet' | 'coupon', string>);
    if (n > 1) {
      // A bad --set is told once, here, rather than by each child.
      checkSettings(o);
      for (let i = 0; i < n; i++)
        instances.push(
          await startCheckoutInstance(
            i,
            n,
            (port) => instanceArgs(o, redisUrl, urls, port),
            undefined,
            o.port > 0 ? o.port + i : 0,
          ),
        );
      onSignals(stopAll);
      printInstances(o, instances, redisUrl, urls, Boolean(redis), some === 0);
      return;
    }
    const co = await startCheckout({
      redisUrl,
      cluster: o.cluster,
      ...urls,
      mode: o.mode,
      set: o.set,
      port: o.port,
      host: o.host,
      adminRemote: o.adminRemote,
      publicUrl,
    }).catch((e) => {
      if (e instanceof ValidationError)
        throw new UsageError(
          `invalid --set:\n${e.errors.map((x) => `  ${x.field}: ${x.reason}`).join('\n')}`,
        );
      throw e;
    });
    // Ctrl-C is handled before anything is printed: whoever reads a line may stop it at once.
    onSignals(async () => {
      await co.close();
      await stopAll();
    });
    if (o.json)
      console.log(
        JSON.stringify({ checkout: co.url, checkouts: [co.url], redis: redisUrl, ...urls }),
      );
    else {
      console.log(
        `checkout ${co.url}   (${co.config.mode}; admin: ${co.url}/admin/sale, metrics: ${co.url}/metrics)`,
      );
      console.log(`redis    ${redisUrl}${redis ? ` (${redis.kind}, started for this run)` : ''}`);
      for (const [k, v] of Object.entries(urls))
        console.log(`${k.padEnd(8)} ${v}${some === 0 ? ' (mock, started here)' : ''}`);
      const on = Object.entries(co.config.features)
        .filter(([, v]) => v === true)
        .map(([k]) => k as keyof typeof co.config.features);
      const resilience = on.filter((k) => !NAIVE_BEHAVIOURS.includes(k));
      const mistakes = on.filter((k) => NAIVE_BEHAVIOURS.includes(k));
      console.log(
        resilience.length === 0
          ? '(every resilience feature is off: the naive build)'
          : `(features on: ${resilience.join(', ')})`,
      );
      if (mistakes.length) console.log(`(naive behaviours on: ${mistakes.join(', ')})`);
      console.log(
        'Seed a sale: curl -s -XPOST ' +
          co.url +
          '/admin/sale -H "content-type: application/json" -d \'{"skus":[{"id":"lipstick","price":9900,"stock":100,"limit":1}]}\'',
      );
      console.log('Ctrl-C stops everything started here.');
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** The arguments of one instance's `flashcrowd checkout` (the Redis and the mocks given). */
function instanceArgs(
  o: CheckoutCommandOptions,
  redisUrl: string,
  urls: Record<'bank' | 'wallet' | 'coupon', string>,
  port: number,
): string[] {
  return [
    'checkout',
    '--port',
    String(port),
    '--host',
    o.host,
    '--redis',
    redisUrl,
    ...(o.cluster ? ['--cluster'] : []),
    '--bank',
    urls.bank,
    '--wallet',
    urls.wallet,
    '--coupon',
    urls.coupon,
    '--mode',
    o.mode,
    ...o.set.flatMap((s) => ['--set', s]),
    ...(o.adminRemote ? ['--admin-remote'] : []),
  ];
}

function printInstances(
  o: CheckoutCommandOptions,
  instances: RunningInstance[],
  redisUrl: string,
  urls: Record<'bank' | 'wallet' | 'coupon', string>,
  redisStarted: boolean,
  mocksStarted: boolean,
) {
  const checkouts = instances.map((x) => x.url);
  if (o.json) {
    console.log(JSON.stringify({ checkout: checkouts[0], checkouts, redis: redisUrl, ...urls }));
    return;
  }
  for (const x of instances)
    console.log(`checkout ${x.url}   (${o.mode}; instance ${x.api.index}, pid ${x.pid() ?? '-'})`);
  console.log(`redis    ${redisUrl}${redisStarted ? ' (started for this run)' : ''}`);
  for (const [k, v] of Object.entries(urls))
    console.log(`${k.padEnd(8)} ${v}${mocksStarted ? ' (mock, started here)' : ''}`);
  console.log(
    `(${instances.length} instances on one Redis: state is in Redis, so any instance serves any order and its admin routes)`,
  );
  console.log('Ctrl-C stops everything started here.');
}

function checkSettings(o: CheckoutCommandOptions) {
  try {
    applyOverrides(defaultConfig(o.mode), o.set);
  } catch (e) {
    if (e instanceof ValidationError)
      throw new UsageError(
        `invalid --set:\n${e.errors.map((x) => `  ${x.field}: ${x.reason}`).join('\n')}`,
      );
    throw e;
  }
}
