// docker-compose.yml without Docker (the development machine has no engine):
// the file is valid against the Compose Specification schema (the copy dclint
// ships, schemas/compose.schema.json, from github.com/compose-spec/compose-spec),
// every published port is bound to 127.0.0.1, and each service built from our
// Dockerfile runs its compose command for real as a local process (the
// Dockerfile's ENTRYPOINT + `command`), with 0.0.0.0 replaced by 127.0.0.1,
// ports by free ones and the compose service names by those processes (a local
// redis-server for `redis`). Their healthchecks run too, then the wiring is
// used: admin token, a wallet payment whose notification reaches the checkout
// at its --public-url, and the README's `flashcrowd run --target` line. A typo
// in a compose command fails here. k6's command is checked with `k6 inspect`.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AjvModule from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { K6_IMAGE } from '../harness/k6.ts';
import { loadPreset } from '../harness/preset.ts';
import { startLocalRedis, type RedisHandle } from '../harness/redis.ts';
import { findTool, PROJECT_ROOT } from '../harness/tools.ts';

const COMPOSE_FILE = join(PROJECT_ROOT, 'docker-compose.yml');
const SCHEMA_FILE = join(PROJECT_ROOT, 'node_modules', 'dclint', 'schemas', 'compose.schema.json');
const TOKEN = 'compose-test-token';
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-compose-'));

interface Port {
  host_ip?: string;
  published?: string | number;
  target: number;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: string[] | Record<string, string | null>;
  ports?: (string | Port)[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
  volumes?: string[];
}

/** Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$. */
function interpolate(s: string, env: Record<string, string | undefined>): string {
  return s.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (m, name: string, op: string | undefined, arg: string | undefined) => {
      if (m === '$$') return '$';
      const v = env[name];
      const missing = v === undefined || (op?.startsWith(':') === true && v === '');
      if (op?.endsWith('-')) return missing ? (arg ?? '') : v!;
      if (op?.endsWith('?')) {
        if (missing) throw new Error(`required variable ${name} is missing: ${arg}`);
        return v!;
      }
      return v ?? '';
    },
  );
}

function interpolateAll<T>(x: T, env: Record<string, string | undefined>): T {
  if (typeof x === 'string') return interpolate(x, env) as T;
  if (Array.isArray(x)) return x.map((v) => interpolateAll(v, env)) as T;
  if (x && typeof x === 'object')
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, interpolateAll(v, env)])) as T;
  return x;
}

function ports(s: Service): { hostIp: string; published: number; target: number }[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'string') {
      const m = /^(?:(\[[^\]]+\]|[^:]+):)?(?:(\d+):)?(\d+)(?:\/tcp)?$/.exec(p);
      expect(m, `port "${p}"`).not.toBeNull();
      return { hostIp: m![1] ?? '', published: Number(m![2] ?? 0), target: Number(m![3]) };
    }
    return { hostIp: p.host_ip ?? '', published: Number(p.published ?? 0), target: p.target };
  });
}

function serviceEnv(s: Service, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Array.isArray(s.environment)
    ? s.environment.map((e) => {
        const i = e.indexOf('=');
        return i < 0 ? ([e, null] as const) : ([e.slice(0, i), e.slice(i + 1)] as const);
      })
    : Object.entries(s.environment ?? {});
  for (const [k, v] of entries) {
    const value = v ?? env[k]; // no value: passed through from the caller's environment
    if (value !== undefined) out[k] = value;
  }
  return out;
}

const raw = readFileSync(COMPOSE_FILE, 'utf8');
const doc = parse(raw, { merge: true }) as {
  services: Record<string, Service>;
  [k: string]: unknown;
};
const dockerfile = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');

