// flashcrowd's engine over real HTTP on loopback: the arrival rate a bare
// server observes (within a Poisson tolerance per second; arrival lateness
// measured and printed), a slow target with a small pool drops arrivals and
// counts them, and one worker, several workers and several runner processes
// (`flashcrowd load`) send the same arrivals, each exactly once. A runner that
// dies is named, and nothing hangs (one that never comes, and the harness's
// refusals, which send no load: test/engine-runners.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../harness/engine/embedded.ts';
import { RemoteEngine } from '../harness/engine/remote.ts';
import { arrivals } from '../harness/engine/schedule.ts';
import type { LoadPlan } from '../harness/engine/types.ts';
import { zFor } from './support/stats.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');

interface Seen {
  i: number;
  atMs: number;
}

/** A bare server that notes each request's arrival number (`?i=`) and when it came; `delayMs` before answering. */
async function bareServer(delayMs = 0) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const atMs = performance.timeOrigin + performance.now();
    const i = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('i'));
    seen.push({ i, atMs });
    const end = () => res.end('ok');
    if (delayMs > 0) setTimeout(end, delayMs);
    else end();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hit`;
  return {
    url,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function plan(url: string, rate: number, seconds: number, maxVUs = 200): LoadPlan {
  return {
    journey: { name: 'get', config: { url, withIndex: true } },
    shape: { startRate: rate, stages: [{ durationS: seconds, target: rate }] },
    preAllocatedVUs: 10,
    maxVUs,
    gracefulStopS: 5,
  };
}

/** Each arrival number 0..n-1 exactly once. */
function expectEachOnce(seen: Seen[], n: number) {
  const ids = seen.map((s) => s.i).sort((a, b) => a - b);
  expect(ids).toEqual(Array.from({ length: n }, (_, i) => i));
}

let server: Awaited<ReturnType<typeof bareServer>>;
beforeAll(async () => {
  server = await bareServer();
});
afterAll(async () => {
  await server.close();
});

describe('the engine at a constant arrival rate against a bare server', () => {
  it('the server sees the rate each second within a Poisson tolerance, every arrival once; lateness is measured', async () => {
    server.seen.length = 0;
    const rate = 200;
    const seconds = 5;
    const startAtMs = Date.now() + 1_500;
    const e = new EmbeddedEngine({ workers: 1, startAtMs });
    const p = plan(server.url, rate, seconds);
    await e.start(p);
    const r = await e.result();
    expect(r.scheduled).toBe(rate * seconds);
    expect(r.started).toBe(rate * seconds);
    expect(r.dropped).toBe(0);
    expect(r.summary!.metrics.http_reqs!.values.count).toBe(rate * seconds);
    expect(r.summary!.metrics.iterations!.values.count).toBe(rate * seconds);
    expectEachOnce(server.seen, rate * seconds);
    // Per second of the schedule, the arrivals the server saw: rate +- z sqrt(rate).
    const tol = zFor(0.999) * Math.sqrt(rate);
    const perS = Array.from({ length: seconds }, () => 0);
    for (const s of server.seen) {
      const k = Math.floor((s.atMs - startAtMs) / 1000);
      perS[Math.min(seconds - 1, Math.max(0, k))]! += 1;
    }
    for (const n of perS)
      expect(Math.abs(n - rate), `per second: ${perS.join(', ')}`).toBeLessThan(tol);
    // Lateness: the engine's own (start against schedule) and what the server saw.
    const at = new Map([...arrivals(p.shape)].map((a) => [a.i, startAtMs + a.atS * 1000]));
    const serverLate = server.seen.map((s) => s.atMs - at.get(s.i)!).sort((a, b) => a - b);
    const late = r.summary!.metrics.arrival_lateness!.values;
    expect(late.count).toBe(rate * seconds);
    expect(late.min).toBeGreaterThanOrEqual(0);
    console.log(
      `engine at ${rate}/s: arrival lateness p50 ${late.med!.toFixed(2)} ms, p99 ${late['p(99)']!.toFixed(2)} ms; ` +
        `at the server p50 ${serverLate[Math.floor(serverLate.length / 2)]!.toFixed(2)} ms, ` +
        `p99 ${serverLate[Math.ceil(serverLate.length * 0.99) - 1]!.toFixed(2)} ms`,
    );
  });

  it('a slow target with a small pool: arrivals that find every VU busy are dropped and counted, never delayed', async () => {
    const slow = await bareServer(400);
    try {
      const e = new EmbeddedEngine({ workers: 1 });
      await e.start(plan(slow.url, 50, 2, 4));
      const r = await e.result();
      expect(r.scheduled).toBe(100);
      // 4 VUs busy 400 ms each can start at most 4 x (2 s / 0.4 s + 1) = 24 in 2 s.
      expect(r.started).toBeLessThanOrEqual(24);
      expect(r.dropped).toBe(100 - r.started!);
      expect(r.summary!.metrics.dropped_iterations!.values.count).toBe(r.dropped);
      expect(slow.seen.length).toBe(r.started);
      // A started arrival was never held back waiting for a VU.
      expect(r.summary!.metrics.arrival_lateness!.values.max).toBeLessThan(250);
    } finally {
      await slow.close();
    }
  });
});

describe('segments side by side give the same run as one', () => {
  const rate = 150;
  const seconds = 2;

  it('1 worker and 3 workers: the same arrivals, each once, and the same totals', async () => {
    const totals: number[][] = [];
    for (const workers of [1, 3]) {
      server.seen.length = 0;
      const e = new EmbeddedEngine({ workers });
      await e.start(plan(server.url, rate, seconds));
      const r = await e.result();
      expectEachOnce(server.seen, rate * seconds);
      const m = r.summary!.metrics;
      totals.push([r.started!, r.dropped, m.http_reqs!.values.count!, m.iterations!.values.count!]);
    }
    expect(totals[1]).toEqual(totals[0]);
    expect(totals[0]).toEqual([rate * seconds, 0, rate * seconds, rate * seconds]);
  });

  const children: ChildProcess[] = [];
  const runner = (url: string, segment: string) => {
    const c = spawn(
      process.execPath,
      [BIN, 'load', '--harness', url, '--segment', segment, '--wait', '30'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    children.push(c);
    const exited = new Promise<{ code: number | null; out: string }>((r) =>
      c.on('exit', (code) => r({ code, out })),
    );
    return { child: c, exited };
  };
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('2 runner processes (`flashcrowd load --segment k/2`): the same arrivals, each once, merged by the harness', async () => {
    server.seen.length = 0;
    const e = new RemoteEngine({ runners: 2, registerTimeoutS: 60 });
    const started = e.start(plan(server.url, rate, seconds));
    await new Promise((r) => setTimeout(r, 50));
    const rs = [runner(e.harnessUrl(), '1/2'), runner(e.harnessUrl(), '2/2')];
    await started;
    const r = await e.result();
    const exits = await Promise.all(rs.map((x) => x.exited));
    for (const x of exits) expect(x.code, x.out).toBe(0);
    expectEachOnce(server.seen, rate * seconds);
    expect(r.started).toBe(rate * seconds);
    expect(r.warnings).toEqual([]);
    expect(r.summary!.metrics.http_reqs!.values.count).toBe(rate * seconds);
    expect(r.engine.detail).toMatch(/2 runner processes: 1\/2 .*clock [+-]\d+ ms.*, 2\/2 /);
  });

  it('a runner killed mid-run is named, its missing arrivals are unaccounted for, and the result still comes', async () => {
    const e = new RemoteEngine({ runners: 2, registerTimeoutS: 60, silenceS: 2 });
    const started = e.start(plan(server.url, 100, 4));
    await new Promise((r) => setTimeout(r, 50));
    const [, victim] = [runner(e.harnessUrl(), '1/2'), runner(e.harnessUrl(), '2/2')];
    await started;
    setTimeout(() => victim!.child.kill('SIGKILL'), 1_500);
    const r = await e.result();
    expect(r.warnings).toEqual([expect.stringMatching(/^runner 2\/2 \(.+\) sent nothing for 2 s/)]);
    expect(r.exitCode).toBe(1);
    expect(r.scheduled - r.started! - r.dropped).toBeGreaterThan(50);
  });
});
