// `flashcrowd k8s`, the harness: a Job running `flashcrowd run --target` on
// the namespace's checkout replicas, mocks and Redis with N runners
// (`--runners N --listen 0.0.0.0:7070`, reached through the `harness`
// Service); it resets, seeds the sale, plays the chaos, collects, audits,
// judges the budgets and writes the report to the `reports` volume. Its exit
// code is the run's verdict (the Job fails when the run does).
import { flashcrowdContainer, meta, podTemplate, service, type Manifest } from './objects.ts';
import { clusterUrls, gatewayArgs, NAMES, PORTS, REPORTS_MOUNT, type K8sPlan } from './plan.ts';
import { RUNNER_WAIT_S } from './runners.ts';

/** The report's folder on the volume. */
export function reportDir(plan: K8sPlan): string {
  const variant = plan.variant ? `-${plan.variant}` : '';
  return `${REPORTS_MOUNT}/${plan.preset.name}${variant}-s${plan.seed}`;
}

/** `flashcrowd run` as the harness Job runs it. */
export function harnessArgs(plan: K8sPlan): string[] {
  const u = clusterUrls(plan);
  return [
    'run',
    plan.preset.name,
    ...(plan.variant ? ['--variant', plan.variant] : []),
    '--seed',
    String(plan.seed),
    '--time-scale',
    String(plan.timeScale),
    '--load-scale',
    String(plan.loadScale),
    '--target',
    u.checkouts.join(','),
    ...gatewayArgs(plan),
    '--redis',
    u.redis,
    ...(plan.redisCluster ? ['--redis-cluster'] : []),
    '--allow-remote-target',
    '--runners',
    String(plan.runners),
    '--listen',
    `0.0.0.0:${PORTS.harness}`,
    '--runner-timeout',
    String(RUNNER_WAIT_S),
    '--out',
    reportDir(plan),
    '--progress',
    'plain',
  ];
}

/** Until every checkout replica and mock answers /healthz (10 minutes at most): the init container. */
export function waitForStackScript(plan: K8sPlan): string {
  const u = clusterUrls(plan);
  const urls = [...u.checkouts, u.bank, u.wallet, u.coupon].map((x) => `${x}/healthz`);
  return (
    `const urls = ${JSON.stringify(urls)}; const until = Date.now() + 600000;\n` +
    `const up = (u) => fetch(u).then((r) => r.ok, () => false);\n` +
    `(async () => { while (!(await Promise.all(urls.map(up))).every(Boolean)) {\n` +
    `  if (Date.now() > until) { console.error('the checkout and the mocks are not up: ' + urls.join(' ')); process.exit(1); }\n` +
    `  await new Promise((r) => setTimeout(r, 1000)); } })();`
  );
}

/** The volume the report is written to (kept after the Job, read with extras/report-reader.yaml). */
export function reportsClaim(plan: K8sPlan): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta(plan, NAMES.reports, NAMES.harness),
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  };
}

export const reportsVolume = {
  name: 'reports',
  persistentVolumeClaim: { claimName: NAMES.reports },
};

export function harnessJob(plan: K8sPlan): Manifest[] {
  const wait = flashcrowdContainer(plan, 'wait-for-stack', {
    command: ['node', '-e', waitForStackScript(plan)],
  });
  const run = flashcrowdContainer(
    plan,
    'harness',
    { args: harnessArgs(plan) },
    {
      ports: [{ name: 'runners', containerPort: PORTS.harness }],
      volumeMounts: [{ name: 'reports', mountPath: REPORTS_MOUNT }],
    },
  );
  const job: Manifest = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(plan, NAMES.harness),
    spec: {
      // A run is judged once: a failed run is a verdict, not a pod to retry.
      backoffLimit: 0,
      template: podTemplate(NAMES.harness, {
        restartPolicy: 'Never',
        initContainers: [wait],
        containers: [run],
        volumes: [reportsVolume],
      }),
    },
  };
  return [reportsClaim(plan), service(plan, NAMES.harness, { runners: PORTS.harness }), job];
}

/** A pod that mounts the reports volume, to copy the report out once the harness Job is done. */
export function reportReader(plan: K8sPlan): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta(plan, 'report-reader'),
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'reader',
          image: plan.image,
          imagePullPolicy: 'IfNotPresent',
          command: ['sleep', '3600'],
          volumeMounts: [{ name: 'reports', mountPath: REPORTS_MOUNT, readOnly: true }],
        },
      ],
      volumes: [reportsVolume],
    },
  };
}
