// `flashcrowd k8s`, the pieces every manifest is built from: metadata and
// labels, a Service, the flashcrowd container (the CLI image, its admin token
// from the Secret), probes. Plain objects: index.ts writes them as YAML.
import { NAMES, type K8sPlan } from './plan.ts';

/** One Kubernetes object. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export const labels = (component: string) => ({
  'app.kubernetes.io/name': 'flashcrowd',
  'app.kubernetes.io/component': component,
});

export const meta = (plan: K8sPlan, name: string, component = name) => ({
  name,
  namespace: plan.namespace,
  labels: labels(component),
});

/** A Service in front of a component's pods; headless (DNS per pod) when asked. */
export function service(
  plan: K8sPlan,
  name: string,
  ports: Record<string, number>,
  o: { headless?: boolean } = {},
): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(plan, name),
    spec: {
      ...(o.headless ? { clusterIP: 'None' } : {}),
      selector: labels(name),
      ports: Object.entries(ports).map(([portName, port]) => ({
        name: portName,
        port,
        targetPort: port,
      })),
    },
  };
}

/** The admin routes' token, from the Secret: the services require it off loopback, the harness sends it. */
export const tokenEnv = {
  name: 'FLASHCROWD_ADMIN_TOKEN',
  valueFrom: { secretKeyRef: { name: NAMES.secret, key: 'token' } },
};

/**
 * A container of the flashcrowd image running `flashcrowd ARGS` (its
 * entrypoint), or with `command` a command of its own (a shell line); the
 * token in its environment.
 */
export function flashcrowdContainer(
  plan: K8sPlan,
  name: string,
  run: { args: string[] } | { command: string[] },
  extra: { env?: object[]; [field: string]: unknown } = {},
) {
  const { env = [], ...rest } = extra;
  return {
    name,
    image: plan.image,
    imagePullPolicy: 'IfNotPresent',
    ...run,
    env: [tokenEnv, ...env],
    ...rest,
  };
}

/** Ready once GET /healthz answers on each port (the compose file's healthcheck, as an exec probe). */
export function healthProbe(ports: number[]) {
  const urls = ports.map((p) => `'http://127.0.0.1:${p}/healthz'`).join(', ');
  return {
    exec: {
      command: [
        'node',
        '-e',
        `Promise.all([${urls}].map((u) => fetch(u))).then((rs) => process.exit(rs.every((r) => r.ok) ? 0 : 1), () => process.exit(1))`,
      ],
    },
    periodSeconds: 2,
    timeoutSeconds: 3,
    failureThreshold: 15,
  };
}

/** A pod template of one component (its labels, its containers). */
export function podTemplate(component: string, spec: Record<string, unknown>) {
  return { metadata: { labels: labels(component) }, spec };
}
