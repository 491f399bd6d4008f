// For k6 users and for anyone who binds outside loopback:
// - `run --engine k6 --k6-out VALUE` forwards each output as `k6 run --out
//   VALUE` (a stand-in k6 records its arguments: k6 itself is not installed
//   here, and never is);
// - `flashcrowd up` seeds the sale of the preset its printed k6 line plays, so
//   the line works as printed: every SKU it will order exists (an order placed
//   with fetch, as the script would, is accepted), where `--no-seed-sale`
//   answers 404 unknown_sku as `up` did before;
// - `up`, `checkout` and `mock` refuse a non-loopback --host without
//   FLASHCROWD_ADMIN_TOKEN (usage error, exit 2), and with it the admin routes
//   ask for the token.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { K6Engine, k6OutArgs } from '../harness/engine/k6.ts';
import type { LoadPlan } from '../harness/engine/types.ts';
import { UsageError } from '../harness/errors.ts';
import { loadPreset, resolvePreset } from '../harness/preset.ts';
import { checkHostToken, isLoopbackHost, k6CommandArgs, shellLine, upPlan } from '../harness/up.ts';
import { runCli } from './support/cli.ts';
import { startUp, type UpStack } from './support/up.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-up-k6-'));
const started: UpStack[] = [];

afterAll(async () => {
  for (const u of started) await u.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Environment without the admin token. */
function envWithout(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.FLASHCROWD_ADMIN_TOKEN;
  return env;
}

describe('run --engine k6 --k6-out', () => {
  it('each output becomes --out, in order; a file output’s path is made absolute and its folder mounted', () => {
    expect(
      k6OutArgs(
        [
          'json=out/results.json',
          'experimental-prometheus-rw',
          'web-dashboard',
          'csv=/abs/x.csv.gz',
        ],
        '/work',
      ),
    ).toEqual({
      args: [
        '--out',
        'json=/work/out/results.json',
        '--out',
        'experimental-prometheus-rw',
        '--out',
        'web-dashboard',
        '--out',
        'csv=/abs/x.csv.gz',
      ],
      mounts: ['/work/out', '/abs'],
    });
    expect(k6OutArgs([])).toEqual({ args: [], mounts: [] });
    expect(() => k6OutArgs(['--vus=10'])).toThrow(UsageError);
    expect(() => k6OutArgs([' '])).toThrow(/--k6-out takes a k6 output/);
  });

  it('the k6 engine runs k6 with them (a stand-in k6 records its arguments)', async () => {
    const argsFile = join(tmp, 'k6-args.txt');
    const fake = join(tmp, 'k6');
    writeFileSync(
      fake,
      `#!/bin/sh\nif [ "$1" = version ]; then echo "k6 v1.8.1 (stand-in)"; exit 0; fi\nprintf '%s\\n' "$@" > '${argsFile}'\nexit 0\n`,
    );
    chmodSync(fake, 0o755);
    const resolved = resolvePreset(loadPreset('livestream-spike').preset, {
      seed: 1,
      timeScale: 0.0166667,
      loadScale: 0.125,
    });
    const plan: LoadPlan = {
      journey: { name: 'livestream', config: { preset: resolved, target: ['http://127.0.0.1:9'] } },
      shape: resolved.traffic,
      preAllocatedVUs: 1,
      maxVUs: 1,
      gracefulStopS: 1,
      k6: {
        script: join(tmp, 'script.ts'),
        env: { TARGET_URL: 'http://127.0.0.1:9' },
        mounts: [tmp],
        summaryFile: join(tmp, 'summary.json'),
      },
    };
    const engine = new K6Engine({ kind: 'binary', path: fake, from: 'PATH' }, [
      'json=results.json',
      'web-dashboard',
    ]);
    expect(engine.describe()).toMatch(/^k6 v1\.8\.1/);
    await engine.start(plan);
    const result = await engine.result();
    expect(result.exitCode).toBe(0);
    const argv = readFileSync(argsFile, 'utf8').trim().split('\n');
    const outs = argv.flatMap((a, i) => (a === '--out' ? [argv[i + 1]] : []));
    expect(outs).toEqual([`json=${join(process.cwd(), 'results.json')}`, 'web-dashboard']);
    // The script stays the last argument.
    expect(argv.at(-1)).toBe(plan.k6!.script);
  });

  it('--k6-out without --engine k6 is a usage error (exit 2) before anything starts', async () => {
    const r = await runCli(['run', 'livestream-spike', '--ci', '--k6-out', 'json=x.json'], {
      timeoutMs: 30_000,
    });
    expect(r.code, r.log).toBe(2);
    expect(r.log).toMatch(/--k6-out passes outputs to k6: it goes with --engine k6/);
  });
});

describe('flashcrowd up: the k6 line it prints works as printed', () => {
  it('builds the line from the plan: the preset, its scales and seed, every instance', () => {
    const plan = upPlan({ seed: 3 });
    expect(plan).toMatchObject({
      preset: 'livestream-spike',
      timeScale: 0.0166667,
      loadScale: 0.125,
    });
    const urls = {
      checkout: 'http://127.0.0.1:1',
      checkouts: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
      bank: 'http://127.0.0.1:3',
      wallet: 'http://127.0.0.1:4',
      coupon: 'http://127.0.0.1:5',
      redis: 'redis://127.0.0.1:6',
    };
    const line = shellLine(k6CommandArgs(urls, plan, 'scenarios/livestream.ts'));
    expect(line).toBe(
      'k6 run --no-usage-report -e TARGET_URLS=http://127.0.0.1:1,http://127.0.0.1:2 -e COUPON_URL=http://127.0.0.1:5 ' +
        '-e PRESET=livestream-spike -e TIME_SCALE=0.0166667 -e LOAD_SCALE=0.125 -e SEED=3 scenarios/livestream.ts',
    );
    expect(shellLine(['a b', "it's"])).toBe(`'a b' 'it'\\''s'`);
    expect(() => upPlan({ seed: 1, preset: 'some/file.json' })).toThrow(UsageError);
  });

  it('the sale the line plays is seeded: an order of each of its SKUs is accepted; without the seed it is 404 unknown_sku', async () => {
    const up = await startUp(['--instances', '1']);
    started.push(up);
    const argv = (up.urls as unknown as { k6: string[] }).k6;
    expect(argv.slice(0, 3)).toEqual(['k6', 'run', '--no-usage-report']);
    const env = Object.fromEntries(
      argv.flatMap((a, i) => (argv[i - 1] === '-e' ? [a.split(/=(.*)/s).slice(0, 2)] : [])),
    ) as Record<string, string>;
    expect(env.TARGET_URL).toBe(up.urls.checkout);
    expect(env.COUPON_URL).toBe(up.urls.coupon);
    // What the script reads: the preset by name at these scales (scenarios/livestream.ts loadPreset).
    const resolved = resolvePreset(loadPreset(env.PRESET!).preset, {
      seed: Number(env.SEED),
      timeScale: Number(env.TIME_SCALE),
      loadScale: Number(env.LOAD_SCALE),
    });
    expect(resolved.sale.skus.length).toBeGreaterThan(0);
    for (const [i, sku] of resolved.sale.skus.entries()) {
      const r = await fetch(`${env.TARGET_URL}/v1/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: `k6-line-${i}`, sku: sku.id, quantity: 1 }),
      });
      const body = (await r.json()) as { reason?: string };
      expect(r.status, `${sku.id}: ${JSON.stringify(body)}`).toBe(201);
    }

    const bare = await startUp(['--no-seed-sale']);
    started.push(bare);
    expect((bare.urls as unknown as { k6?: string[] }).k6).toBeUndefined();
    const r = await fetch(`${bare.urls.checkout}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'k6-line-0', sku: resolved.sale.skus[0]!.id, quantity: 1 }),
    });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { reason: string }).reason).toBe('unknown_sku');
  }, 90_000);
});

