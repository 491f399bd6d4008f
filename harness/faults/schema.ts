// A preset's `faults`: the timeline of faults beyond the mocks (docs/CHAOS.md,
// "Faults beyond the mocks"), played by the harness from the start of the
// traffic: network toxics on the links from the checkout to Redis and to each
// gateway (Toxiproxy), a link cut, a checkout instance killed and restarted,
// Redis restarted or paused. Offsets and durations are at time-scale 1 and
// scaled like the mocks' chaos; a toxic's own attributes (latency, rates) are
// real and stay as written.
import { z } from 'zod';
import { toxicSchema } from './toxiproxy.ts';

/** Links the harness can put a proxy on: from the checkout to each dependency. */
export const LINKS = ['redis', 'bank', 'wallet', 'coupon'] as const;
export type Link = (typeof LINKS)[number];

const ms = z.number().int().min(0).max(86_400_000);
const span = z.number().int().min(1).max(86_400_000);
const link = z.enum(LINKS);

export const toxicStepSchema = z
  .object({
    action: z.literal('toxic'),
    atMs: ms,
    /** How long the toxic stays; none: until the traffic ends. */
    durationMs: span.optional(),
    link,
    toxic: toxicSchema,
  })
  .strict();

export const downStepSchema = z
  .object({
    action: z.literal('down'),
    atMs: ms,
    durationMs: span.optional(),
    /** The proxy is disabled: new connections are refused, open ones closed. */
    link,
  })
  .strict();

export const killStepSchema = z
  .object({
    action: z.literal('kill'),
    atMs: ms,
    target: z.literal('checkout'),
    /** Which instance (0-based, of `checkout.instances`). */
    instance: z.number().int().min(0).max(63).default(0),
    /** Start it again on the same port this long after the kill; none: it stays down. */
    restartAfterMs: ms.optional(),
  })
  .strict();

export const restartStepSchema = z
  .object({
    action: z.literal('restart'),
    atMs: ms,
    target: z.literal('redis'),
    /** `kill`: SIGKILL, a crash; `shutdown`: SHUTDOWN, a clean stop that flushes the append-only file. */
    how: z.enum(['kill', 'shutdown']).default('kill'),
    /** How long Redis stays down before it starts again from its append-only file. */
    downMs: ms.default(0),
  })
  .strict();

export const pauseStepSchema = z
  .object({
    action: z.literal('pause'),
    atMs: ms,
    durationMs: span,
    target: z.literal('redis'),
    /** CLIENT PAUSE's mode: `all` holds every command, `write` only the writes. */
    mode: z.enum(['all', 'write']).default('all'),
  })
  .strict();

export const faultStepSchema = z.discriminatedUnion('action', [
  toxicStepSchema,
  downStepSchema,
  killStepSchema,
  restartStepSchema,
  pauseStepSchema,
]);
export const faultsSchema = z.array(faultStepSchema).max(100).default([]);

export type FaultStep = z.infer<typeof faultStepSchema>;
export type ToxicStep = z.infer<typeof toxicStepSchema>;
export type KillStep = z.infer<typeof killStepSchema>;

/** The links a timeline acts on: each gets a proxy between the checkout and the dependency. */
export function linksOf(steps: readonly FaultStep[]): Link[] {
  const used = new Set<Link>();
  for (const s of steps) if (s.action === 'toxic' || s.action === 'down') used.add(s.link);
  return LINKS.filter((l) => used.has(l));
}

/** Whether the timeline restarts Redis (Redis then runs with its append-only file). */
export const restartsRedis = (steps: readonly FaultStep[]) =>
  steps.some((s) => s.action === 'restart');

/** The timeline at a time-scale: every offset and duration multiplied (spans at least 1 ms). */
export function scaleFaults(steps: readonly FaultStep[], ts: number): FaultStep[] {
  const at = (v: number) => Math.round(v * ts);
  const len = (v: number) => Math.max(1, Math.round(v * ts));
  return steps.map((s) => {
    switch (s.action) {
      case 'toxic':
      case 'down':
        return {
          ...s,
          atMs: at(s.atMs),
          ...(s.durationMs === undefined ? {} : { durationMs: len(s.durationMs) }),
        };
      case 'kill':
        return {
          ...s,
          atMs: at(s.atMs),
          ...(s.restartAfterMs === undefined ? {} : { restartAfterMs: at(s.restartAfterMs) }),
        };
      case 'restart':
        return { ...s, atMs: at(s.atMs), downMs: at(s.downMs) };
      case 'pause':
        return { ...s, atMs: at(s.atMs), durationMs: len(s.durationMs) };
    }
  });
}

/** What the harness has to act on; each step is checked against it before anything starts. */
export interface FaultScope {
  /** The harness starts the checkout (not --target): it can proxy its links and kill it. */
  startsCheckout: boolean;
  /** Checkout instances the harness starts. */
  instances: number;
  /** The harness starts Redis (not REDIS_URL, not --target): it can restart it. */
  startsRedis: boolean;
  /** A Redis URL the harness can reach (to pause it). */
  reachesRedis: boolean;
  /**
   * The Redis is a Redis Cluster: its masters are not restarted (one master
   * down is a failover question, not a restart), and the checkout's cluster
   * client finds the nodes by their own addresses, past any proxy on the link.
   */
  redisCluster?: boolean;
  /** Traffic length at time-scale 1, ms: a step must start before it ends. */
  trafficMs: number;
}

/**
 * Problems of a timeline in a scope, each naming the step (`faults.2.instance:
 * ...`): a step after the traffic, a link or process the harness does not
 * start. Empty: it can be played.
 */
export function faultProblems(steps: readonly FaultStep[], scope: FaultScope): string[] {
  const out: string[] = [];
  steps.forEach((s, i) => {
    const at = `faults.${i}`;
    if (s.atMs >= scope.trafficMs)
      out.push(
        `${at}.atMs: ${s.atMs} is not before the end of the traffic (${scope.trafficMs} ms at time-scale 1)`,
      );
    switch (s.action) {
      case 'toxic':
      case 'down':
        if (scope.redisCluster && s.link === 'redis')
          out.push(
            `${at}.link: a ${s.action} on the link to a Redis Cluster: not supported (the checkout's cluster client reaches every master at the address the cluster gives, not through a proxy); run it on one Redis`,
          );
        if (!scope.startsCheckout)
          out.push(
            `${at}.link: a ${s.action} on the checkout's link to ${s.link} needs the harness to start the checkout (it puts a proxy there); with --target it does not`,
          );
        break;
      case 'kill':
        if (!scope.startsCheckout)
          out.push(
            `${at}.target: kill of a checkout the harness did not start (--target): it only kills processes it started`,
          );
        else if (s.instance >= scope.instances)
          out.push(
            `${at}.instance: ${s.instance}, but the harness starts ${scope.instances} checkout instance(s) (0-${scope.instances - 1}; checkout.instances)`,
          );
        break;
      case 'restart':
        if (scope.redisCluster)
          out.push(
            `${at}.target: restart of Redis on a Redis Cluster: not supported (its masters run without persistence, and restarting one is a failover the harness does not play); run it on one Redis`,
          );
        else if (!scope.startsRedis)
          out.push(
            `${at}.target: restart of a Redis the harness did not start (REDIS_URL, --target or a container): it only restarts processes it started`,
          );
        break;
      case 'pause':
        if (!scope.reachesRedis)
          out.push(`${at}.target: pause of Redis, but the run knows no Redis URL (give --redis)`);
        break;
    }
  });
  return out;
}
