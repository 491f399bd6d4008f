// `flashcrowd run` end to end, as a user or a CI job runs it: real k6, real
// Redis, the real mocks and checkout as child processes. A 20-second
// livestream-spike passes its preset's budgets; retry-storm's naive variant
// fails its budgets with leaks the audit finds while the hardened one passes;
// exit codes 0, 1 and 2 as documented; the report files exist and parse
// (summary.json against its schema, junit.xml against the JUnit XSD).
import { randomUUID } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import { runSummarySchema, timeSeriesSchema, type RunSummary } from '../harness/summary.ts';
import { findTool } from '../harness/tools.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
const XSD = join(import.meta.dirname, 'fixtures', 'junit.xsd');
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-run-'));

function cli(args: string[], timeout = 30_000, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout, env });
}

/** Pids of the processes whose environment holds `mark` (readable ones: this user's). */
function processesMarked(mark: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(mark)) pids.push(Number(d));
    } catch {
      /* gone, or another user's */
    }
  }
  return pids;
}

/** Docker sockets testcontainers would find whatever DOCKER_HOST says. */

/** Run the CLI asynchronously (vitest keeps its own event loop free), with output for failure messages. */
function cliAsync(args: string[], timeoutMs: number) {
  return new Promise<{ status: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(t);
      resolve({ status, out });
    });
  });
}

function readSummary(dir: string): RunSummary {
  const raw = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as unknown;
  const r = runSummarySchema.safeParse(raw);
  expect(r.success, JSON.stringify(r.error?.issues?.slice(0, 5))).toBe(true);
  return r.data!;
}

async function expectJUnitValid(dir: string) {
  const xml = readFileSync(join(dir, 'junit.xml'), 'utf8');
  const v = await validateXML({
    xml: [{ fileName: 'junit.xml', contents: xml }],
    schema: [{ fileName: 'junit.xsd', contents: readFileSync(XSD, 'utf8') }],
  });
  expect(v.valid, v.rawOutput).toBe(true);
  return xml;
}

function requireK6() {
  expect(
    findTool('k6'),
    'k6 not found: run `node scripts/setup.mjs` (npm test does)',
  ).toBeDefined();
}

