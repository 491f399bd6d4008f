// A runner's clock against the harness's, with a skew planted: runners on one
// machine share its clock, so the skew a real run measures is about 0 and
// proves nothing. Here the runner (`flashcrowd load`, in this process) reads
// its clock 500 ms ahead, as a host whose clock is off does: the harness must
// report about +500 ms (within half the quickest round trip the runner timed),
// and the runner must start its traffic at the harness's start instant taken
// onto its own clock, not 500 ms early. Real HTTP on loopback, a bare target.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCommand } from '../harness/engine/load-cmd.ts';
import { RemoteEngine } from '../harness/engine/remote.ts';
import type { LoadPlan } from '../harness/engine/types.ts';

/** When each request came, on this machine's clock. */
const seenAtMs: number[] = [];
let server: http.Server;
let target = '';

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    seenAtMs.push(Date.now());
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  target = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hit`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function plan(url: string): LoadPlan {
  return {
    journey: { name: 'get', config: { url, withIndex: true } },
    shape: { startRate: 20, stages: [{ durationS: 1, target: 20 }] },
    preAllocatedVUs: 5,
    maxVUs: 20,
    gracefulStopS: 5,
  };
}

async function harnessUrl(e: RemoteEngine): Promise<string> {
  while (!e.harnessUrl()) await sleep(10);
  return e.harnessUrl();
}

describe("a runner's clock against the harness's", () => {
  it('a runner whose clock reads +500 ms is reported about +500 ms off, and starts at the shared instant all the same', async () => {
    const offsetMs = 500;
    seenAtMs.length = 0;
    // A lead long enough for the runner's worker to boot before the instant (else it catches up late either way).
    const e = new RemoteEngine({ runners: 1, registerTimeoutS: 30, leadMs: 3_000 });
    const started = e.start(plan(target));
    const url = await harnessUrl(e);
    const lines: string[] = [];
    const runner = loadCommand(
      {
        harness: url,
        segment: '1/1',
        workers: 1,
        name: 'skewed',
        waitS: 30,
        allowRemoteTarget: false,
        clockOffsetMs: offsetMs,
      },
      (l) => lines.push(l),
    );
    await started;
    // The start instant, on the harness's clock (this machine's).
    const { startAtMs } = (await (await fetch(`${url}/v1/runners/1/start`)).json()) as {
      startAtMs: number;
    };
    const r = await e.result();
    expect(await runner, lines.join('\n')).toBe(0);
    expect(r.warnings).toEqual([]);
    const reported = /1\/1 skewed \(clock ([+-]\d+) ms\)/.exec(r.engine.detail);
    expect(reported, r.engine.detail).not.toBeNull();
    // The estimate is off by at most half the quickest round trip, plus the
    // millisecond clock's reading on each side and the harness's rounding.
    const m = /within ([\d.]+) ms: half the quickest round trip/.exec(lines.join('\n'));
    expect(m, lines.join('\n')).not.toBeNull();
    const tolerance = Number(m![1]) + 2;
    expect(Math.abs(Number(reported![1]) - offsetMs)).toBeLessThanOrEqual(tolerance);
    // Its first request came at the shared instant or after, never 500 ms before it.
    expect(seenAtMs.length).toBe(20);
    expect(Math.min(...seenAtMs)).toBeGreaterThanOrEqual(startAtMs - 5);
    console.log(
      `planted +${offsetMs} ms: reported ${reported![1]} ms (tolerance ${tolerance.toFixed(1)} ms); ` +
        `first request ${Math.min(...seenAtMs) - startAtMs} ms after the start instant`,
    );
  });
});
