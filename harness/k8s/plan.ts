// `flashcrowd k8s`, the plan: the command's options checked (exit 2 on bad
// input), and what every manifest is made from: the preset at its variant,
// seed and scales, the checkout build, the names, ports and URLs of the
// objects inside the cluster.
import { randomUUID } from 'node:crypto';
import { UsageError } from '../errors.ts';
import { loadPreset, resolvePreset, type Preset, type ResolvedPreset } from '../preset.ts';
import { checkFaults } from '../run/faults.ts';
import { buildOf, variantsOf } from '../run/preset.ts';
import { flashcrowdVersion } from '../tools.ts';

export interface K8sOptions {
  preset: string;
  runners: number;
  instances?: number;
  out?: string;
  image?: string;
  namespace: string;
  redisUrl?: string;
  variant?: string;
  seed: number;
  timeScale?: number;
  loadScale?: number;
}

/** The ports of the containers, as docker-compose.yml has them (the harness's for its runners). */
export const PORTS = {
  checkout: 8100,
  bank: 8101,
  wallet: 8102,
  coupon: 8103,
  redis: 6379,
  harness: 7070,
} as const;

/** The objects' names (one namespace holds one testbed). */
export const NAMES = {
  secret: 'flashcrowd-admin',
  redis: 'redis',
  mocks: 'mocks',
  checkout: 'checkout',
  harness: 'harness',
  runners: 'runners',
  reports: 'reports',
  k6Script: 'k6-livestream',
  k6Seed: 'k6-seed-sale',
  k6Run: 'livestream',
} as const;

/** Where the harness Job writes its report (the reports volume). */
export const REPORTS_MOUNT = '/reports';

export interface K8sPlan {
  preset: Preset;
  variant?: string;
  seed: number;
  timeScale: number;
  loadScale: number;
  runners: number;
  /** The checkout's build: its mode and settings, its replicas. */
  build: ReturnType<typeof buildOf>;
  resolved: ResolvedPreset;
  image: string;
  namespace: string;
  /** The external Redis Cluster, or undefined: a Redis Deployment in the namespace. */
  redisCluster?: string;
  /** The admin routes' bearer token, for the Secret. */
  token: string;
}

export const defaultImage = () => `flashcrowd:${flashcrowdVersion()}`;

export function k8sPlan(o: K8sOptions, env = process.env): K8sPlan {
  if (!/^[a-z0-9-]+$/.test(o.preset))
    throw new UsageError(
      `${o.preset}: \`k8s\` takes a preset name from scenarios/presets (the image holds those; a preset file of your own is not in it)`,
    );
  const { preset } = loadPreset(o.preset);
  const variant = oneVariant(preset, o.variant);
  const checkoutBuild = buildOf(
    preset,
    preset.variants?.find((v) => v.name === variant),
    o,
  );
  const redisCluster = o.redisUrl === undefined ? undefined : checkRedisUrl(o.redisUrl);
  // The harness loads what the namespace runs (`run --target`): faults that need
  // the harness to start the checkout or Redis cannot be played there.
  try {
    checkFaults(preset, checkoutBuild, {
      target: 'k8s',
      redis: 'k8s',
      redisCluster: redisCluster !== undefined,
    });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError(
      `${e.message}\n(on Kubernetes the harness Job loads the namespace's checkout with \`run --target\`)`,
    );
  }
  const timeScale = o.timeScale ?? preset.ci.timeScale;
  const loadScale = o.loadScale ?? preset.ci.loadScale;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(o.namespace))
    throw new UsageError(
      `--namespace ${o.namespace}: a Kubernetes namespace name (lower-case letters, digits and -, at most 63)`,
    );
  return {
    preset,
    ...(variant ? { variant } : {}),
    seed: o.seed,
    timeScale,
    loadScale,
    runners: o.runners,
    build: checkoutBuild,
    resolved: resolvePreset(preset, { seed: o.seed, timeScale, loadScale, variant }),
    image: o.image ?? defaultImage(),
    namespace: o.namespace,
    ...(redisCluster ? { redisCluster } : {}),
    token: env.FLASHCROWD_ADMIN_TOKEN || randomUUID(),
  };
}

/** The one variant a namespace runs (its checkout has one build): --variant, required when there are several. */
function oneVariant(preset: Preset, name: string | undefined): string | undefined {
  const vs = variantsOf(preset, name);
  if (vs.length > 1)
    throw new UsageError(
      `preset ${preset.name} has ${vs.length} variants, each its own checkout build, and the manifests deploy one: ` +
        `give --variant (${vs.map((v) => v?.name).join(', ')})`,
    );
  return vs[0]?.name;
}

function checkRedisUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new UsageError(
      `--redis-url must be a URL such as redis://redis-cluster:6379, got "${v}"`,
    );
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new UsageError(`--redis-url must be a redis:// or rediss:// URL, got "${v}"`);
  return v;
}

/** The URLs inside the namespace: each checkout replica by its StatefulSet name, the mocks, Redis, the harness. */
export function clusterUrls(plan: K8sPlan) {
  const checkouts = Array.from(
    { length: plan.build.instances },
    (_, i) => `http://${NAMES.checkout}-${i}.${NAMES.checkout}:${PORTS.checkout}`,
  );
  const mock = (port: number) => `http://${NAMES.mocks}:${port}`;
  return {
    checkouts,
    bank: mock(PORTS.bank),
    wallet: mock(PORTS.wallet),
    coupon: mock(PORTS.coupon),
    redis: plan.redisCluster ?? `redis://${NAMES.redis}:${PORTS.redis}`,
    harness: `http://${NAMES.harness}:${PORTS.harness}`,
  };
}

/** `--bank URL --wallet URL --coupon URL`: the mocks, as the checkout and the harness are both given them. */
export function gatewayArgs(plan: K8sPlan): string[] {
  const u = clusterUrls(plan);
  return ['--bank', u.bank, '--wallet', u.wallet, '--coupon', u.coupon];
}
