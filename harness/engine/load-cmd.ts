// `flashcrowd load --harness URL --segment k/N`: one runner process of a run
// spread over several (remote.ts is the harness's side). Registers its
// segment, waits for the shared start instant (taken onto its own clock with
// the skew it measured against the harness), runs its arrivals with
// flashcrowd's engine (--workers threads), and pushes its report every second
// and a final one. It gives up, exit 1, when the harness stops answering.
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../errors.ts';
import { EmbeddedEngine } from './embedded.ts';
import { parseSegment, type RunnerPlan } from './remote.ts';
import type { SegmentReport } from './runner.ts';
import type { Segment } from './schedule.ts';

export interface LoadCommandOptions {
  harness: string;
  segment: string;
  workers: number;
  name?: string;
  /** Longest wait for the harness to answer and the run to start (s). */
  waitS: number;
  allowRemoteTarget: boolean;
  /**
   * This runner's clock reads the machine's plus this (ms): a test plants the
   * skew of a host whose clock is off (default 0). The skew measured, and the
   * start instant taken onto this clock, follow it.
   */
  clockOffsetMs?: number;
}

/** The runner's clock (ms since the epoch). */
type Clock = () => number;

type Print = (line: string) => void;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
/** Pushes that may fail in a row before the runner gives the harness up (one a second). */
const LOST_AFTER = 10;

async function call<T>(url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
}

/** Register, retrying while the harness does not answer yet (it may start after its runners). */
async function register(o: LoadCommandOptions, name: string): Promise<RunnerPlan> {
  const until = Date.now() + o.waitS * 1000;
  for (;;) {
    try {
      const r = await call<RunnerPlan & { error?: string }>(`${o.harness}/v1/runners`, {
        segment: o.segment,
        name,
      });
      if (r.status !== 200)
        throw new UsageError(
          `the harness refused segment ${o.segment}: ${r.body.error ?? r.status}`,
        );
      return r.body;
    } catch (e) {
      if (e instanceof UsageError) throw e;
      if (Date.now() > until)
        throw new UsageError(
          `no harness answered at ${o.harness} within ${o.waitS} s (${(e as Error).message})`,
        );
      await sleep(250);
    }
  }
}

/** One clock reading of the harness: our clock minus its, and the round trip it took. */
interface ClockSample {
  skewMs: number;
  rttMs: number;
}

/** Wait for the start instant, reading the harness's clock on every poll (at least 5 polls). */
async function startInstant(
  o: LoadCommandOptions,
  seg: Segment,
  samples: ClockSample[],
  now: Clock,
): Promise<number> {
  const until = now() + o.waitS * 1000;
  for (;;) {
    const t0 = now();
    const r = await call<{ startAtMs: number | null; harnessNowMs: number }>(
      `${o.harness}/v1/runners/${seg.index + 1}/start`,
    );
    const t1 = now();
    samples.push({ skewMs: (t0 + t1) / 2 - r.body.harnessNowMs, rttMs: t1 - t0 });
    if (r.body.startAtMs !== null && samples.length >= 5) return r.body.startAtMs;
    if (now() > until)
      throw new UsageError(
        `the harness did not start the run within ${o.waitS} s (other runners missing?)`,
      );
    await sleep(r.body.startAtMs === null ? 100 : 20);
  }
}

/**
 * The reading of the quickest round trip (the least asymmetric one, as NTP
 * takes it): its skew is off by at most half its round trip.
 */
function bestSample(samples: readonly ClockSample[]): ClockSample {
  return samples.reduce((best, s) => (s.rttMs < best.rttMs ? s : best));
}

/** The harness's start instant on this runner's clock, and how far this clock is off the harness's. */
async function startOnThisClock(o: LoadCommandOptions, seg: Segment, now: Clock) {
  const samples: ClockSample[] = [];
  const harnessStartMs = await startInstant(o, seg, samples, now);
  const { skewMs, rttMs } = bestSample(samples);
  // A host whose clock is off starts with the others: the instant moved onto this clock.
  return { startAtMs: harnessStartMs + skewMs, skewMs, rttMs, samples: samples.length };
}

function checkTargets(p: RunnerPlan, allowRemote: boolean) {
  if (allowRemote) return;
  // A URL, or a list of them (the checkout's instances).
  const urls = Object.values(p.whole.journey.config)
    .flatMap((v) => (Array.isArray(v) ? (v as unknown[]) : [v]))
    .filter((v): v is string => typeof v === 'string' && /^https?:\/\//.test(v));
  for (const u of urls)
    if (!LOOPBACK.has(new URL(u).hostname))
      throw new UsageError(
        `the plan targets ${u}, not a loopback address: give --allow-remote-target if you mean it`,
      );
}

export async function loadCommand(
  o: LoadCommandOptions,
  print: Print = console.log,
): Promise<number> {
  const seg = parseSegment(o.segment);
  if (typeof seg === 'string') throw new UsageError(`--segment ${seg}`);
  const name = o.name ?? `${hostname()}:${process.pid}`;
  const reg = await register(o, name);
  checkTargets(reg, o.allowRemoteTarget);
  print(`runner ${o.segment} (${name}): registered at ${o.harness}; waiting for the start`);
  const offsetMs = o.clockOffsetMs ?? 0;
  const now: Clock = () => Date.now() + offsetMs;
  const { startAtMs, skewMs: clockSkewMs, rttMs, samples } = await startOnThisClock(o, seg, now);
  const engine = new EmbeddedEngine({
    workers: o.workers,
    segment: seg,
    startAtMs: startAtMs - offsetMs,
  });
  await engine.start(reg.whole);
  print(
    `runner ${o.segment}: traffic starts in ${Math.max(0, Math.round(startAtMs - now()))} ms (this clock is ${clockSkewMs.toFixed(1)} ms off the harness's, ` +
      `within ${(rttMs / 2).toFixed(1)} ms: half the quickest round trip of ${samples})`,
  );
  let failedInRow = 0;
  let lost = false;
  const push = async (report: SegmentReport | undefined, final: boolean) => {
    if (!report) return;
    try {
      const r = await call(`${o.harness}/v1/runners/${seg.index + 1}/reports`, {
        report,
        final,
        clockSkewMs,
      });
      failedInRow = r.status === 204 ? 0 : failedInRow + 1;
    } catch {
      failedInRow += 1;
    }
    if (failedInRow >= LOST_AFTER && !lost) {
      lost = true;
      print(`runner ${o.segment}: the harness stopped answering; stopping`);
      void engine.stop();
    }
  };
  const ticker = setInterval(() => void push(engine.report(false), false), 1_000);
  const result = await engine.result();
  clearInterval(ticker);
  if (lost) return 1;
  for (let i = 0; i < 3 && (i === 0 || failedInRow > 0); i += 1)
    await push(engine.report(true), true);
  print(
    `runner ${o.segment}: done, ${result.started} started, ${result.dropped} dropped of ${result.scheduled} in the whole schedule`,
  );
  return failedInRow === 0 && result.exitCode === 0 ? 0 : 1;
}
