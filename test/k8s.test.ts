// `flashcrowd k8s` without a cluster (the development machine has none): the
// manifests it writes validate, strictly, against the Kubernetes JSON schemas of
// a pinned Kubernetes version (K8S_SCHEMA_VERSION, from kubernetes-validate,
// which set-up installs into .tools/venv), and the k6-operator TestRun against
// test/fixtures/k6-testrun.schema.json; the commands in them are parsed by the
// real CLI (a renamed flag fails here), the runner's segment is computed by a
// real shell from the completion index; planted faults fail the validators.
import { execFile, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import AjvModule from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { K8S_SCHEMA_VERSION } from '../scripts/versions.mjs';
import { buildCli } from '../harness/cli.ts';
import { UsageError } from '../harness/errors.ts';
import { writeK8s } from '../harness/k8s/index.ts';
import { k8sPlan, type K8sOptions } from '../harness/k8s/plan.ts';
import { checkTargetFlags } from '../harness/run/options.ts';
import { findTool, PROJECT_ROOT } from '../harness/tools.ts';

const Ajv = AjvModule as unknown as typeof AjvModule.default;
const exec = promisify(execFile);
const OPTS: K8sOptions = {
  preset: 'livestream-spike',
  variant: 'hardened',
  runners: 3,
  instances: 2,
  namespace: 'flashcrowd',
  seed: 7,
};

type Doc = { kind: string; metadata: { name: string }; spec?: Record<string, any> } & Record<
  string,
  any
>;

/** Every .yaml file under dir (path relative to dir). */
function yamlFiles(dir: string, sub = ''): string[] {
  return readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? yamlFiles(dir, join(sub, e.name))
      : e.name.endsWith('.yaml')
        ? [join(sub, e.name)]
        : [],
  );
}

const docsOf = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Doc);

async function generate(o: Partial<K8sOptions> = {}): Promise<{ dir: string; docs: Doc[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-k8s-'));
  await writeK8s(k8sPlan({ ...OPTS, ...o }, { FLASHCROWD_ADMIN_TOKEN: 'k8s-test' }), dir, ['k8s']);
  const docs = yamlFiles(dir)
    .filter((f) => !f.endsWith('kustomization.yaml'))
    .flatMap((f) => docsOf(join(dir, f)));
  return { dir, docs };
}

const find = (docs: Doc[], kind: string, name: string) => {
  const d = docs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!d) throw new Error(`no ${kind}/${name}`);
  return d;
};

/** kubernetes-validate, strict, at the pinned version: exit code and output. */
function kubeValidate(files: string[]): { code: number | null; out: string } {
  const bin = findTool('kubernetes-validate');
  if (!bin)
    throw new Error('kubernetes-validate not found: run `node scripts/setup.mjs --for-tests`');
  const r = spawnSync(bin, ['-k', K8S_SCHEMA_VERSION, '--strict', ...files], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const testRunSchema = JSON.parse(
  readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'k6-testrun.schema.json'), 'utf8'),
) as object;
const validTestRun = new Ajv({ allErrors: true, strict: false }).compile(testRunSchema);

/** The options the real CLI parses from argv for `command` (its action replaced: nothing runs). */
async function parsedBy(argv: string[]): Promise<{ args: unknown[]; opts: Record<string, any> }> {
  const program = buildCli();
  const cmd = program.commands.find((c) => c.name() === argv[0]);
  if (!cmd) throw new Error(`no command ${argv[0]}`);
  let got: { args: unknown[]; opts: Record<string, any> } | undefined;
  cmd.action((...a: unknown[]) => {
    got = { args: a.slice(0, -2), opts: cmd.opts() };
  });
  await program.parseAsync(['node', 'flashcrowd', ...argv]);
  if (!got) throw new Error(`${argv[0]} did not parse`);
  return got;
}

const container = (d: Doc, name?: string) => {
  const cs = d.spec!.template.spec.containers as { name: string; [k: string]: any }[];
  return name ? cs.find((c) => c.name === name)! : cs[0]!;
};

