// `flashcrowd k8s <preset>`: the manifests of a run on Kubernetes, as a
// directory of YAML files that `kubectl apply -k` takes:
//
//   DIR/kustomization.yaml    the run with flashcrowd's engine: sut/, harness.yaml, runners.yaml
//   DIR/sut/                  namespace, admin token Secret, Redis, mocks, checkout (plan.ts, sut.ts)
//   DIR/harness.yaml          the reports volume, the harness Service and Job (harness-job.ts)
//   DIR/runners.yaml          the runners' Indexed Job (runners.ts)
//   DIR/k6/                   for k6-operator users: ../sut, the bundled script, the sale seeding, the TestRun
//   DIR/extras/               report-reader.yaml: a pod on the reports volume, applied by hand afterwards
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { stringify } from 'yaml';
import { flashcrowdVersion } from '../tools.ts';
import { harnessJob, reportDir, reportReader } from './harness-job.ts';
import { k6Script, k6SeedSale, k6TestRun } from './k6-testrun.ts';
import { k8sPlan, type K8sOptions, type K8sPlan } from './plan.ts';
import { runnersJob } from './runners.ts';
import { adminSecret, checkout, mocks, namespace, redis } from './sut.ts';

/** A file of the directory: its path under DIR and its objects (or a kustomization). */
interface OutFile {
  path: string;
  docs: object[];
}

const kustomization = (resources: string[]) => ({
  apiVersion: 'kustomize.config.k8s.io/v1beta1',
  kind: 'Kustomization',
  resources,
});

/** Every file of the directory, the kustomizations listing the others. */
export async function k8sFiles(plan: K8sPlan): Promise<OutFile[]> {
  const sut: OutFile[] = [
    { path: 'sut/namespace.yaml', docs: [namespace(plan)] },
    { path: 'sut/secret.yaml', docs: [adminSecret(plan)] },
    ...(plan.redisCluster ? [] : [{ path: 'sut/redis.yaml', docs: redis(plan) }]),
    { path: 'sut/mocks.yaml', docs: mocks(plan) },
    { path: 'sut/checkout.yaml', docs: checkout(plan) },
  ];
  const run: OutFile[] = [
    { path: 'harness.yaml', docs: harnessJob(plan) },
    { path: 'runners.yaml', docs: [runnersJob(plan)] },
  ];
  const k6: OutFile[] = [
    { path: 'k6/script.yaml', docs: [await k6Script(plan)] },
    { path: 'k6/seed-sale.yaml', docs: [k6SeedSale(plan)] },
    { path: 'k6/testrun.yaml', docs: [k6TestRun(plan)] },
  ];
  const names = (fs: OutFile[], dir: string) => fs.map((f) => relative(dir, f.path));
  return [
    ...sut,
    { path: 'sut/kustomization.yaml', docs: [kustomization(names(sut, 'sut'))] },
    ...run,
    { path: 'kustomization.yaml', docs: [kustomization(['sut', ...names(run, '.')])] },
    ...k6,
    { path: 'k6/kustomization.yaml', docs: [kustomization(['../sut', ...names(k6, 'k6')])] },
    { path: 'extras/report-reader.yaml', docs: [reportReader(plan)] },
  ];
}

/** Write the directory (its sut/, k6/ and extras/ anew); the paths written. */
export async function writeK8s(plan: K8sPlan, dir: string, argv: string[]): Promise<string[]> {
  const files = await k8sFiles(plan);
  for (const sub of ['sut', 'k6', 'extras'])
    rmSync(join(dir, sub), { recursive: true, force: true });
  const header =
    `# Written by \`flashcrowd ${argv.join(' ')}\` (flashcrowd ${flashcrowdVersion()}): ` +
    'regenerate rather than edit. README, "Run on Kubernetes".\n';
  for (const f of files) {
    const file = join(dir, f.path);
    mkdirSync(dirname(file), { recursive: true });
    // YAML 1.1 as Kubernetes reads it: strings such as no, on, y are quoted, not taken for booleans.
    const body = f.docs.map((d) => stringify(d, { lineWidth: 0, version: '1.1' })).join('---\n');
    writeFileSync(file, header + body);
  }
  return files.map((f) => f.path);
}

export async function k8sCommand(
  o: K8sOptions,
  argv: string[],
  print: (line: string) => void = console.log,
): Promise<void> {
  const plan = k8sPlan(o);
  const dir = o.out ?? join('reports', `k8s-${plan.preset.name}`);
  const written = await writeK8s(plan, dir, argv);
  const ns = plan.namespace;
  print(`wrote ${written.length} files to ${dir}/ (namespace ${ns}, image ${plan.image}):`);
  for (const p of written) print(`  ${p}`);
  print(
    `\nflashcrowd's engine (${plan.runners} runner pod(s), ${plan.build.instances} checkout replica(s)):\n` +
      `  kubectl apply -k ${dir}\n` +
      `  kubectl -n ${ns} wait --for=condition=complete --timeout=30m job/harness; kubectl -n ${ns} logs job/harness\n` +
      `  the report: ${reportDir(plan)} on the reports volume (extras/report-reader.yaml; README "Run on Kubernetes")\n` +
      `k6 with the k6-operator installed: kubectl apply -k ${dir}/k6`,
  );
}