describe('a non-loopback --host needs FLASHCROWD_ADMIN_TOKEN', () => {
  it('loopback addresses are told from the others', () => {
    for (const h of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '128.0.0.1'])
      expect(isLoopbackHost(h), h).toBe(false);
    expect(() => checkHostToken('up', '0.0.0.0', {})).toThrow(UsageError);
    expect(() => checkHostToken('up', '0.0.0.0', { FLASHCROWD_ADMIN_TOKEN: 't' })).not.toThrow();
    expect(() => checkHostToken('up', '127.0.0.1', {})).not.toThrow();
  });

  for (const argv of [
    ['up', '--host', '0.0.0.0'],
    ['checkout', '--host', '0.0.0.0'],
    ['mock', 'all', '--host', '::'],
  ])
    it(`${argv.join(' ')} without the token: usage error, exit 2, says why`, async () => {
      const r = await runCli(argv, { env: envWithout(), timeoutMs: 30_000 });
      expect(r.code, r.log).toBe(2);
      expect(r.log).toMatch(/non-loopback address exposes the admin routes/);
      expect(r.log).toMatch(/set FLASHCROWD_ADMIN_TOKEN/);
    });

  it('up --host 0.0.0.0 with the token: it serves, and the admin routes ask for the token', async () => {
    const up = await startUp(['--host', '0.0.0.0', '--no-seed-sale'], {
      ...process.env,
      FLASHCROWD_ADMIN_TOKEN: 'host-test-token',
    });
    started.push(up);
    const port = new URL(up.urls.checkout).port;
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/admin/config`)).status).toBe(401);
    const ok = await fetch(`${base}/admin/config`, {
      headers: { authorization: 'Bearer host-test-token' },
    });
    expect(ok.status).toBe(200);
  }, 60_000);
});
