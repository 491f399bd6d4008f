// The collector's view of several checkout instances (harness/collect.ts):
// each instance is scraped on its own, and each process it ran (a restart is a
// new process, told by flashcrowd_checkout_process_start_time_seconds) keeps
// its counters under keys of its own, so the collector's increases are per
// process: a restarted instance counts from 0 again without its new counts
// being taken for a reset of the old ones. The increases are then summed,
// histograms merged, gauges summed or max'ed (GAUGE_SUMMED). An instance whose
// scrape fails is a warning while another answers: its counts are carried
// from its last scrape (no increase for it meanwhile), and its gauges leave
// the sums. The last /metrics text of every process is kept for the final
// readings (harness/run/metrics.ts), so what a killed instance had counted by
// its last scrape is not lost.

/** One source's reading at one tick (cumulative counters, histograms, gauges). */
export interface Reading {
  counters: Map<string, number>;
  histograms: Map<string, { le: number; count: number }[]>;
  gauges: Map<string, number>;
}

export const emptyReading = (): Reading => ({
  counters: new Map(),
  histograms: new Map(),
  gauges: new Map(),
});

/** Separates an instance's process prefix from the key: `<index>\u0001<start time>\u0001<key>`. */
const PROC = '\u0001';

/** The key without its instance and process prefix. */
export const unprefixed = (key: string): string => key.slice(key.lastIndexOf(PROC) + 1);

/** Gauges summed over the instances (work waiting in each); every other gauge is the max. */
const GAUGE_SUMMED = [/^bulkhead_queued\b/];

/** The start time the checkout reports, as the id of its process ('' when it reports none). */
export const START_TIME_METRIC = 'flashcrowd_checkout_process_start_time_seconds';

export type Scrape = { ok: true; text: string } | { ok: false; error: unknown };

interface InstanceState {
  /** The process last scraped, and its reading (prefixed keys). */
  process?: string;
  reading?: Reading;
  /** The last text scraped of each process of this instance, by process id. */
  texts: Map<string, string>;
}

export class CheckoutInstances {
  private readonly state: InstanceState[];

  constructor(readonly urls: readonly string[]) {
    this.state = urls.map(() => ({ texts: new Map() }));
  }

  /**
   * One tick's reading of every instance, from their scrapes (in `urls`
   * order): counters and histograms under per-process keys (carried for an
   * instance that did not answer), gauges aggregated over those that did.
   * Throws the first error when none answered.
   */
  combine(
    scrapes: readonly Scrape[],
    parse: (text: string) => { reading: Reading; process: string },
    warn: (message: string) => void,
  ): Reading {
    if (scrapes.every((s) => !s.ok)) throw (scrapes[0] as { error: unknown }).error;
    const out = emptyReading();
    const gauges = new Map<string, number[]>();
    scrapes.forEach((s, i) => {
      const st = this.state[i]!;
      if (s.ok) {
        const { reading, process } = parse(s.text);
        st.process = process;
        st.texts.set(process, s.text);
        st.reading = reading;
        for (const [k, v] of reading.gauges) gauges.set(k, [...(gauges.get(k) ?? []), v]);
      } else
        warn(
          `instance ${i} (${this.urls[i]}) GET /metrics failed: ${describe(s.error)}; its counts carried from its last scrape`,
        );
      if (!st.reading) return;
      const prefix = `${i}${PROC}${st.process}${PROC}`;
      for (const [k, v] of st.reading.counters) out.counters.set(prefix + k, v);
      for (const [k, b] of st.reading.histograms) out.histograms.set(prefix + k, b);
    });
    for (const [k, vs] of gauges)
      out.gauges.set(
        k,
        GAUGE_SUMMED.some((re) => re.test(k)) ? vs.reduce((a, b) => a + b, 0) : Math.max(...vs),
      );
    return out;
  }

  /** The last text scraped of each process instance `i` ran, but process `except`. */
  lastTexts(i: number, except?: string): string[] {
    return [...(this.state[i]?.texts ?? new Map<string, string>())]
      .filter(([p]) => p !== except)
      .map(([, t]) => t);
  }
}

/** A checkout's process id from its /metrics text: its start time ('' when not reported). */
export function processOf(text: string): string {
  const m = new RegExp(`^${START_TIME_METRIC}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text);
  return m?.[1] ?? '';
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === 'TimeoutError') return 'timed out';
    const cause = (e as Error & { cause?: { code?: string } }).cause;
    return cause?.code ?? e.message;
  }
  return String(e);
}
