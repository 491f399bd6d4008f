// The live progress of `flashcrowd run` while the traffic runs: a line a
// second rewritten in place on a terminal, a line every 5 seconds in plain
// output (CI logs), nothing with --progress none.
import type { Collector } from '../collect.ts';
import type { ResolvedPreset } from '../preset.ts';
import type { FaultBand } from '../summary.ts';
import type { OneRun } from './preset.ts';
import type { Print, RunOptions } from './options.ts';

export function fmt(n: number | null | undefined, digits = 0): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

/** The line printed as the traffic starts: its length, stages, peak and scales. */
export function trafficLine(resolved: ResolvedPreset, r: OneRun): string {
  const { traffic } = resolved;
  const peak = Math.max(traffic.startRate, ...traffic.stages.map((s) => s.target));
  return `traffic: ${resolved.durationS} s, ${traffic.stages.length} stages, peak ${fmt(peak)} arrivals/s (seed ${r.seed}, time-scale ${r.timeScale}, load-scale ${r.loadScale})`;
}

/** Print the collector's latest second every second until the returned stop() is called. */
export function showProgress(
  o: RunOptions,
  print: Print,
  a: { collector: Collector; bands: FaultBand[]; durationS: number; startMs: number },
): () => void {
  const progress = progressPrinter(o.progress, print);
  const ticker = setInterval(() => {
    const el = (Date.now() - a.startMs) / 1000;
    progress.line(progressLine(a.collector, a.bands, el, a.durationS), el);
  }, 1_000);
  return () => {
    clearInterval(ticker);
    progress.done();
  };
}

function progressLine(collector: Collector, bands: FaultBand[], el: number, durationS: number) {
  const s = collector.snapshot();
  const active = bands.filter((b) => b.fromS <= el && (b.toS === null || el < b.toS));
  return (
    `[${fmt(el)}/${durationS}s] ${fmt(s.arrivalsPerS)} arrivals/s, ${fmt(s.paidPerS)} paid/s, ` +
    `failing ${s.failureShare === null ? '-' : fmt(s.failureShare * 100, 1)}%, p99 ${fmt(s.p99Ms)} ms, ` +
    `stock ${fmt(s.stock?.available)} left / ${fmt(s.stock?.reserved)} held / ${fmt(s.stock?.sold)} sold` +
    (active.length ? `; faults: ${active.map((b) => `${b.service} ${b.label}`).join('; ')}` : '')
  );
}

function progressPrinter(mode: RunOptions['progress'], print: Print) {
  const tty = mode === 'tty' || (mode === 'auto' && process.stdout.isTTY === true);
  if (mode === 'none') return { line: () => undefined, done: () => undefined, tty: false };
  let last = 0;
  return {
    tty,
    line(text: string, elapsedS: number) {
      if (tty) {
        process.stdout.write(`\r\x1b[2K${text}`);
        return;
      }
      // Plain output (CI logs): a line every 5 seconds.
      if (elapsedS - last >= 5 || last === 0) {
        last = elapsedS || 0.001;
        print(text);
      }
    },
    done() {
      if (tty) process.stdout.write('\n');
    },
  };
}
