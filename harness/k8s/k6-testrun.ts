// `flashcrowd k8s`, the k6 path (for users who installed the k6-operator):
// scenarios/livestream.ts bundled into one file (the operator mounts a
// ConfigMap's keys flat in /test, and the script imports ./lib/*.ts) with the
// resolved preset beside it; a Job seeding the preset's sale; a TestRun
// (k6.io/v1alpha1) of N k6 runners playing it against the checkout replicas.
// Plain k6: no chaos, audit or report (the harness Job does those).
import { build } from 'esbuild';
import { K6_IMAGE } from '../../scripts/versions.mjs';
import { LIVESTREAM_SCRIPT } from '../up.ts';
import { flashcrowdContainer, meta, podTemplate, type Manifest } from './objects.ts';
import { clusterUrls, NAMES, type K8sPlan } from './plan.ts';
import { waitForStackScript } from './harness-job.ts';

/** Where the operator mounts the script's ConfigMap in the k6 pods. */
const SCRIPT_DIR = '/test';
export const K6_SCRIPT_KEY = 'livestream.js';
export const K6_PRESET_KEY = 'preset.resolved.json';

/** livestream.ts and what it imports as one ES module; k6's own modules stay imports. */
export async function bundleLivestream(): Promise<string> {
  const r = await build({
    entryPoints: [LIVESTREAM_SCRIPT],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    external: ['k6', 'k6/*'],
    write: false,
    logLevel: 'silent',
  });
  return `// scenarios/livestream.ts bundled by \`flashcrowd k8s\` (esbuild); edit the source, not this.\n${r.outputFiles[0]!.text}`;
}

export async function k6Script(plan: K8sPlan): Promise<Manifest> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(plan, NAMES.k6Script, 'k6'),
    data: {
      [K6_SCRIPT_KEY]: await bundleLivestream(),
      [K6_PRESET_KEY]: JSON.stringify(plan.resolved, null, 2),
    },
  };
}

/** POST /admin/sale with the resolved preset's sale, once the stack answers (what `run` does before its traffic). */
export function seedSaleScript(plan: K8sPlan): string {
  const { sale } = plan.resolved;
  const body = { skus: sale.skus, ...(sale.coupon ? { coupon: sale.coupon } : {}) };
  const url = `${clusterUrls(plan).checkouts[0]}/admin/sale`;
  return (
    `fetch(${JSON.stringify(url)}, { method: 'POST', headers: { 'content-type': 'application/json', ` +
    `authorization: 'Bearer ' + process.env.FLASHCROWD_ADMIN_TOKEN }, body: ${JSON.stringify(JSON.stringify(body))} })\n` +
    `  .then(async (r) => { console.log('POST /admin/sale', r.status, await r.text()); process.exit(r.status === 201 ? 0 : 1); },\n` +
    `    (e) => { console.error(e); process.exit(1); });`
  );
}

export function k6SeedSale(plan: K8sPlan): Manifest {
  const wait = flashcrowdContainer(plan, 'wait-for-stack', {
    command: ['node', '-e', waitForStackScript(plan)],
  });
  const seed = flashcrowdContainer(plan, 'seed-sale', {
    command: ['node', '-e', seedSaleScript(plan)],
  });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(plan, NAMES.k6Seed, 'k6'),
    spec: {
      backoffLimit: 0,
      template: podTemplate('k6', {
        restartPolicy: 'Never',
        initContainers: [wait],
        containers: [seed],
      }),
    },
  };
}

/** The k6 runners' environment (the script's -e variables, as `flashcrowd up` prints them). */
export function k6Env(plan: K8sPlan): { name: string; value: string }[] {
  const u = clusterUrls(plan);
  return [
    { name: 'TARGET_URLS', value: u.checkouts.join(',') },
    { name: 'COUPON_URL', value: u.coupon },
    { name: 'PRESET_FILE', value: `${SCRIPT_DIR}/${K6_PRESET_KEY}` },
    { name: 'SEED', value: String(plan.seed) },
  ];
}

export function k6TestRun(plan: K8sPlan): Manifest {
  return {
    apiVersion: 'k6.io/v1alpha1',
    kind: 'TestRun',
    metadata: meta(plan, NAMES.k6Run, 'k6'),
    spec: {
      parallelism: plan.runners,
      script: { configMap: { name: NAMES.k6Script, file: K6_SCRIPT_KEY } },
      arguments: '--no-usage-report',
      runner: { image: K6_IMAGE, env: k6Env(plan) },
    },
  };
}
