// The pods of `flashcrowd k8s` run as local processes (no cluster on the
// development machine): each container's command, read from the YAML written
// (the image's entrypoint `node bin/flashcrowd.js` + args, or its shell line),
// with the in-cluster names (mocks:8101, checkout-K.checkout:8100, redis:6379,
// harness:7070) mapped to loopback ports, Kubernetes' $(POD_NAME) and
// JOB_COMPLETION_INDEX set as it sets them, and the token from the Secret: a
// local redis-server for Redis, the mocks, 2 checkout replicas, the harness
// Job's init container (it waits for them), then the harness and the 3
// runners of the Indexed Job. The run passes, its report is written to the
// reports mount, and both replicas served orders.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { writeK8s } from '../harness/k8s/index.ts';
import { k8sPlan } from '../harness/k8s/plan.ts';
import { startLocalRedis, type LocalRedis } from '../harness/redis.ts';
import { PROJECT_ROOT } from '../harness/tools.ts';
import { HALF_CI_TIME_SCALE } from './support/cli.ts';

type Doc = Record<string, any>;
type Container = { args?: string[]; command?: string[]; env: Doc[] };

async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Three consecutive free ports (`mock all --port P` takes P, P+1, P+2). */
async function freeRange3(): Promise<number> {
  for (;;) {
    const p = await freePort();
    const taken = await Promise.all(
      [p + 1, p + 2].map(
        (q) =>
          new Promise<boolean>((resolve) => {
            const s = net.createServer();
            s.once('error', () => resolve(true));
            s.listen(q, '127.0.0.1', () => s.close(() => resolve(false)));
          }),
      ),
    );
    if (!taken.includes(true)) return p;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-k8s-local-'));
const reports = mkdtempSync(join(tmpdir(), 'flashcrowd-k8s-reports-'));
const docs = new Map<string, Doc>();
const procs: { name: string; child: ChildProcess; out: () => string }[] = [];
let redis: LocalRedis | undefined;
/** In-cluster address -> local one. */
const names = new Map<string, string>();
const rewrite = (s: string) => [...names].reduce((r, [from, to]) => r.split(from).join(to), s);

function start(name: string, argv: string[], env: Record<string, string>) {
  const [cmd, ...rest] = argv;
  const child = spawn(cmd === 'node' ? process.execPath : cmd!, rest, {
    cwd: PROJECT_ROOT, // the image's WORKDIR, /app
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const p = { name, child, out: () => out };
  procs.push(p);
  return p;
}

const exitOf = async (p: ReturnType<typeof start>) =>
  p.child.exitCode ?? ((await once(p.child, 'exit')) as [number | null])[0];

/** The container's argv as the image runs it: its command, or the entrypoint with its args. */
const argvOf = (c: Container) => c.command ?? ['node', 'bin/flashcrowd.js', ...c.args!];

/** Its environment: the token from the Secret, $(POD_NAME)-style fields given by the caller. */
function envOf(c: Container, fields: Record<string, string> = {}): Record<string, string> {
  const secret = docs.get('Secret/flashcrowd-admin')!;
  return Object.fromEntries(
    c.env.map((e) => {
      if (e.valueFrom?.secretKeyRef)
        return [e.name, secret.stringData[e.valueFrom.secretKeyRef.key] as string];
      return [e.name, e.value ?? fields[e.name]!];
    }),
  );
}

/** Kubernetes' $(VAR) expansion in args, then the in-cluster names to local addresses. */
const expand = (argv: string[], env: Record<string, string>) =>
  argv.map((a) => rewrite(a.replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => env[v] ?? '')));

const podSpec = (kind: string, name: string) =>
  docs.get(`${kind}/${name}`)!.spec.template.spec as {
    containers: Container[];
    initContainers?: Container[];
  };

describe('the pods of `flashcrowd k8s livestream-spike --runners 3 --instances 2`, as local processes', () => {
  let harness: ReturnType<typeof start>;
  let runners: ReturnType<typeof start>[];

  beforeAll(async () => {
    const plan = k8sPlan(
      {
        preset: 'livestream-spike',
        variant: 'hardened',
        runners: 3,
        instances: 2,
        namespace: 'flashcrowd',
        seed: 3,
        timeScale: HALF_CI_TIME_SCALE,
        // A third of the preset's CI load: 7 processes share this machine's cores, and a
        // capacity budget (checkout.p99_ms) must fail for the manifests, not for the machine.
        loadScale: 0.04,
      },
      { FLASHCROWD_ADMIN_TOKEN: 'k8s-local' },
    );
    const files = await writeK8s(plan, dir, ['k8s']);
    for (const f of files.filter((x) => !x.endsWith('kustomization.yaml')))
      for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8')))
        docs.set(
          `${d.get('kind')}/${(d.get('metadata') as { get(k: string): string }).get('name')}`,
          d.toJS(),
        );
    redis = await startLocalRedis();
    const mocks = await freeRange3();
    const checkouts = [await freePort(), await freePort()];
    const harnessPort = await freePort();
    names.set('redis://redis:6379', redis.url);
    [8101, 8102, 8103].forEach((p, i) =>
      names.set(`http://mocks:${p}`, `http://127.0.0.1:${mocks + i}`),
    );
    checkouts.forEach((p, i) =>
      names.set(`http://checkout-${i}.checkout:8100`, `http://127.0.0.1:${p}`),
    );
    names.set('http://harness:7070', `http://127.0.0.1:${harnessPort}`);
    names.set('0.0.0.0:7070', `127.0.0.1:${harnessPort}`);
    names.set('/reports/', `${reports}/`);

    const mock = podSpec('Deployment', 'mocks').containers[0]!;
    const argv = expand(argvOf(mock), {});
    argv[argv.indexOf('--port') + 1] = String(mocks);
    argv[argv.indexOf('--host') + 1] = '127.0.0.1';
    start('mocks', argv, envOf(mock));
    const co = podSpec('StatefulSet', 'checkout').containers[0]!;
    for (const [i, port] of checkouts.entries()) {
      const env = envOf(co, { POD_NAME: `checkout-${i}` });
      const a = expand(argvOf(co), env);
      a[a.indexOf('--port') + 1] = String(port);
      a[a.indexOf('--host') + 1] = '127.0.0.1';
      start(`checkout-${i}`, a, env);
    }
    // The harness Job's init container waits for the replicas and the mocks, as in the cluster.
    const job = podSpec('Job', 'harness');
    const wait = job.initContainers![0]!;
    const waited = start('wait-for-stack', expand(argvOf(wait), {}), envOf(wait));
    expect(await exitOf(waited), waited.out()).toBe(0);
    const h = job.containers[0]!;
    harness = start('harness', expand(argvOf(h), {}), envOf(h));
    const r = podSpec('Job', 'runners').containers[0]!;
    runners = [0, 1, 2].map((k) =>
      start(`runner-${k}`, expand(argvOf(r), {}), { ...envOf(r), JOB_COMPLETION_INDEX: String(k) }),
    );
  }, 60_000);

  afterAll(async () => {
    for (const p of procs.reverse())
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGTERM');
        await once(p.child, 'exit');
      }
    await redis?.close();
  });

  it('the harness passes with 3 runners and writes the report to the reports mount; both replicas took orders', async () => {
    const code = await exitOf(harness);
    expect(code, harness.out().slice(-4_000)).toBe(0);
    for (const r of runners) expect(await exitOf(r), `${r.name}:\n${r.out()}`).toBe(0);
    const out = join(reports, 'livestream-spike-hardened-s3');
    expect(existsSync(join(out, 'summary.md'))).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.engine.detail).toMatch(/3 runner/);
    expect(summary.traffic.unaccounted).toBe(0);
    for (const i of [0, 1]) {
      const url = rewrite(`http://checkout-${i}.checkout:8100`);
      const text = await (await fetch(`${url}/metrics`)).text();
      const orders = [
        ...text.matchAll(
          /^flashcrowd_checkout_requests_total\{[^}]*route="orders.create"[^}]*\} (\d+)/gm,
        ),
      ];
      expect(
        orders.reduce((n, m) => n + Number(m[1]), 0),
        `checkout-${i} orders`,
      ).toBeGreaterThan(0);
    }
  }, 120_000);

  // Its script exits 0 only on 201 from POST /admin/sale (with the token from the Secret).
  it("the k6 path's seed-sale Job seeds the preset's sale through the checkout's admin route", async () => {
    const seed = podSpec('Job', 'k6-seed-sale');
    for (const c of [...seed.initContainers!, ...seed.containers]) {
      const p = start(
        c === seed.containers[0] ? 'seed-sale' : 'wait',
        expand(argvOf(c), {}),
        envOf(c),
      );
      expect(await exitOf(p), p.out()).toBe(0);
    }
  });
});