describe('flashcrowd run: usage errors exit 2 before anything starts', () => {
  it('an unknown preset names the known ones', () => {
    const r = cli(['run', 'no-such-preset']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no preset "no-such-preset".*livestream-spike/s);
  });

  it('a budget naming an unknown metric is refused with a suggestion', () => {
    const r = cli(['run', 'livestream-spike', '--ci', '--budget', 'pay.failure_rat<0.02']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/pay\.failure_rat/);
    expect(r.stderr).toMatch(/pay\.failure_rate/);
  });

  it('a target outside loopback is refused without --allow-remote-target', () => {
    const r = cli(['run', 'livestream-spike', '--ci', '--target', 'http://10.1.2.3:8080']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a loopback address/);
    expect(r.stderr).toMatch(/--allow-remote-target/);
  });

  it('a time-scale above 1 is refused naming the option', () => {
    const r = cli(['run', 'livestream-spike', '--time-scale', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--time-scale/);
  });

  // DOCKER_HOST names the engine meant: one that does not answer is "no Docker", whatever
  // other sockets this machine has.
  it('FLASHCROWD_K6=docker with no Docker engine exits 2 naming k6 and Docker, before the stack starts', () => {
    const id = randomUUID();
    const out = join(tmp, 'k6-docker');
    const r = cli(['run', 'livestream-spike', '--ci', '--out', out], 30_000, {
      ...process.env,
      FLASHCROWD_K6: 'docker',
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      FLASHCROWD_TEST_MARK: id,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/FLASHCROWD_K6=docker/);
    expect(r.stderr).toMatch(/grafana\/k6:\d+\.\d+\.\d+ container/);
    expect(r.stderr).toMatch(
      /no Docker engine answered at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock \(.+\)/,
    );
    expect(r.stderr).toMatch(/npm run setup/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(r.stdout).not.toMatch(/redis|checkout/i); // nothing was started
    expect(existsSync(out)).toBe(false);
    expect(processesMarked(`FLASHCROWD_TEST_MARK=${id}`)).toEqual([]);
  });

  it('FLASHCROWD_K6 naming a missing file exits 2 naming the variable', () => {
    const r = cli(['run', 'livestream-spike', '--ci'], 30_000, {
      ...process.env,
      FLASHCROWD_K6: '/no/such/k6',
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/FLASHCROWD_K6=\/no\/such\/k6: no such file/);
  });

  it('list shows every shipped preset', () => {
    const r = cli(['list', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const names = (JSON.parse(r.stdout) as { name: string; error?: string }[]).map((p) => {
      expect(p.error, p.name).toBeUndefined();
      return p.name;
    });
    for (const n of [
      'livestream-spike',
      'bank-brownout',
      'gateway-outage',
      'callback-chaos',
      'ambiguous-capture',
      'retry-storm',
      'coupon-contention',
      'top-of-hour',
    ])
      expect(names).toContain(n);
  });
});

describe('flashcrowd run end to end (real k6, Redis, mocks and checkout)', () => {
  it('livestream-spike at CI scale passes its preset budgets; a failing --budget makes it exit 1; the report files parse', async () => {
    requireK6();
    const out = join(tmp, 'spike');
    const r = await cliAsync(
      [
        'run',
        'livestream-spike',
        '--ci',
        '--seed',
        '7',
        '--out',
        out,
        '--progress',
        'plain',
        '--budget',
        'stock.sold_ratio>1.5',
      ],
      240_000,
    );
    expect(r.status, r.out.slice(-6_000)).toBe(1);
    const s = readSummary(out);
    const preset = s.budgets.filter((b) => b.source === 'preset');
    expect(preset.length).toBeGreaterThan(0);
    for (const b of preset) expect(b.ok, `${b.expr}: ${b.value} ${b.note ?? ''}`).toBe(true);
    const cliBudget = s.budgets.find((b) => b.source === 'cli')!;
    expect(cliBudget.ok).toBe(false);
    expect(s.verdict).toBe('fail');
    expect(s.invariants.filter((i) => i.ok === false)).toEqual([]);
    expect(s.metrics.arrivals).toBeGreaterThan(50);
    expect(s.metrics['stock.sold']).toBeGreaterThan(0);
    // Every file the summary lists exists; the time series parses and covers the traffic.
    for (const f of Object.values(s.files)) expect(existsSync(join(out, f)), f).toBe(true);
    const series = timeSeriesSchema.parse(
      JSON.parse(readFileSync(join(out, 'timeseries.json'), 'utf8')),
    );
    expect(series.t.length).toBeGreaterThanOrEqual(Math.floor(s.durations.trafficS) - 2);
    const xml = await expectJUnitValid(out);
    expect(xml).toContain('stock.sold_ratio&gt;1.5');
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/FAIL/);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).not.toMatch(/(src|href)="https?:/);
    expect(r.out).toMatch(/\[\d+\/\d+s\]/); // plain progress lines
  }, 300_000);

  it('retry-storm: the naive build fails its budgets with leaks the audit finds, the hardened build passes, so the run exits 0', async () => {
    requireK6();
    const out = join(tmp, 'storm');
    const r = await cliAsync(
      ['run', 'retry-storm', '--ci', '--seed', '3', '--out', out, '--progress', 'none'],
      420_000,
    );
    const naive = readSummary(join(out, 'naive'));
    const hardened = readSummary(join(out, 'hardened'));
    expect(naive.verdict, r.out.slice(-6_000)).toBe('fail');
    expect(naive.checkout.mode).toBe('naive');
    const failed = naive.budgets.filter((b) => !b.ok).map((b) => b.metric);
    expect(failed.length).toBeGreaterThan(0);
    // What the naive build broke is something the audit found, not only a slow answer.
    const found =
      (naive.metrics['leaks.stock'] ?? 0) +
      (naive.metrics['leaks.coupon'] ?? 0) +
      (naive.metrics.double_charges ?? 0) +
      (naive.metrics['invariants.broken'] ?? 0);
    expect(found, JSON.stringify(naive.metrics)).toBeGreaterThan(0);
    expect(hardened.verdict, JSON.stringify(hardened.budgets.filter((b) => !b.ok))).toBe('pass');
    expect(hardened.invariants.filter((i) => i.ok === false)).toEqual([]);
    expect(r.status, r.out.slice(-4_000)).toBe(0);
    await expectJUnitValid(join(out, 'naive'));
  }, 480_000);
});
