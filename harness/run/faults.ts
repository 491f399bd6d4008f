// `flashcrowd run`, faults beyond the mocks (a preset's `faults`, docs/CHAOS.md
// "Faults beyond the mocks"): checked against what the run starts before
// anything starts; Toxiproxy put between the checkout and the dependencies the
// timeline cuts or slows (the stack's beforeCheckout hook, so the harness's
// own audit and scrapes keep the real URLs); the timeline played from the
// start of the traffic and ended with it; what it did, as bands and a check.
import { masterNodes, type RedisClient } from '../../checkout/store.ts';
import { UsageError } from '../errors.ts';
import {
  linksOf,
  faultProblems,
  restartsRedis,
  scaleFaults,
  type FaultStep,
  type Link,
} from '../faults/schema.ts';
import { FaultTimeline, type FaultActuators, type PlayedStep } from '../faults/timeline.ts';
import {
  noToxiproxyMessage,
  startToxiproxy,
  type ToxiProxy,
  type ToxiproxyServer,
} from '../faults/toxiproxy.ts';
import type { Preset } from '../preset.ts';
import type { CheckoutDeps, StackOptions } from '../stack.ts';

import type { BudgetResult, FaultBand } from '../summary.ts';
import { findTool, findToolIn, toolDirs } from '../tools.ts';
import { totalDurationS } from '../../scenarios/lib/shape.ts';
import type { RunOptions } from './options.ts';
import type { RunContext } from './preset.ts';
import { connectTargetRedis, type Target } from './target.ts';

/**
 * The preset's faults checked for one build, before anything starts: every
 * problem named by its step (`faults.2.instance: ...`), a usage error (exit 2).
 */
export function checkFaults(
  preset: Preset,
  build: Pick<Preset['checkout'], 'instances' | 'redisCluster'>,
  o: Pick<RunOptions, 'target' | 'redis' | 'redisCluster'>,
): void {
  const steps = preset.faults;
  if (!steps.length) return;
  const problems = faultProblems(steps, {
    startsCheckout: !o.target,
    instances: build.instances ?? 1,
    startsRedis: !o.target && !process.env.REDIS_URL && Boolean(findTool('redis-server')),
    reachesRedis: o.target ? Boolean(o.redis) : true,
    redisCluster: o.target ? o.redisCluster === true : build.redisCluster !== undefined,
    trafficMs: totalDurationS(preset.traffic.stages) * 1000,
  });
  if (problems.length)
    throw new UsageError(
      `preset ${preset.name}: its faults cannot be played here:\n  ${problems.join('\n  ')}`,
    );
  // Network faults need Toxiproxy: said now, not once the stack is up.
  if (linksOf(steps).length && !findToolIn('toxiproxy-server', toolDirs()))
    throw new UsageError(`preset ${preset.name}: ${noToxiproxyMessage()}`);
}

/** The faults of one run: the stack's hooks, the timeline, and its results. */
export interface FaultRig {
  /** What the stack needs: proxies in front of the links, Redis with its append-only file. */
  stackOptions: Pick<StackOptions, 'beforeCheckout' | 'redisAof'>;
  /** Play the timeline from `t0`, the engine's start instant (epoch ms). */
  start(target: Target, t0: number): void;
  /** End of traffic: end what is in force; the steps as played, and their bands added to `bands`. */
  stop(bands: FaultBand[]): Promise<PlayedStep[]>;
  close(): Promise<void>;
}