describe('flashcrowd k8s livestream-spike --runners 3 --instances 2', () => {
  let dir: string;
  let docs: Doc[];
  beforeAll(async () => {
    ({ dir, docs } = await generate());
  });

  it(`every Kubernetes object validates strictly against the Kubernetes ${K8S_SCHEMA_VERSION} schemas`, () => {
    const files = yamlFiles(dir).filter((f) => !f.endsWith('kustomization.yaml'));
    const r = kubeValidate(files.map((f) => join(dir, f)));
    expect(r.out).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
    // Every object but the TestRun (a custom resource) was checked against a schema.
    const passed = r.out.match(/passed for resource/g)?.length ?? 0;
    expect(passed).toBe(docs.filter((d) => d.kind !== 'TestRun').length);
  });

  it('the TestRun validates against the TestRun schema: parallelism 3 running the bundled livestream script', () => {
    const run = find(docs, 'TestRun', 'livestream');
    expect(validTestRun(run), JSON.stringify(validTestRun.errors)).toBe(true);
    expect(run.spec!.parallelism).toBe(3);
    const script = find(docs, 'ConfigMap', run.spec!.script.configMap.name);
    const js = script.data[run.spec!.script.configMap.file] as string;
    expect(js).toMatch(/from "k6\/http"/); // k6's modules stay imports
    expect(js).not.toMatch(/from "\.\/lib/); // ours are bundled in
    const env = Object.fromEntries(
      (run.spec!.runner.env as { name: string; value: string }[]).map((e) => [e.name, e.value]),
    );
    expect(env.TARGET_URLS).toBe('http://checkout-0.checkout:8100,http://checkout-1.checkout:8100');
    expect(JSON.parse(script.data['preset.resolved.json'] as string).seed).toBe(7);
    // An ES module node parses (its k6 imports are not resolved by --check).
    const file = join(mkdtempSync(join(tmpdir(), 'flashcrowd-k8s-js-')), 'livestream.mjs');
    writeFileSync(file, js);
    expect(spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' }).status).toBe(0);
  });

  it('the runners are an Indexed Job of 3 whose segment comes from the completion index', async () => {
    const job = find(docs, 'Job', 'runners');
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', parallelism: 3, completions: 3 });
    const [sh, flag, line] = container(job).command as string[];
    expect([sh, flag]).toEqual(['sh', '-c']);
    // A real shell runs the line with a `node` that prints its argv; the real CLI parses that.
    const bin = mkdtempSync(join(tmpdir(), 'flashcrowd-k8s-bin-'));
    writeFileSync(join(bin, 'node'), '#!/bin/sh\nprintf "%s\\n" "$@"\n');
    chmodSync(join(bin, 'node'), 0o755);
    for (const index of [0, 1, 2]) {
      const { stdout } = await exec('sh', ['-c', line!], {
        env: { PATH: `${bin}:/usr/bin:/bin`, JOB_COMPLETION_INDEX: String(index) },
      });
      const [script, ...argv] = stdout.trimEnd().split('\n');
      expect(script).toBe('bin/flashcrowd.js');
      const { opts } = await parsedBy(argv);
      expect(opts).toMatchObject({
        segment: `${index + 1}/3`,
        harness: 'http://harness:7070',
        allowRemoteTarget: true,
      });
    }
  });

  it('the harness Job runs `flashcrowd run` against both replicas with 3 runners, and the CLI takes its flags', async () => {
    const job = find(docs, 'Job', 'harness');
    const args = container(job).args as string[];
    const { args: positional, opts } = await parsedBy(args);
    expect(positional).toEqual(['livestream-spike']);
    expect(opts).toMatchObject({
      variant: 'hardened',
      runners: 3,
      listen: '0.0.0.0:7070',
      target: 'http://checkout-0.checkout:8100,http://checkout-1.checkout:8100',
      redis: 'redis://redis:6379',
      allowRemoteTarget: true,
      seed: 7,
    });
    expect(opts.out).toMatch(/^\/reports\//);
    expect(container(job).volumeMounts[0].mountPath).toBe('/reports');
    expect(find(docs, 'Service', 'harness').spec!.selector).toEqual(
      job.spec!.template.metadata.labels,
    );
  });

  it('the checkout is 2 replicas of `flashcrowd checkout` with the variant build, and the mocks parse too', async () => {
    const set = find(docs, 'StatefulSet', 'checkout');
    expect(set.spec!.replicas).toBe(2);
    expect(find(docs, 'Service', 'checkout').spec!.clusterIP).toBe('None');
    const { opts } = await parsedBy(container(set).args as string[]);
    expect(opts).toMatchObject({
      mode: 'hardened',
      adminRemote: true,
      cluster: false,
      host: '0.0.0.0',
    });
    expect(opts.set).toContain('timeScale=0.0166667');
    const mocks = await parsedBy(container(find(docs, 'Deployment', 'mocks')).args as string[]);
    expect(mocks.args).toEqual(['all']);
    expect(mocks.opts).toMatchObject({ port: 8101, seed: 7, adminRemote: true });
    // Off loopback the services need the token: every flashcrowd container has it from the Secret.
    for (const d of docs.filter((x) => x.kind !== 'TestRun' && x.spec?.template))
      for (const c of d.spec!.template.spec.containers)
        if (String(c.image).startsWith('flashcrowd:'))
          expect(c.env.map((e: { name: string }) => e.name)).toContain('FLASHCROWD_ADMIN_TOKEN');
  });

  it('each kustomization lists files that exist, and together they list every manifest but extras/', () => {
    const reached = new Set<string>();
    const walk = (kdir: string) => {
      const k = parse(readFileSync(join(dir, kdir, 'kustomization.yaml'), 'utf8')) as {
        resources: string[];
      };
      for (const r of k.resources) {
        const p = join(kdir, r);
        expect(existsSync(join(dir, p)), `${kdir}/kustomization.yaml lists ${r}`).toBe(true);
        if (existsSync(join(dir, p, 'kustomization.yaml'))) walk(p);
        else reached.add(p);
      }
    };
    walk('.');
    walk('k6');
    const manifests = yamlFiles(dir).filter(
      (f) => !f.endsWith('kustomization.yaml') && dirname(f) !== 'extras',
    );
    expect([...reached].sort()).toEqual(manifests.sort());
  });
});

describe('the validators can fail', () => {
  it('kubernetes-validate refuses a string replicas and a misspelt field', async () => {
    const { dir } = await generate();
    const file = join(dir, 'sut', 'checkout.yaml');
    const [set, svc] = docsOf(file);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, stringify({ ...set, spec: { ...set!.spec, replicas: '2' } }));
    expect(kubeValidate([bad]).code).not.toBe(0);
    writeFileSync(bad, stringify({ ...svc, spec: { ...svc!.spec, clusterIp: 'None' } }));
    expect(kubeValidate([bad])).toMatchObject({ code: 1, out: expect.stringMatching(/clusterIp/) });
  });

  it('the TestRun schema refuses a string parallelism and a misspelt field', async () => {
    const { docs } = await generate();
    const run = find(docs, 'TestRun', 'livestream');
    expect(validTestRun({ ...run, spec: { ...run.spec, parallelism: '3' } })).toBe(false);
    expect(validTestRun({ ...run, spec: { ...run.spec, paralelism: 3 } })).toBe(false);
  });
});

describe('options', () => {
  it('--redis-url drops the Redis Deployment and connects the checkout and the harness audit as cluster clients', async () => {
    const { dir, docs } = await generate({ redisUrl: 'redis://redis-cluster.data:6379' });
    expect(existsSync(join(dir, 'sut', 'redis.yaml'))).toBe(false);
    expect(docs.some((d) => d.metadata.name === 'redis')).toBe(false);
    const { opts } = await parsedBy(container(find(docs, 'StatefulSet', 'checkout')).args);
    expect(opts).toMatchObject({ cluster: true, redis: 'redis://redis-cluster.data:6379' });
    const harness = await parsedBy(container(find(docs, 'Job', 'harness')).args);
    expect(harness.opts).toMatchObject({
      redis: 'redis://redis-cluster.data:6379',
      redisCluster: true,
    });
  });

  it('bad input is a usage error naming what is wrong', () => {
    const plan = (o: Partial<K8sOptions>) => () => k8sPlan({ ...OPTS, ...o });
    expect(plan({ preset: 'no-such-preset' })).toThrow(/no preset "no-such-preset"/);
    expect(plan({ preset: './x.json' })).toThrow(UsageError);
    expect(plan({ redisUrl: 'http://redis:6379' })).toThrow(/--redis-url must be a redis:\/\//);
    expect(plan({ redisUrl: 'not a url' })).toThrow(/--redis-url must be a URL/);
    expect(plan({ namespace: 'Flash_Crowd' })).toThrow(/--namespace/);
    expect(plan({ variant: undefined })).toThrow(/give --variant \(naive, hardened\)/);
    // Faults the harness cannot play on a target it did not start.
    expect(plan({ preset: 'checkout-crash' })).toThrow(/run --target/);
  });

  it('the CLI exits 2 with the message on bad input (runners < 1, unknown preset)', () => {
    const cli = (...a: string[]) =>
      spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'flashcrowd.js'), 'k8s', ...a], {
        encoding: 'utf8',
      });
    const zero = cli('livestream-spike', '--runners', '0');
    expect(zero.status).toBe(2);
    expect(zero.stderr).toMatch(/--runners must be an integer from 1/);
    const unknown = cli('no-such-preset');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/no preset "no-such-preset"/);
  });

  it('run --target takes several checkout instances comma-separated, each checked for loopback', () => {
    const o = { preset: 'x', seed: 1, ci: true, budgets: [], progress: 'none' as const };
    const two = 'http://127.0.0.1:8100,http://checkout-1.checkout:8100';
    expect(() => checkTargetFlags({ ...o, target: two, allowRemoteTarget: false })).toThrow(
      /--target http:\/\/checkout-1.checkout:8100 is not a loopback address/,
    );
    expect(() => checkTargetFlags({ ...o, target: two, allowRemoteTarget: true })).not.toThrow();
  });
});