describe('docker-compose.yml: the file', () => {
  it('is valid against the Compose Specification schema', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as {
      title: string;
      $schema: string;
    };
    expect(schema.title).toBe('Compose Specification');
    // Draft 07, named by its https URL, which ajv knows by its http one (dclint does the same).
    expect(schema.$schema).toMatch(/^https?:\/\/json-schema\.org\/draft-07\/schema#?$/);
    schema.$schema = 'http://json-schema.org/draft-07/schema#';
    const ajv = new AjvModule.default({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const ok = validate(doc);
    expect(ok, JSON.stringify(validate.errors, null, 2)).toBe(true);
    // The schema catches unknown keys: a misspelt one fails.
    const typo = structuredClone(doc);
    (typo.services.checkout as Record<string, unknown>).helthcheck = {};
    expect(validate(typo)).toBe(false);
  });

  it('publishes every port on 127.0.0.1 only', () => {
    let n = 0;
    for (const [name, s] of Object.entries(doc.services))
      for (const p of ports(s)) {
        expect(p.hostIp, `${name}: ${JSON.stringify(p)}`).toBe('127.0.0.1');
        expect(p.published, `${name}: a fixed host port`).toBeGreaterThan(0);
        n++;
      }
    expect(n).toBeGreaterThanOrEqual(5);
  });

  it('requires FLASHCROWD_ADMIN_TOKEN (the admin routes accept remote clients)', () => {
    expect(() => interpolateAll(doc, {})).toThrow(/FLASHCROWD_ADMIN_TOKEN/);
    for (const name of ['mocks', 'checkout']) {
      expect(doc.services[name]!.command).toContain('--admin-remote');
      expect(
        serviceEnv(interpolateAll(doc.services[name]!, { FLASHCROWD_ADMIN_TOKEN: 't' }), {}),
      ).toMatchObject({ FLASHCROWD_ADMIN_TOKEN: 't' });
    }
  });

  it('pins k6 to the image version flashcrowd is tested with, and its defaults are the presets` CI scales', () => {
    const k6 = interpolateAll(doc.services.k6!, {});
    expect(k6.image).toBe(K6_IMAGE);
    expect(k6.profiles).toEqual(['k6']);
    const { preset } = loadPreset('livestream-spike');
    expect(k6.command).toContain(`TIME_SCALE=${preset.ci.timeScale}`);
    expect(k6.command).toContain(`LOAD_SCALE=${preset.ci.loadScale}`);
    expect(
      interpolateAll(doc.services.checkout!, { FLASHCROWD_ADMIN_TOKEN: 't' }).command,
    ).toContain(`timeScale=${preset.ci.timeScale}`);
  });

  it('the Dockerfile runs the CLI, and .dockerignore keeps installed and generated files out', () => {
    expect(/^ENTRYPOINT (.+)$/m.exec(dockerfile)?.[1]).toBe('["node", "bin/flashcrowd.js"]');
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    const ignored = readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['node_modules', '.tools', 'reports', 'scratch']) expect(ignored).toContain(p);
    const built = Object.entries(doc.services).filter(([, s]) => s.build !== undefined);
    expect(built.map(([n]) => n).sort()).toEqual(['checkout', 'mocks']);
  });
});

// ---------------------------------------------------------------- the commands, as local processes

async function isFree(port: number): Promise<boolean> {
  const srv = net.createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** `n` consecutive free loopback ports (`mock all --port N` takes N, N+1, N+2). */
async function freeRange(n: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await isFree(p);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

/** The order compose starts services in: each after what it depends on. */
function startOrder(names: string[]): string[] {
  const done: string[] = [];
  const visit = (n: string) => {
    if (done.includes(n)) return;
    for (const d of Object.keys(doc.services[n]?.depends_on ?? {})) visit(d);
    done.push(n);
  };
  names.forEach(visit);
  return done;
}

async function waitHealthy(name: string, test: string[], rewrite: (s: string) => string) {
  expect(test[0], `${name}: healthcheck in exec form`).toBe('CMD');
  const [cmd, ...args] = test.slice(1).map(rewrite);
  const bin = cmd === 'node' ? process.execPath : cmd!;
  const until = Date.now() + 30_000;
  let last = '';
  while (Date.now() < until) {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code === 0) return;
    last = `exit ${code} ${out.trim()}`;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name}: healthcheck never passed (${last})`);
}

async function http(url: string, init: { method?: string; body?: unknown; token?: boolean } = {}) {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(init.token === false ? {} : { authorization: `Bearer ${TOKEN}` }),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as any };
}

describe('docker-compose.yml: each flashcrowd command runs as a local process', () => {
  const env: Record<string, string | undefined> = {
    ...process.env,
    FLASHCROWD_ADMIN_TOKEN: TOKEN,
  };
  const services = interpolateAll(doc.services, env);
  const procs: { name: string; child: ChildProcess; out: () => string }[] = [];
  /** "service:port" (compose network) and the local address it stands for. */
  const addr = new Map<string, string>();
  /** Per service: "127.0.0.1:port" inside its container and the local address. */
  const self = new Map<string, Map<string, string>>();
  let redis: RedisHandle | undefined;

  const rewriteFor = (name: string) => (s: string) => {
    let r = s;
    for (const [from, to] of [...addr, ...(self.get(name) ?? [])]) r = r.split(from).join(to);
    return r;
  };

  beforeAll(async () => {
    expect(findTool('redis-server'), 'redis-server: run `node scripts/setup.mjs`').toBeDefined();
    // Prometheus is not ours either: test/prometheus.test.ts runs the real server on compose/prometheus.yml.
    const order = startOrder(
      Object.keys(services).filter((n) => !services[n]!.profiles && n !== 'prometheus'),
    );
    expect(order).toEqual(['redis', 'mocks', 'checkout']);
    const entrypoint = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(dockerfile)![1]!) as string[];
    for (const name of order) {
      const s = services[name]!;
      if (s.build === undefined) {
        // Only Redis is not ours: a local redis-server stands for it.
        expect(s.image).toMatch(/^redis:7/);
        redis = await startLocalRedis();
        for (const p of ports(s)) addr.set(`${name}:${p.target}`, `127.0.0.1:${redis.port}`);
        continue;
      }
      const args = [...s.command!];
      const portAt = args.indexOf('--port');
      expect(portAt, `${name}: --port in its command`).toBeGreaterThan(0);
      const listen = Number(args[portAt + 1]);
      const targets = ports(s).map((p) => p.target);
      const base = await freeRange(Math.max(...targets) - listen + 1);
      const mine = new Map<string, string>();
      for (const t of targets) {
        addr.set(`${name}:${t}`, `127.0.0.1:${base + t - listen}`);
        mine.set(`127.0.0.1:${t}`, `127.0.0.1:${base + t - listen}`);
      }
      self.set(name, mine);
      args[portAt + 1] = String(base);
      const hostAt = args.indexOf('--host');
      expect(args[hostAt + 1]).toBe('0.0.0.0');
      args[hostAt + 1] = '127.0.0.1';
      const rewrite = rewriteFor(name);
      const [cmd, ...pre] = entrypoint;
      expect(cmd).toBe('node');
      const child = spawn(process.execPath, [...pre, ...args.map(rewrite)], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...serviceEnv(s, env) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      procs.push({ name, child, out: () => out });
      const exited = once(child, 'exit').then(([code]) => {
        throw new Error(`${name} exited with ${code} before it was healthy:\n${out}`);
      });
      await Promise.race([waitHealthy(name, s.healthcheck!.test, rewrite), exited]);
    }
  }, 90_000);

  afterAll(async () => {
    // `docker compose stop` sends SIGTERM: each stops cleanly.
    for (const p of procs.reverse()) {
      if (p.child.exitCode !== null) continue;
      const exited = once(p.child, 'exit');
      p.child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code, `${p.name} on SIGTERM:\n${p.out().slice(-2_000)}`).toBe(0);
    }
    await redis?.close();
  });

  const url = (svc: string, port: number) => `http://${addr.get(`${svc}:${port}`)}`;

  it('the admin routes want the token; a wallet payment is notified to the checkout at its --public-url', async () => {
    const checkout = url('checkout', 8100);
    const wallet = url('mocks', 8102);
    const sale = { skus: [{ id: 'lipstick', price: 9900, stock: 5, limit: 1 }] };
    expect((await http(`${checkout}/admin/sale`, { body: sale, token: false })).status).toBe(401);
    expect((await http(`${checkout}/admin/sale`, { body: sale })).status).toBe(201);
    const order = await http(`${checkout}/v1/orders`, {
      body: { user: 'u1', sku: 'lipstick', channel: 'alipay' },
    });
    expect(order.status, JSON.stringify(order.body)).toBe(201);
    const id = order.body.id as string;
    const paid = await http(`${checkout}/v1/orders/${id}/pay`, { body: { channel: 'alipay' } });
    expect(paid.status, JSON.stringify(paid.body)).toBe(200);
    const trades = await http(`${wallet}/v1/trades?outTradeNo=${id}`);
    const tradeNo = trades.body.data[0].tradeNo as string;
    // The checkout told the wallet http://checkout:8100 (its --public-url), here that process.
    let notice: any;
    for (let i = 0; i < 80; i++) {
      notice = (await http(`${wallet}/v1/notifications?tradeNo=${tradeNo}`)).body.data[0];
      if (notice?.state === 'acked') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(notice?.notifyUrl).toBe(`${checkout}/v1/notify/alipay`);
    expect(notice?.state, JSON.stringify(notice)).toBe('acked');
  });

  it("the README's line: `flashcrowd run livestream-spike --ci --variant hardened --target ...` passes against them", async () => {
    const out = join(tmp, 'run');
    const args = [
      'run',
      'livestream-spike',
      '--variant',
      'hardened',
      '--ci',
      '--progress',
      'plain',
      '--out',
      out,
      '--target',
      url('checkout', 8100),
      '--bank',
      url('mocks', 8101),
      '--wallet',
      url('mocks', 8102),
      '--coupon',
      url('mocks', 8103),
      '--redis',
      `redis://${addr.get('redis:6379')}`,
    ];
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'flashcrowd.js'), ...args], {
      env: { ...process.env, FLASHCROWD_ADMIN_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const t = setTimeout(() => child.kill('SIGINT'), 200_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(t);
    expect(code, log.slice(-6_000)).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.verdict).toBe('pass');
    expect(summary.warnings ?? []).toEqual([]);
  }, 240_000);

  // k6 is the user's (flashcrowd installs none): its command is checked against the script it runs.
  it("k6's command runs the mounted livestream script with only variables the script reads", () => {
    const s = services.k6!;
    const mount = s.volumes!.find((v) => v.startsWith('./scenarios:'))!;
    const inContainer = mount.split(':')[1]!;
    const cmd = s.command!;
    expect(cmd[0]).toBe('run');
    expect(cmd.at(-1)).toBe(`${inContainer}/livestream.ts`);
    const script = readFileSync(join(PROJECT_ROOT, 'scenarios', 'livestream.ts'), 'utf8');
    const reads = new Set(
      [...script.matchAll(/__ENV\.([A-Z_]+)|envNumber\('([A-Z_]+)'/g)].map((m) => m[1] ?? m[2]),
    );
    reads.add('SEED');
    const given = cmd.flatMap((a, i) => (cmd[i - 1] === '-e' ? [a.split('=')[0]!] : []));
    expect(given.length).toBeGreaterThan(3);
    for (const v of given) expect(reads, v).toContain(v);
  });
});
