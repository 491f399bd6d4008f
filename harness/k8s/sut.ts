// `flashcrowd k8s`, the system under test: the namespace, the admin token's
// Secret, Redis (unless an external Redis Cluster is given), the three mock
// gateways and the checkout, with docker-compose.yml's commands and ports.
// The checkout is a StatefulSet behind a headless Service: the harness scrapes
// and resets each replica at its own address (checkout-0.checkout, ...), and
// each shopper sticks to one replica, drawn from the seed, as on one machine.
import { clusterUrls, gatewayArgs, NAMES, PORTS, type K8sPlan } from './plan.ts';
import {
  flashcrowdContainer,
  healthProbe,
  labels,
  meta,
  podTemplate,
  service,
  type Manifest,
} from './objects.ts';

export function namespace(plan: K8sPlan): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: plan.namespace, labels: labels('testbed') },
  };
}

/** The admin routes' bearer token (FLASHCROWD_ADMIN_TOKEN when `k8s` ran, else a random one). */
export function adminSecret(plan: K8sPlan): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(plan, NAMES.secret, 'testbed'),
    type: 'Opaque',
    stringData: { token: plan.token },
  };
}

/** Redis as compose runs it (no persistence), or nothing with --redis-url. */
export function redis(plan: K8sPlan): Manifest[] {
  if (plan.redisCluster) return [];
  const container = {
    name: 'redis',
    image: 'redis:7-alpine',
    args: ['redis-server', '--save', '', '--appendonly', 'no'],
    ports: [{ name: 'redis', containerPort: PORTS.redis }],
    readinessProbe: {
      exec: { command: ['redis-cli', 'ping'] },
      periodSeconds: 2,
      failureThreshold: 15,
    },
  };
  return [
    deployment(plan, NAMES.redis, container),
    service(plan, NAMES.redis, { redis: PORTS.redis }),
  ];
}

/** bank, wallet and coupon in one pod, as compose's `mocks` service. */
export function mocks(plan: K8sPlan): Manifest[] {
  const ports = { bank: PORTS.bank, wallet: PORTS.wallet, coupon: PORTS.coupon };
  const args = [
    'mock',
    'all',
    '--host',
    '0.0.0.0',
    '--port',
    String(PORTS.bank),
    '--seed',
    String(plan.seed),
    '--time-scale',
    String(plan.timeScale),
    '--admin-remote',
  ];
  const container = flashcrowdContainer(
    plan,
    'mocks',
    { args },
    {
      ports: Object.entries(ports).map(([name, containerPort]) => ({ name, containerPort })),
      readinessProbe: healthProbe(Object.values(ports)),
    },
  );
  return [deployment(plan, NAMES.mocks, container), service(plan, NAMES.mocks, ports)];
}

/** The checkout's `flashcrowd checkout` arguments: the build of the preset (or variant) at the run's time-scale. */
export function checkoutArgs(plan: K8sPlan): string[] {
  const u = clusterUrls(plan);
  const set = Object.entries(plan.build.set).map(([k, v]) => `${k}=${v}`);
  if (!('timeScale' in plan.build.set)) set.push(`timeScale=${plan.timeScale}`);
  return [
    'checkout',
    '--host',
    '0.0.0.0',
    '--port',
    String(PORTS.checkout),
    '--redis',
    u.redis,
    ...(plan.redisCluster ? ['--cluster'] : []),
    ...gatewayArgs(plan),
    // Where the wallet sends its notifications: this replica, by its own name.
    '--public-url',
    `http://$(POD_NAME).${NAMES.checkout}:${PORTS.checkout}`,
    '--mode',
    plan.build.mode,
    ...set.flatMap((kv) => ['--set', kv]),
    '--admin-remote',
  ];
}

export function checkout(plan: K8sPlan): Manifest[] {
  const container = flashcrowdContainer(
    plan,
    'checkout',
    { args: checkoutArgs(plan) },
    {
      env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
      ports: [{ name: 'http', containerPort: PORTS.checkout }],
      readinessProbe: healthProbe([PORTS.checkout]),
    },
  );
  const set: Manifest = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(plan, NAMES.checkout),
    spec: {
      serviceName: NAMES.checkout,
      replicas: plan.build.instances,
      // The replicas start together: they share Redis and the mocks, not an order.
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: labels(NAMES.checkout) },
      template: podTemplate(NAMES.checkout, { containers: [container] }),
    },
  };
  // Headless: each replica has a DNS name of its own (checkout-0.checkout, ...).
  return [set, service(plan, NAMES.checkout, { http: PORTS.checkout }, { headless: true })];
}

function deployment(plan: K8sPlan, name: string, container: object): Manifest {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(plan, name),
    spec: {
      replicas: 1,
      selector: { matchLabels: labels(name) },
      template: podTemplate(name, { containers: [container] }),
    },
  };
}
