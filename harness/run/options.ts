// `flashcrowd run`, options: the command's options, and the checks made before
// anything is read, started or written (target URLs, scales).
import { isIP } from 'node:net';
import { UsageError } from '../errors.ts';
import { checkHostToken } from '../up.ts';
import type { EngineName } from '../engine/types.ts';
import type { Preset } from '../preset.ts';

export interface RunOptions {
  preset: string;
  seed: number;
  timeScale?: number;
  loadScale?: number;
  /** Use the preset's `ci` scales (short run) where --time-scale / --load-scale are not given. */
  ci: boolean;
  variant?: string;
  /** --mode: the checkout build of every run, instead of the preset's or the variant's mode. */
  mode?: 'naive' | 'hardened';
  /** --set KEY=VALUE: checkout settings on top of the preset's or variant's (docs/CHECKOUT.md). */
  set?: string[];
  /** --instances N: checkout processes, instead of the preset's or the variant's `checkout.instances`. */
  instances?: number;
  target?: string;
  bank?: string;
  wallet?: string;
  coupon?: string;
  redis?: string;
  /**
   * --redis-cluster: the harness starts a local Redis Cluster instead of one
   * Redis; with --target, the --redis URL is a node of a Redis Cluster (the
   * audit uses a cluster client).
   */
  redisCluster?: boolean;
  /** --redis-masters N: the local Redis Cluster's masters (default the preset's, else 3). */
  redisMasters?: number;
  allowRemoteTarget: boolean;
  /** --host ADDR: the address the started stack's mocks and checkout bind (default 127.0.0.1). */
  host?: string;
  /** --baseline DIR: a run whose metrics relative budgets (`pay.failure_rate<=baseline*1.1`) are judged against. */
  baseline?: string;
  /** Run each variant this many times and compare the repetitions with the first (default 1). */
  repeat?: number;
  /** false (--no-reset): do not reset the checkout and mocks first; a dirty target is a warning, not a refusal. */
  reset?: boolean;
  out?: string;
  budgets: string[];
  /** Longest wait for the system to settle after the traffic (seconds; default from the payment deadline). */
  quiescenceS?: number;
  progress: 'auto' | 'tty' | 'plain' | 'none';
  /** The load engine (default flashcrowd's own). */
  engine?: EngineName;
  /** Worker threads of flashcrowd's engine (default 1). */
  workers?: number;
  /** Spread flashcrowd's engine over N runner processes (`flashcrowd load --segment k/N`). */
  runners?: number;
  /** With runners: host:port the harness listens on for them (default 127.0.0.1 and a free port). */
  listen?: string;
  /** With runners: the longest wait for all of them to register (s, default 120). */
  runnerTimeoutS?: number;
  /** Ctrl-C: the load stops early (the run then reports what it saw). */
  signal?: AbortSignal;
  /** --k6-out VALUE (repeatable): k6 outputs, each forwarded as `k6 run --out VALUE` (--engine k6). */
  k6Out?: string[];
  /** --metrics-port N: serve the run's own metrics (shoppers, arrivals, stock, faults) for Prometheus on 127.0.0.1:N. */
  metricsPort?: number;
}

/** Where the run's lines for a person go (console.log unless a test listens). */
export type Print = (line: string) => void;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** An http(s) URL on loopback (unless remote targets are allowed), without its trailing slash. */
export function checkUrl(flag: string, v: string, allowRemote: boolean): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new UsageError(`${flag} must be a URL, got "${v}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`${flag} must be an http(s) URL, got "${v}"`);
  if (!allowRemote && !LOOPBACK_HOSTS.has(u.hostname))
    throw new UsageError(
      `${flag} ${v} is not a loopback address: a testbed must never load production by accident. ` +
        'Give --allow-remote-target if you mean it.',
    );
  return v.replace(/\/$/, '');
}

/** Refuse a target outside loopback, and mock or Redis URLs without --target. */
export function checkTargetFlags(o: RunOptions): void {
  for (const [flag, v] of [
    ...targetList(o.target).map((t) => ['--target', t] as const),
    ['--bank', o.bank],
    ['--wallet', o.wallet],
    ['--coupon', o.coupon],
  ] as const)
    if (v !== undefined) checkUrl(flag, v, o.allowRemoteTarget);
  if (!o.target && (o.bank || o.wallet || o.coupon || o.redis))
    throw new UsageError('--bank, --wallet, --coupon and --redis go with --target');
  if (o.host !== undefined) checkStackHost(o.host, o.target);
  if (o.target && o.redisCluster && !o.redis)
    throw new UsageError(
      '--redis-cluster with --target says the --redis URL is a node of a Redis Cluster: give --redis',
    );
  if (o.target && o.redisMasters !== undefined)
    throw new UsageError(
      '--redis-masters sizes the Redis Cluster the harness starts; with --target your cluster has its own masters: drop it',
    );
  if (o.target && (o.mode || o.set?.length || o.instances !== undefined))
    throw new UsageError(
      '--mode, --set and --instances configure the checkout the harness starts; with --target, start your checkout with the build you want (`flashcrowd checkout --mode ... --set ... --instances N`)',
    );
}

/** --target: one checkout URL, or its instances comma-separated (each shopper sticks to one). */
export function targetList(target: string | undefined): string[] {
  return target === undefined ? [] : target.split(',').map((t) => t.trim());
}

/**
 * --host: an IP address of this host for the started stack, which the load
 * (runners on other hosts) is given as its URLs, so not a wildcard; outside
 * loopback only with FLASHCROWD_ADMIN_TOKEN (`up --host`'s rule).
 */
function checkStackHost(host: string, target: string | undefined): void {
  if (target)
    throw new UsageError('--host binds the stack the run starts; with --target it starts none');
  const ip = host.replace(/^\[|\]$/g, '');
  if (!isIP(ip) || ip === '0.0.0.0' || ip === '::')
    throw new UsageError(
      `--host must be an IP address of this host that the load generators reach (e.g. 10.0.0.5), got "${host}": ` +
        'the checkout and mock URLs the runners are given are made from it, so not a name or a wildcard address',
    );
  checkHostToken('run', host);
}

/** --time-scale and --load-scale, else the preset's `ci` scales with --ci, else 1. */
export function runScales(o: RunOptions, preset: Preset): { timeScale: number; loadScale: number } {
  const timeScale = o.timeScale ?? (o.ci ? preset.ci.timeScale : 1);
  const loadScale = o.loadScale ?? (o.ci ? preset.ci.loadScale : 1);
  if (!(timeScale > 0 && timeScale <= 1))
    throw new UsageError(`--time-scale must be above 0 and at most 1 (got ${timeScale})`);
  if (!(loadScale > 0 && loadScale <= 100))
    throw new UsageError(`--load-scale must be above 0 and at most 100 (got ${loadScale})`);
  return { timeScale, loadScale };
}
