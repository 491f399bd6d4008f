// A closed-model load generator over the engine's HTTP client, for the benchmarks
// whose journeys chain requests (bench/checkout.ts: create an order, then pay it
// with the id the first answer gave): `node bin/run-ts.js bench/closed-loop.ts JSON`
// with a ClosedLoopInput. `loops` journeys run at once, each loop starting the next
// as soon as the last one ended; the warm-up's metrics go to one store and the
// measured window's to another. Its CPU is this whole process, read from
// /proc/self at the window's edges. Prints one JSON line, a ClosedLoopResult.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpClient } from '../harness/engine/http.ts';
import { MetricStore, summarize } from '../harness/engine/metrics.ts';
import type { Journey, JourneyAnswer, JourneyContext } from '../scenarios/lib/journey.ts';
import { journeyKind, type JourneySpec } from '../scenarios/lib/journeys.ts';

export interface ClosedLoopInput {
  journey: JourneySpec;
  loops: number;
  warmupS: number;
  durationS: number;
  /** The warm-up's journey, when it differs (a sell-out warms up on another SKU). */
  warmupJourney?: JourneySpec;
}

export interface ClosedLoopResult {
  /** Figures of the measured window, in k6's summary shape (`metrics[name].values`). */
  measured: Record<string, Record<string, number>>;
  /** The whole run, warm-up included. */
  all: Record<string, Record<string, number>>;
  /** The measured window: wall seconds and this process's CPU seconds. */
  wallS: number;
  cpuS: number;
  /** Date.now() at the window's start and end. */
  windowStartMs: number;
  windowEndMs: number;
  /** Journeys still running when the window ended (their requests count in the next store). */
  inFlightAtEnd: number;
}

function cpuSelf(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

type Values = Record<string, Record<string, number>>;

/** The counters (`count`) of two summaries added, per metric. */
function addCounts(a: Values, b: Values): Values {
  const out: Values = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k]?.count;
    const y = b[k]?.count;
    if (x !== undefined || y !== undefined) out[k] = { count: (x ?? 0) + (y ?? 0) };
  }
  return out;
}

async function main() {
  const input = JSON.parse(process.argv[2] ?? '{}') as ClosedLoopInput;
  const kind = journeyKind(input.journey);
  const warmKind = input.warmupJourney ? journeyKind(input.warmupJourney) : kind;
  const defs = [...kind.metrics, ...warmKind.metrics.filter((d) => !kind.metrics.includes(d))];
  const warm = new MetricStore(defs);
  const measure = new MetricStore(defs);
  let store = input.warmupS > 0 ? warm : measure;
  let phase: 'warmup' | 'measure' | 'done' = input.warmupS > 0 ? 'warmup' : 'measure';
  const http = new HttpClient();
  const t0 = performance.now();
  let index = 0;
  let active = 0;

  // A journey records into the store of the phase it started in (a warm-up order finishing
  // in the window counts in the warm-up), as k6's scenarios did.
  const send = async (
    r: Parameters<HttpClient['send']>[0],
    expected: readonly number[],
    st: MetricStore,
  ) => {
    const a = await http.send(r);
    st.answered(r, a, expected);
    return a;
  };

  async function drive(j: Journey, expected: readonly number[], st: MetricStore) {
    let answers: JourneyAnswer[] | undefined;
    for (;;) {
      const next = j.next(answers);
      if (next.done) break;
      const step = next.value;
      if (step.kind === 'sleep') {
        await sleep(step.seconds * 1000);
        answers = undefined;
      } else answers = await Promise.all(step.requests.map((r) => send(r, expected, st)));
    }
    st.add('iterations', 1, {});
  }

  async function loop() {
    while (phase !== 'done') {
      const spec = phase === 'warmup' && input.warmupJourney ? input.warmupJourney : input.journey;
      const k = spec === input.journey ? kind : warmKind;
      const st = store;
      const ctx: JourneyContext = {
        index: index++,
        elapsedS: () => (performance.now() - t0) / 1000,
        metrics: st,
      };
      active += 1;
      await drive(k.start(spec.config as never, ctx), k.expectedStatuses, st);
      active -= 1;
    }
  }

  const loops = Array.from({ length: input.loops }, loop);
  let cpu0 = cpuSelf();
  let w0 = performance.now();
  let windowStartMs = Date.now();
  if (input.warmupS > 0) {
    await sleep(input.warmupS * 1000);
    store = measure;
    phase = 'measure';
    cpu0 = cpuSelf();
    w0 = performance.now();
    windowStartMs = Date.now();
  }
  await sleep(input.durationS * 1000);
  const windowEndMs = Date.now();
  const cpuS = cpuSelf() - cpu0;
  const wallS = (performance.now() - w0) / 1000;
  const inFlightAtEnd = active;
  // Journeys still running finish into the window's store (as k6's graceful stop let them).
  phase = 'done';
  await Promise.race([Promise.all(loops), sleep(10_000)]);
  await http.close();
  const time = new Set(
    [...defs, { name: 'http_req_duration', time: true }, { name: 'iteration_duration', time: true }]
      .filter((d) => 'time' in d && d.time)
      .map((d) => d.name),
  );
  const values = (s: ReturnType<typeof summarize>) =>
    Object.fromEntries(Object.entries(s.metrics).map(([k, v]) => [k, v.values]));
  const ms = measure.snapshot();
  const out: ClosedLoopResult = {
    measured: values(summarize(ms, input.durationS, time)),
    // Counts only: merging the two stores' histograms (mergeSnapshots) throws when the second
    // holds values above the first one's range (reported to the engine's owner).
    all: addCounts(
      values(summarize(warm.snapshot(), input.warmupS, time)),
      values(summarize(ms, input.durationS, time)),
    ),
    wallS,
    cpuS,
    windowStartMs,
    windowEndMs,
    inFlightAtEnd,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(`[closed-loop] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
