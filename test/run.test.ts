// `flashcrowd run` end to end, as a user or a CI job runs it: flashcrowd's own
// load engine, real Redis, the real mocks and checkout as child processes, at
// half the presets' --ci time-scale (test/compose.test.ts runs the README's
// --ci line). A 10-second livestream-spike passes its preset's budgets
// (retry-storm's variants, the naive one failing with leaks the audit finds,
// in test/reproducibility.test.ts and test/phenomena.test.ts);
// exit codes 0, 1 and 2 as documented; the report files exist and parse
// (summary.json against its schema, junit.xml against the JUnit XSD); a load
// generator that sends no traffic never passes. (Its usage errors, which start
// nothing, are in test/run-usage.test.ts.)
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import { scheduledCount, type Shape } from '../harness/engine/schedule.ts';
import { runSummarySchema, timeSeriesSchema, type RunSummary } from '../harness/summary.ts';
import { HALF_CI, processesMarked } from './support/cli.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
const XSD = join(import.meta.dirname, 'fixtures', 'junit.xsd');
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-run-'));

/** Docker sockets testcontainers would find whatever DOCKER_HOST says. */

/** Run the CLI asynchronously (vitest keeps its own event loop free), with output for failure messages. */
function cliAsync(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env) {
  return new Promise<{ status: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
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

/** A port nothing listens on now (the OS's pick, released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
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

/** A stand-in "k6" that exits 0 at once, sending nothing (a broken or fake load generator). */
function idleK6(): string {
  const path = join(tmp, 'idle-k6');
  writeFileSync(path, '#!/bin/sh\n[ "$1" = version ] && echo "k6 v0.0.0-idle"\nexit 0\n');
  chmodSync(path, 0o755);
  return path;
}

describe("flashcrowd run end to end (flashcrowd's engine, Redis, mocks and checkout)", () => {
  it('livestream-spike at half the CI time-scale (2 worker threads) passes its preset budgets; a failing --budget makes it exit 1; the report files parse', async () => {
    const out = join(tmp, 'spike');
    const r = await cliAsync(
      [
        'run',
        'livestream-spike',
        '--variant',
        'hardened',
        ...HALF_CI,
        '--seed',
        '7',
        '--out',
        out,
        '--progress',
        'plain',
        '--budget',
        'stock.sold_ratio>1.5',
        '--workers',
        '2',
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
    // Every scheduled arrival started or was dropped, and the run says which engine ran.
    expect(s.engine).toMatchObject({
      name: 'flashcrowd',
      detail: expect.stringMatching(/2 worker threads/),
    });
    expect(s.traffic).toMatchObject({ unaccounted: 0, tolerance: 0 });
    expect(s.traffic!.started).toBe(s.metrics.arrivals);
    expect(s.traffic!.scheduled).toBe(s.traffic!.started! + s.traffic!.dropped);
    expect(s.budgets.find((b) => b.source === 'harness')).toMatchObject({
      metric: 'arrivals.unaccounted',
      ok: true,
    });
    expect(s.metrics['stock.sold']).toBeGreaterThan(0);
    // The checkout's order events are in the summary: every unit sold was an order paid.
    const event = (name: string) => s.events!.orders.find((x) => x.event === name)?.count ?? 0;
    expect(event('created')).toBeGreaterThanOrEqual(s.metrics['stock.sold']!);
    const paid = ['paid', 'paid_by_notify', 'paid_by_reconciler', 'late_rereserved'];
    expect(paid.reduce((n, e) => n + event(e), 0)).toBe(s.metrics['stock.sold']); // one unit an order
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/\| `created` \| [\d,]+ \|/);
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

  it('a system that has not settled when the quiescence bound runs out fails the run: --quiescence 0 leaves open orders, quiescence.unsettled names them (exit 1)', async () => {
    const out = join(tmp, 'unsettled');
    const r = await cliAsync(
      [
        'run',
        'livestream-spike',
        '--variant',
        'hardened',
        ...HALF_CI,
        '--seed',
        '7',
        '--quiescence',
        '0',
        '--out',
        out,
      ],
      240_000,
    );
    expect(r.status, r.out.slice(-4_000)).toBe(1);
    const s = readSummary(out);
    expect(s.verdict).toBe('fail');
    const b = s.budgets.find((x) => x.metric === 'quiescence.unsettled')!;
    expect(b).toMatchObject({ ok: false, source: 'harness', expr: 'quiescence.unsettled==0' });
    expect(b.value).toBeGreaterThan(0);
    expect(b.note).toMatch(/not settled within 0 s: .*(still reserved|watched for a late payment)/);
    expect(s.metrics['quiescence.unsettled']).toBe(b.value);
    expect(s.warnings.join('\n')).toMatch(/not settled within 0 s: still moving/);
    // The failure is the harness's: the traffic's own budgets held. (Leaks and the
    // invariants are counted as found: an open order already past its deadline when
    // the bound ran out, before the sweeper reached it, is a leak at that moment.)
    const traffic = s.budgets.filter(
      (x) => x.source === 'preset' && !/^(leaks\.|invariants\.)/.test(x.metric),
    );
    expect(traffic.length).toBeGreaterThan(3);
    for (const x of traffic) expect(x.ok, `${x.expr}: ${x.value}`).toBe(true);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/quiescence\.unsettled/);
  }, 300_000);

  it('livestream-spike with --runners 2: two `flashcrowd load` processes run the schedule between them, merged by the harness, and it passes', async () => {
    const port = await freePort();
    const out = join(tmp, 'runners');
    const harness = `http://127.0.0.1:${port}`;
    const run = cliAsync(
      [
        'run',
        'livestream-spike',
        '--variant',
        'hardened',
        ...HALF_CI,
        '--seed',
        '7',
        '--out',
        out,
        '--progress',
        'plain',
      ].concat(['--runners', '2', '--listen', `127.0.0.1:${port}`, '--runner-timeout', '120']),
      240_000,
    );
    // The runners may start before the harness listens: they retry until it answers.
    const runners = ['1/2', '2/2'].map((seg, i) =>
      cliAsync(
        ['load', '--harness', harness, '--segment', seg, '--name', `r${i + 1}`, '--wait', '180'],
        240_000,
      ),
    );
    const r = await run;
    const rs = await Promise.all(runners);
    expect(r.status, r.out.slice(-6_000)).toBe(0);
    for (const x of rs) expect(x.status, x.out).toBe(0);
    expect(r.out).toContain(`flashcrowd load --harness ${harness} --segment 2/2`);
    const s = readSummary(out);
    expect(s.verdict).toBe('pass');
    expect(s.engine!.detail).toMatch(/2 runner processes: 1\/2 r1 \(clock [+-]\d+ ms\), 2\/2 r2/);
    // The schedule is the preset's, whoever runs it; each runner took its share, once.
    const resolved = JSON.parse(readFileSync(join(out, 'preset.resolved.json'), 'utf8')) as {
      traffic: Shape;
    };
    expect(s.traffic!.scheduled).toBe(scheduledCount(resolved.traffic));
    expect(s.traffic).toMatchObject({ unaccounted: 0, tolerance: 0 });
    const started = rs.map((x) => Number(/done, (\d+) started, (\d+) dropped/.exec(x.out)![1]));
    const dropped = rs.map((x) => Number(/done, (\d+) started, (\d+) dropped/.exec(x.out)![2]));
    expect(started[0]! + started[1]!).toBe(s.traffic!.started);
    expect(dropped[0]! + dropped[1]!).toBe(s.traffic!.dropped);
    // Segment i mod 2: the two shares differ by at most one arrival plus what each dropped.
    expect(Math.abs(started[0]! + dropped[0]! - (started[1]! + dropped[1]!))).toBeLessThanOrEqual(
      1,
    );
    expect(s.metrics.arrivals).toBe(s.traffic!.started);
    expect(s.invariants.filter((i) => i.ok === false)).toEqual([]);
  }, 300_000);

  it("SIGTERM to the run's process group mid-traffic stops the load, still audits and writes every report marked interrupted, exit 143, nothing left running", async () => {
    const out = join(tmp, 'interrupted');
    const mark = `FLASHCROWD_TEST_MARK=${randomUUID()}`;
    const [k, v] = mark.split('=') as [string, string];
    const child = spawn(
      process.execPath,
      [
        BIN,
        'run',
        'livestream-spike',
        '--variant',
        'hardened',
        '--ci',
        '--seed',
        '3',
        '--out',
        out,
        '--progress',
        'plain',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, [k]: v } },
    );
    let text = '';
    const seen = new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        text += d.toString();
        // A few seconds into the traffic: the second progress line (plain: one every 5 s) after the traffic line.
        if (/traffic: [\s\S]*\n.*\n.*\n/.test(text)) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    await Promise.race([seen, exited]);
    process.kill(-child.pid!, 'SIGTERM');
    const code = await exited;
    expect(code, text.slice(-4_000)).toBe(143);
    expect(text).not.toMatch(/ECONNREFUSED|Unhandled|at .*\.ts:\d+/);
    const s = readSummary(out);
    expect(s.interrupted).toMatchObject({ signal: 'SIGTERM' });
    expect(s.interrupted!.afterTrafficS).toBeGreaterThan(0);
    expect(s.exitCode).toBe(143);
    expect(s.verdict).toBe('fail');
    expect(s.warnings[0]).toMatch(/^interrupted by SIGTERM after [\d.]+ s of traffic/);
    // The audit still ran against the stack (Redis and the mocks outlived the signal).
    expect(s.invariants.length).toBe(11);
    expect(s.invariants.filter((i) => i.id !== 'I10').every((i) => i.ok !== null)).toBe(true);
    expect(s.quiescence).toMatchObject({
      settled: false,
      note: expect.stringMatching(/interrupted/),
    });
    for (const f of Object.values(s.files)) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/interrupted by SIGTERM/);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toMatch(/interrupted by SIGTERM/);
    expect(readFileSync(join(out, 'junit.xml'), 'utf8')).toMatch(/interrupted by SIGTERM/);
    // The stack's process groups ended with the run.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(processesMarked(mark)).toEqual([]);
  }, 240_000);

  it('a load generator that sends nothing never passes: a k6 that exits 0 at once fails the run (exit 1) on arrivals.unaccounted, in every report', async () => {
    const out = join(tmp, 'idle');
    const r = await cliAsync(
      [
        'run',
        'ambiguous-capture',
        '--variant',
        'hardened',
        '--ci',
        '--engine',
        'k6',
        '--out',
        out,
        '--progress',
        'none',
      ],
      240_000,
      { ...process.env, FLASHCROWD_K6: idleK6() },
    );
    expect(r.status, r.out.slice(-4_000)).toBe(1);
    const s = readSummary(out);
    expect(s.verdict).toBe('fail');
    expect(s.engine?.name).toBe('k6');
    expect(s.traffic!.scheduled).toBeGreaterThan(100);
    expect(s.traffic!.unaccounted).toBe(s.traffic!.scheduled);
    const b = s.budgets.find((x) => x.metric === 'arrivals.unaccounted')!;
    expect(b).toMatchObject({ ok: false, source: 'harness' });
    expect(b.note).toMatch(/the load did not run as scheduled/);
    // The preset's own budgets alone would have passed this run: nothing was sent, nothing broke.
    expect(s.budgets.filter((x) => x.source === 'preset').every((x) => x.ok)).toBe(true);
    expect(s.warnings.join('\n')).toMatch(/unaccounted for, so the run cannot pass/);
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/arrivals\.unaccounted/);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toMatch(/arrivals\.unaccounted/);
    expect(await expectJUnitValid(out)).toMatch(/arrivals\.unaccounted/);
    expect(r.out).toMatch(/FAIL: ambiguous-capture/);
  }, 300_000);
});

describe('flashcrowd run --target: an audit that cannot run never passes', () => {
  it('a target without mocks or Redis: the run still loads it, every invariant is undecided saying why, and invariants.broken==0 fails with 11 (exit 1)', async () => {
    const { startStack } = await import('../harness/stack.ts');
    const logDir = mkdtempSync(join(tmpdir(), 'flashcrowd-target-'));
    const stack = await startStack({ seed: 4, mode: 'hardened', set: [], logDir });
    try {
      const out = join(tmp, 'unaudited');
      const r = await cliAsync(
        [
          'run',
          'livestream-spike',
          '--variant',
          'hardened',
          ...HALF_CI,
          '--out',
          out,
          '--progress',
          'none',
        ].concat(['--target', stack.urls.checkout]),
        240_000,
      );
      expect(r.status, r.out.slice(-4_000)).toBe(1);
      const s = readSummary(out);
      expect(s.invariants).toHaveLength(11);
      for (const i of s.invariants) {
        expect(i.ok, i.id).toBeNull();
        expect(i.note).toBe('not audited: no Redis URL for the target (--redis)');
      }
      expect(s.metrics['invariants.undecided']).toBe(11);
      const b = s.budgets.find((x) => x.expr === 'invariants.broken==0')!;
      expect(b).toMatchObject({ ok: false, value: 11 });
      // What the audit would have measured has no value, so its budgets fail too.
      expect(s.budgets.find((x) => x.expr === 'leaks.stock==0')).toMatchObject({
        ok: false,
        value: null,
      });
      expect(s.warnings.join('\n')).toMatch(
        /the audit was skipped, so every invariant is undecided/,
      );
      expect(s.traffic!.scheduled).toBeGreaterThan(100);
    } finally {
      await stack.stop();
    }
  }, 300_000);
});