/** The rig for the run's faults; undefined when the preset has none. */
export function rigFaults(ctx: RunContext): FaultRig | undefined {
  const { r } = ctx;
  if (!r.preset.faults.length) return undefined;
  const steps = scaleFaults(r.preset.faults, r.timeScale);
  const links = linksOf(steps);
  let toxi: ToxiproxyServer | undefined;
  const proxies = new Map<Link, ToxiProxy>();
  let redis: RedisClient | undefined;
  let timeline: FaultTimeline | undefined;

  const beforeCheckout = async (real: CheckoutDeps): Promise<Partial<CheckoutDeps>> => {
    if (!links.length) return {};
    toxi = await startToxiproxy({ seed: r.seed, logDir: r.dir });
    if (!toxi.seeded)
      ctx.warnings.push(
        `toxiproxy-server ${toxi.version} is a stock release: its draws (toxicity, jitter) do not follow the seed; \`npm run setup\` builds the seeded one`,
      );
    const out: Partial<CheckoutDeps> = {};
    for (const link of links) {
      const u = new URL(real[link]);
      const p = await toxi.proxy(link, `${u.hostname}:${u.port}`);
      proxies.set(link, p);
      const via = new URL(u);
      via.host = p.listen;
      out[link] = link === 'redis' ? via.toString() : via.origin;
      ctx.print(`  proxy    ${link} via Toxiproxy ${p.listen}`);
    }
    return out;
  };

  return {
    stackOptions: {
      beforeCheckout,
      ...aofOf(ctx.build.redisPersistence, restartsRedis(steps)),
    },
    start(target, t0) {
      redis = target.urls.redis ? connectTargetRedis(target.urls) : undefined;
      // Its connection is cut when the timeline restarts Redis; it reconnects by itself.
      redis?.on('error', () => undefined);
      timeline = new FaultTimeline(steps, actuators(target, toxi, proxies, redis), ctx.print);
      timeline.start(t0);
    },
    async stop(bands) {
      if (!timeline) return [];
      const played = await timeline.stop();
      bands.push(...timeline.bands());
      return played;
    },
    async close() {
      redis?.disconnect();
      await toxi?.close();
    },
  };
}

/** The stack's Redis persistence: the build's, else the append-only file when the faults restart Redis. */
export function aofOf(
  persistence: 'everysec' | 'always' | 'none' | undefined,
  restarts: boolean,
): Pick<StackOptions, 'redisAof'> {
  const p = persistence ?? (restarts ? 'everysec' : 'none');
  return p === 'none' ? {} : { redisAof: p };
}

function actuators(
  target: Target,
  toxi: ToxiproxyServer | undefined,
  proxies: Map<Link, ToxiProxy>,
  redis: RedisClient | undefined,
): FaultActuators {
  const proxy = (link: Link) => {
    const p = proxies.get(link);
    if (!p) throw new Error(`no proxy on the link to ${link}`);
    return p;
  };
  const stack = target.stack;
  return {
    ...(toxi
      ? {
          network: {
            addToxic: (link, toxic) => toxi.addToxic(proxy(link), toxic),
            removeToxic: (link, name) => toxi.removeToxic(proxy(link), name),
            setEnabled: (link, enabled) => toxi.setEnabled(proxy(link), enabled),
          },
        }
      : {}),
    ...(stack
      ? {
          checkout: (i: number) => {
            const inst = stack.checkouts[i];
            if (!inst) throw new Error(`no checkout instance ${i}`);
            return { kill: () => inst.kill('SIGKILL'), restart: () => inst.restart() };
          },
        }
      : {}),
    ...(redis
      ? {
          redis: {
            restart: async (how: 'kill' | 'shutdown', downMs: number) => {
              if (!stack?.restartRedis) throw new Error('Redis was not started by the harness');
              await stack.restartRedis(how, downMs);
            },
            // On a Redis Cluster, every master.
            pause: async (ms: number, mode: 'all' | 'write') => {
              for (const node of mastersOf(redis))
                await node.call('CLIENT', 'PAUSE', String(ms), mode.toUpperCase());
            },
            unpause: async () => {
              for (const node of mastersOf(redis)) await node.call('CLIENT', 'UNPAUSE');
            },
          },
        }
      : {}),
  };
}

/** The Redis (on a cluster, every master) a pause acts on; none connected is the step's failure. */
function mastersOf(redis: RedisClient) {
  const nodes = masterNodes(redis);
  if (!nodes.length) throw new Error('no Redis master connected');
  return nodes;
}

/**
 * The check every run with faults makes: each step took effect (a fault that
 * did not happen must not let the run pass as if it had).
 */
export function faultsBudget(played: readonly PlayedStep[]): BudgetResult | undefined {
  if (!played.length) return undefined;
  const failed = played.filter((p) => p.fromS === null || p.error !== undefined);
  return {
    expr: 'faults.failed==0',
    metric: 'faults.failed',
    op: '==',
    threshold: 0,
    value: failed.length,
    ok: failed.length === 0,
    source: 'harness',
    note: failed.length
      ? failed
          .map(
            (p) => `faults.${p.step} (${p.target}: ${p.label}): ${p.error ?? 'never took effect'}`,
          )
          .join('; ')
      : `${played.length} fault step(s) played`,
  };
}

export type { FaultStep, PlayedStep };
