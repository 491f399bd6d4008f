// Live collection during a run: every tick (default 1 s) scrape the
// checkout's and the mocks' /metrics, the checkout's stock (GET /admin/stock)
// and the load engine's snapshot, and turn the counters into per-second rates, the
// histograms into latency quantiles, the gauges into levels. The result is a
// `TimeSeries` (harness/summary.ts); `snapshot()` feeds the progress line.
//
// Ticks never overlap: a tick still running when the next one is due makes
// that one skipped (counted in a warning), and the next rate covers the longer
// interval. A failed scrape gives null for that source's series at that tick
// and a warning (deduplicated, counted); it never stops the loop. docs/BUDGETS.md
// ("Live collection") documents every series.
import { Agent, request } from 'undici';
import { z } from 'zod';
import {
  CheckoutInstances,
  emptyReading as empty,
  processOf,
  unprefixed,
  type Reading,
  type Scrape,
} from './collect-instances.ts';
import { readMetrics, type HistogramRow } from './prom.ts';
import { TickWatch } from './audit/ticks.ts';
import {
  bucketIncrease,
  bucketTotal,
  histogramQuantile,
  mergeBuckets,
  type Bucket,
} from './quantile.ts';
import { SUMMARY_SCHEMA_VERSION, seriesKey, type TimeSeries } from './summary.ts';

export type MockName = 'bank' | 'wallet' | 'coupon';

export interface CollectorOptions {
  /** Time between ticks (default 1000 ms). */
  intervalMs?: number;
  checkoutUrl: string;
  /**
   * Every checkout instance (default [checkoutUrl]): each is scraped, their
   * counts summed (harness/collect-instances.ts); the stock is read from the
   * first that answers.
   */
  checkoutUrls?: readonly string[];
  /** Base URLs of the mocks to scrape (a missing one is not scraped). */
  mocks?: Partial<Record<MockName, string>>;
  /** The load engine's latest snapshot (arrivals started and dropped so far, VUs busy now). */
  load?: () => { started: number; dropped: number; vus: number } | undefined;
  /** Bearer token for the checkout's admin routes (FLASHCROWD_ADMIN_TOKEN). */
  adminToken?: string;
  /** Epoch ms of t = 0 (the start of traffic). */
  startedAtMs: number;
  /** Timeout of one scrape (default max(2000, 2 x intervalMs) ms). */
  scrapeTimeoutMs?: number;
  /** Window of the failure share in `snapshot()` (default 5 s). */
  snapshotWindowS?: number;
}

/** The latest values, for a live progress line. null: not known (yet). */
export type CollectorSnapshot = {
  elapsedS: number;
  arrivalsPerS: number | null;
  paidPerS: number | null;
  /** Shopper-visible failures / shopper answers over the last `snapshotWindowS`. */
  failureShare: number | null;
  p99Ms: number | null;
  stock: { available: number; reserved: number; sold: number } | null;
  vus: number | null;
  /** Ticks taken so far. */
  ticks: number;
  /** Warnings so far (every occurrence counted). */
  warnings: number;
};

/** Routes that are not shopper traffic (wallet callbacks come from the gateways). */
export const NON_SHOPPER_ROUTES: ReadonlySet<string> = new Set(['notify']);

/**
 * Refusals that are the checkout working as designed, not failures: the SKU
 * is sold out, the shopper already holds their limit, the same idempotency
 * key is still being served (a re-click). Counted in refused_per_s{reason}.
 */
export const EXPECTED_REFUSALS: ReadonlySet<string> = new Set([
  'sold_out',
  'purchase_limit_exceeded',
  'idempotency_key_in_use',
]);

export type AnswerClass = 'ok' | 'failure' | 'refused';

/**
 * How a shopper sees one checkout answer: a failure is any status >= 400
 * (4xx refusals and rejections, 429, 5xx) unless its reason is an expected
 * refusal; 1xx-3xx (202 `paying` included) are not failures.
 */
export function classifyAnswer(status: number, reason: string): AnswerClass {
  if (status < 400) return 'ok';
  return EXPECTED_REFUSALS.has(reason) ? 'refused' : 'failure';
}

/** The reason label of a failure: the checkout's reason code, else `http_<status>`. */
export function failureReason(status: number, reason: string): string {
  return reason && reason !== 'none' ? reason : `http_${status}`;
}

/** Order events that mean "paid": `paid` (the pay answer) and `paid_by_<source>`. */
export const isPaidEvent = (event: string) => event === 'paid' || event.startsWith('paid_by_');

const QUANTILES = [0.5, 0.99] as const;

/** What the collector reads: the checkout's /metrics, its /admin/stock, each mock's /metrics, the load engine. */
export type SourceName = 'checkout' | 'stock' | MockName | 'load';
type Kind = 'rate' | 'quantile' | 'gauge';

/**
 * What a series holds, from its name: `*_per_s` rates (0 when nothing
 * happened), `*latency_ms` quantiles (null when nothing was observed), levels.
 */
function kindOf(key: string): Kind {
  const name = key.replace(/\{.*$/, '');
  if (name.endsWith('_per_s')) return 'rate';
  if (name.endsWith('latency_ms')) return 'quantile';
  return 'gauge';
}

interface SourceState {
  name: SourceName;
  read(signal: AbortSignal): Promise<Reading>;
  /** Output series from one interval's increases (counters and histograms) over `dt` seconds. */
  derive(inc: Reading, dt: number): Map<string, number | null>;
  /** Series this source always has (so a series exists even before its first non-zero). */
  fixed: string[];
  prev?: { t: number; reading: Reading };
}

interface Tick {
  t: number;
  /** Output values of this tick by series key (absent: the default for the series' kind). */
  values: Map<string, number | null>;
  /** Per source: 'ok' (rates known), 'baseline' (first reading: levels only), 'failed'. */
  status: Map<SourceName, 'ok' | 'baseline' | 'failed'>;
  /** Shopper answers and failures in the interval ending at this tick (checkout ok only). */
  answers?: { total: number; failures: number };
}

const stockSchema = z.object({
  data: z.array(
    z
      .object({
        sku: z.string(),
        initial: z.number().optional(),
        available: z.number(),
        reserved: z.number(),
        sold: z.number(),
      })
      .passthrough(),
  ),
});

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
const SEP = '\u0000';

/** Increase of a cumulative counter; a counter that went down restarted from 0 (Prometheus' rule). */
export function counterIncrease(cur: number, prev: number | undefined): number {
  if (prev === undefined) return cur;
  return cur >= prev ? cur - prev : cur;
}

function increase(cur: Reading, prev: Reading): Reading {
  const out = empty();
  for (const [k, v] of cur.counters) out.counters.set(k, counterIncrease(v, prev.counters.get(k)));
  for (const [k, b] of cur.histograms)
    out.histograms.set(k, bucketIncrease(b, prev.histograms.get(k)));
  return out;
}

const quantileMs = (q: number, b: Bucket[] | undefined): number | null => {
  if (!b || bucketTotal(b) === 0) return null;
  const v = histogramQuantile(q, b);
  return v === null ? null : v * 1000;
};

function describeError(e: unknown): string {
  if (e instanceof Error) {
    if (e.name === 'TimeoutError') return 'timed out';
    const cause = (e as Error & { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code) return cause.code;
    if (cause?.message) return cause.message;
    return e.message;
  }
  return String(e);
}

export class Collector {
  readonly intervalMs: number;
  /** I1 and I2 at every tick's stock reading (harness/audit/ticks.ts). */
  readonly stockWatch = new TickWatch();
  private lastStockRows: z.infer<typeof stockSchema>['data'] = [];
  private readonly opts: CollectorOptions;
  private readonly sources: SourceState[] = [];
  private readonly ticks: Tick[] = [];
  /** Kept-alive connections to the scraped services (closed by stop()). */
  private readonly agent = new Agent({ keepAliveTimeout: 10_000 });
  private readonly kinds = new Map<string, { source: SourceName; kind: Kind }>();
  private readonly warningCounts = new Map<string, number>();
  private readonly totalsMap = new Map<string, number>();
  private readonly stockLevels = new Map<
    string,
    { available: number; reserved: number; sold: number }
  >();
  private lastVus: number | null = null;
  private readonly instances: CheckoutInstances;
  private readonly retired = new Set<SourceName>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private started = false;
  private stopped = false;
  private nextSlot = 0;

  constructor(opts: CollectorOptions) {
    const intervalMs = opts.intervalMs ?? 1000;
    if (!Number.isFinite(intervalMs) || intervalMs < 10)
      throw new RangeError(`intervalMs must be a number of milliseconds >= 10, got ${intervalMs}`);
    this.intervalMs = intervalMs;
    this.opts = opts;
    this.instances = new CheckoutInstances(
      opts.checkoutUrls?.length ? opts.checkoutUrls : [opts.checkoutUrl],
    );
    this.sources.push(this.checkoutSource(), this.stockSource());
    for (const name of ['bank', 'wallet', 'coupon'] as const) {
      const url = opts.mocks?.[name];
      if (url) this.sources.push(this.mockSource(name, url));
    }
    if (opts.load) this.sources.push(this.loadSource(opts.load));
    for (const s of this.sources)
      for (const k of s.fixed) this.kinds.set(k, { source: s.name, kind: kindOf(k) });
  }

  private get scrapeTimeoutMs() {
    return this.opts.scrapeTimeoutMs ?? Math.max(2_000, 2 * this.intervalMs);
  }

  /** Take the first reading now (the baseline, t of this moment), then one every interval. */
  async start(): Promise<void> {
    if (this.started) throw new Error('the collector was already started');
    this.started = true;
    this.running = this.tick().catch((e: unknown) =>
      this.warn('collector', `a tick failed: ${describeError(e)}`),
    );
    await this.running;
    this.running = undefined;
    this.schedule();
  }

  private schedule() {
    if (this.stopped) return;
    const now = Date.now();
    const { startedAtMs } = this.opts;
    // The next slot on the grid startedAtMs + k x interval; slots a slow tick overran are skipped.
    // The first tick may come just before startedAtMs (the engine's start instant): the next is slot 1.
    const due = Math.max(this.nextSlot, 1, Math.floor((now - startedAtMs) / this.intervalMs) + 1);
    const skipped = this.nextSlot > 0 ? due - this.nextSlot : 0;
    if (skipped > 0)
      this.warn(
        'collector',
        `a tick took longer than the ${this.intervalMs} ms interval; the next one was skipped`,
        skipped,
      );
    this.nextSlot = due + 1;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.running = this.tick()
          .catch((e: unknown) => this.warn('collector', `a tick failed: ${describeError(e)}`))
          .finally(() => {
            this.running = undefined;
            this.schedule();
          });
      },
      Math.max(0, startedAtMs + due * this.intervalMs - now),
    );
    this.timer.unref();
  }

  /**
   * Stop ticking, take a last reading (the last partial interval, at least
   * half an interval after the previous tick, so its rates are not made of a
   * few milliseconds), and return the series.
   */
  async stop(): Promise<TimeSeries> {
    if (!this.stopped) {
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      while (this.running) await this.running;
      if (this.started) {
        const lastT = this.ticks.at(-1)?.t;
        if (lastT !== undefined) {
          const wait = this.opts.startedAtMs + lastT * 1000 + this.intervalMs / 2 - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        await this.tick().catch((e: unknown) =>
          this.warn('collector', `a tick failed: ${describeError(e)}`),
        );
      }
      await this.agent.close().catch(() => undefined);
    }
    return this.timeSeries();
  }

  private warn(source: string, message: string, n = 1) {
    const key = `${source}: ${message}`;
    this.warningCounts.set(key, (this.warningCounts.get(key) ?? 0) + n);
  }

  /** Problems met so far, one line per distinct problem, with how often it happened. */
  warnings(): string[] {
    return [...this.warningCounts].map(([w, n]) => (n > 1 ? `${w} (${n} times)` : w));
  }

  /**
   * Take no more readings of one source from now on (its later entries are
   * null, without warnings): e.g. `load` once the traffic is over. Its last
   * counts are those of the last tick before.
   */
  stopScraping(source: SourceName): void {
    this.retired.add(source);
    if (source === 'load') this.lastVus = null;
  }

  private async tick(): Promise<void> {
    const at = Date.now();
    const t = Math.max(0, Math.round(at - this.opts.startedAtMs)) / 1000;
    const tick: Tick = { t, values: new Map(), status: new Map() };
    const sources = this.sources.filter((s) => !this.retired.has(s.name));
    const readings = await Promise.all(
      sources.map((s) =>
        s.read(AbortSignal.timeout(this.scrapeTimeoutMs)).then(
          (r) => ({ ok: true as const, r }),
          (e: unknown) => ({ ok: false as const, e }),
        ),
      ),
    );
    for (const [i, s] of sources.entries()) {
      const res = readings[i]!;
      if (!res.ok) {
        tick.status.set(s.name, 'failed');
        this.warn(s.name, `${this.what(s.name)} failed: ${describeError(res.e)}; recorded as null`);
        continue;
      }
      const reading = res.r;
      for (const [k, v] of reading.gauges) this.put(tick, s.name, k, v);
      if (s.prev) {
        const dt = t - s.prev.t;
        const inc = increase(reading, s.prev.reading);
        for (const [k, v] of inc.counters) add(this.totalsMap, `${s.name}${SEP}${k}`, v);
        for (const [k, v] of s.derive(inc, dt > 0 ? dt : Number.NaN)) this.put(tick, s.name, k, v);
        if (s.name === 'checkout') tick.answers = this.answers(inc);
        tick.status.set(s.name, 'ok');
      } else tick.status.set(s.name, 'baseline');
      s.prev = { t, reading };
      if (s.name === 'stock') {
        this.rememberStock(reading);
        this.stockWatch.observe(t, this.lastStockRows);
      }
      if (s.name === 'load') this.lastVus = reading.gauges.get('vus') ?? null;
    }
    this.ticks.push(tick);
  }

  private what(s: SourceName): string {
    if (s === 'stock') return 'GET /admin/stock';
    if (s === 'load') return "the load engine's snapshot";
    return 'GET /metrics';
  }

  private put(tick: Tick, source: SourceName, key: string, v: number | null) {
    if (!this.kinds.has(key)) this.kinds.set(key, { source, kind: kindOf(key) });
    tick.values.set(key, v === null || Number.isFinite(v) ? v : null);
  }

  private rememberStock(r: Reading) {
    this.stockLevels.clear();
    for (const [k, v] of r.gauges) {
      const m = /^stock_(available|reserved|sold)\{sku=(.*)\}$/.exec(k);
      if (!m) continue;
      const row = this.stockLevels.get(m[2]!) ?? { available: 0, reserved: 0, sold: 0 };
      row[m[1] as 'available'] = v;
      this.stockLevels.set(m[2]!, row);
    }
  }

  private answers(inc: Reading) {
    let total = 0;
    let failures = 0;
    for (const [k, v] of inc.counters) {
      const key = unprefixed(k);
      if (!key.startsWith(`req${SEP}`)) continue;
      const [, route, status, reason] = key.split(SEP) as [string, string, string, string];
      if (NON_SHOPPER_ROUTES.has(route)) continue;
      total += v;
      if (classifyAnswer(Number(status), reason) === 'failure') failures += v;
    }
    return { total, failures };
  }

  /** The latest values, for a live progress line. */
  snapshot(): CollectorSnapshot {
    const last = (key: string): number | null => {
      for (let i = this.ticks.length - 1; i >= 0; i--) {
        const tk = this.ticks[i]!;
        const src = this.kinds.get(key)?.source;
        if (!src || tk.status.get(src) !== 'ok') continue;
        const v = tk.values.get(key);
        return v === undefined ? (this.kinds.get(key)?.kind === 'rate' ? 0 : null) : v;
      }
      return null;
    };
    const windowS = this.opts.snapshotWindowS ?? 5;
    const lastT = this.ticks.at(-1)?.t ?? 0;
    let total = 0;
    let failures = 0;
    let p99: number | null = null;
    for (let i = this.ticks.length - 1; i >= 0 && this.ticks[i]!.t > lastT - windowS; i--) {
      const tk = this.ticks[i]!;
      if (tk.answers) {
        total += tk.answers.total;
        failures += tk.answers.failures;
      }
      const q = tk.values.get(seriesKey('latency_ms', { q: 0.99 }));
      if (p99 === null && q !== undefined && q !== null) p99 = q;
    }
    let stock: CollectorSnapshot['stock'] = null;
    if (this.stockLevels.size) {
      stock = { available: 0, reserved: 0, sold: 0 };
      for (const r of this.stockLevels.values()) {
        stock.available += r.available;
        stock.reserved += r.reserved;
        stock.sold += r.sold;
      }
    }
    return {
      elapsedS: (Date.now() - this.opts.startedAtMs) / 1000,
      arrivalsPerS: this.opts.load ? last('arrivals_per_s') : null,
      paidPerS: last('paid_per_s'),
      failureShare: total > 0 ? failures / total : null,
      p99Ms: p99,
      stock,
      vus: this.lastVus,
      ticks: this.ticks.length,
      warnings: [...this.warningCounts.values()].reduce((a, b) => a + b, 0),
    };
  }

  /**
   * Exact counts over the collection (first to last successful reading of
   * each source, restarts handled), by series key of the rate series with
   * `_per_s` dropped: `requests{route=skus}`, `paid`, `failures{reason=...}`,
   * `dep_calls{dependency=bank,outcome=ok}`, `arrivals`... Unlike integrating
   * the rates over `t`, these stay exact across failed scrapes.
   */
  totals(): Record<string, number> {
    const out: Record<string, number> = {};
    const byKey = new Map<SourceName, Reading>();
    for (const [k, v] of this.totalsMap) {
      const [source, ...rest] = k.split(SEP);
      const r = byKey.get(source as SourceName) ?? empty();
      r.counters.set(rest.join(SEP), v);
      byKey.set(source as SourceName, r);
    }
    for (const s of this.sources) {
      const inc = byKey.get(s.name);
      if (!inc) continue;
      for (const [key, v] of s.derive(inc, 1)) {
        if (v === null || this.kinds.get(key)?.kind !== 'rate') continue;
        out[key.replace(/_per_s(?=\{|$)/, '')] = v;
      }
    }
    return out;
  }

  /** The series so far (stop() returns the same after its last reading). */
  timeSeries(): TimeSeries {
    const keys = [...this.kinds.keys()].sort();
    const series: Record<string, (number | null)[]> = {};
    for (const key of keys) {
      const { source, kind } = this.kinds.get(key)!;
      series[key] = this.ticks.map((tk) => {
        const st = tk.status.get(source);
        if (st === 'failed' || st === undefined) return null;
        if (st === 'baseline' && kind !== 'gauge') return null;
        const v = tk.values.get(key);
        if (v !== undefined) return v;
        return kind === 'rate' ? 0 : null;
      });
    }
    return {
      schemaVersion: SUMMARY_SCHEMA_VERSION,
      startedAtMs: this.opts.startedAtMs,
      intervalS: this.intervalMs / 1000,
      t: this.ticks.map((tk) => tk.t),
      series,
      bands: [],
      stages: [],
    };
  }

  // ------------------------------------------------------------------ sources

  private async fetchText(url: string, signal: AbortSignal, headers: Record<string, string> = {}) {
    // undici's request: a scrape a second per service for a whole run, without fetch's streams.
    const res = await request(url, { signal, headers, dispatcher: this.agent });
    const body = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`HTTP ${res.statusCode}`);
    return body;
  }

  /** The checkout instances scraped (their processes' last texts feed the final readings). */
  get checkoutInstances(): CheckoutInstances {
    return this.instances;
  }

  private checkoutSource(): SourceState {
    const fixed = [
      'paid_per_s',
      'shed_per_s',
      ...QUANTILES.map((q) => seriesKey('latency_ms', { q })),
      ...QUANTILES.map((q) => seriesKey('queue_latency_ms', { q })),
      ...QUANTILES.map((q) => seriesKey('redis_latency_ms', { q })),
    ];
    return {
      name: 'checkout',
      fixed,
      read: async (signal) => {
        const scrapes = await Promise.all(
          this.instances.urls.map((url) =>
            this.fetchText(`${url}/metrics`, signal).then(
              (text): Scrape => ({ ok: true, text }),
              (error: unknown): Scrape => ({ ok: false, error }),
            ),
          ),
        );
        return this.instances.combine(
          scrapes,
          (text) => ({ reading: checkoutReading(text), process: processOf(text) }),
          (m) => this.warn('checkout', m),
        );
      },
      derive: (inc, dt) => {
        const out = new Map<string, number | null>();
        const rate = (k: string, v: number) => out.set(k, ((out.get(k) ?? 0) as number) + v / dt);
        out.set('paid_per_s', 0);
        out.set('shed_per_s', 0);
        for (const [k, v] of inc.counters) {
          const [kind, a = '', b = '', c = ''] = unprefixed(k).split(SEP);
          if (kind === 'req') {
            rate(seriesKey('requests_per_s', { route: a }), v);
            if (NON_SHOPPER_ROUTES.has(a)) continue;
            const cls = classifyAnswer(Number(b), c);
            if (cls === 'failure')
              rate(seriesKey('failures_per_s', { reason: failureReason(Number(b), c) }), v);
            else if (cls === 'refused') rate(seriesKey('refused_per_s', { reason: c }), v);
          } else if (kind === 'event' && isPaidEvent(a)) rate('paid_per_s', v);
          else if (kind === 'shed') rate('shed_per_s', v);
          else if (kind === 'call')
            rate(seriesKey('dep_calls_per_s', { dependency: a, outcome: b }), v);
          else if (kind === 'retry') rate(seriesKey('retries_per_s', { dependency: a }), v);
        }
        // Each instance's histograms, merged.
        const merged = (name: string) =>
          mergeBuckets(
            [...inc.histograms].filter(([k]) => unprefixed(k) === name).map(([, b]) => b),
          );
        const lat = merged('latency');
        const queue = merged('queue');
        const redis = merged('redis');
        for (const q of QUANTILES) {
          out.set(seriesKey('latency_ms', { q }), quantileMs(q, lat));
          out.set(seriesKey('queue_latency_ms', { q }), quantileMs(q, queue));
          out.set(seriesKey('redis_latency_ms', { q }), quantileMs(q, redis));
        }
        return out;
      },
    };
  }

  private stockSource(): SourceState {
    const headers: Record<string, string> = this.opts.adminToken
      ? { authorization: `Bearer ${this.opts.adminToken}` }
      : {};
    // Stock is in Redis: any instance answers for all. The last one that did is asked first.
    let first = 0;
    const fetchStock = async (signal: AbortSignal) => {
      const urls = this.instances.urls;
      let error: unknown;
      for (let k = 0; k < urls.length; k++) {
        const i = (first + k) % urls.length;
        try {
          const text = await this.fetchText(`${urls[i]}/admin/stock`, signal, headers);
          first = i;
          return text;
        } catch (e) {
          error = e;
          if (signal.aborted) break;
        }
      }
      throw error;
    };
    const readStock = async (signal: AbortSignal) => {
      const body = stockSchema.parse(JSON.parse(await fetchStock(signal)));
      const r = empty();
      for (const s of body.data) {
        r.gauges.set(seriesKey('stock_available', { sku: s.sku }), s.available);
        r.gauges.set(seriesKey('stock_reserved', { sku: s.sku }), s.reserved);
        r.gauges.set(seriesKey('stock_sold', { sku: s.sku }), s.sold);
      }
      return { rows: body.data, reading: r };
    };
    // The stock is read from Redis: when Redis is slow (a fault on it), a read
    // can outlast the interval. A tick waits for it at most 80% of the
    // interval (at least 800 ms), so the other sources keep their one-second ticks; a read still
    // running then goes on (up to the scrape timeout) and its answer is the
    // next tick's stock.
    let running: Promise<Awaited<ReturnType<typeof readStock>>> | undefined;
    let late: Awaited<ReturnType<typeof readStock>> | undefined;
    const waitMs = Math.max(800, Math.round(this.intervalMs * 0.8));
    return {
      name: 'stock',
      fixed: [],
      read: async () => {
        let got = late;
        late = undefined;
        if (!got) {
          const p = (running ??= readStock(AbortSignal.timeout(this.scrapeTimeoutMs)).finally(
            () => (running = undefined),
          ));
          let timer: ReturnType<typeof setTimeout> | undefined;
          got = await Promise.race([
            p,
            new Promise<undefined>((r) => {
              timer = setTimeout(() => r(undefined), waitMs);
            }),
          ]).finally(() => clearTimeout(timer));
          if (!got) {
            p.then(
              (x) => (late = x),
              () => undefined,
            );
            throw new Error(`no answer within ${waitMs} ms; a late answer is the next tick's`);
          }
        }
        this.lastStockRows = got.rows;
        return got.reading;
      },
      derive: () => new Map(),
    };
  }

  private mockSource(name: MockName, url: string): SourceState {
    const keys = QUANTILES.map((q) => seriesKey('dep_latency_ms', { dependency: name, q }));
    return {
      name,
      fixed: keys,
      read: async (signal) => {
        const { rows, histograms } = readMetrics(
          await this.fetchText(`${url}/metrics`, signal),
          'flashcrowd_mock_',
        );
        const r = empty();
        const latency = histograms.filter(
          (h) => h.name === 'flashcrowd_mock_request_duration_seconds',
        );
        r.histograms.set('latency', mergeBuckets(latency.map((h) => h.buckets)));
        // The domain's levels: the wallet's notify_backlog, the coupon service's coupons_locked.
        for (const row of rows)
          if (row.name === 'flashcrowd_mock_level' && row.labels.level)
            r.gauges.set(row.labels.level, row.value);
        return r;
      },
      derive: (inc) =>
        new Map(QUANTILES.map((q, i) => [keys[i]!, quantileMs(q, inc.histograms.get('latency'))])),
    };
  }

  private loadSource(snapshot: NonNullable<CollectorOptions['load']>): SourceState {
    return {
      name: 'load',
      fixed: ['arrivals_per_s', 'dropped_per_s', 'vus'],
      read: async () => {
        const snap = snapshot();
        const r = empty();
        // Before the engine's first snapshot: nothing started yet.
        r.counters.set('arrivals', snap?.started ?? 0);
        r.counters.set('dropped', snap?.dropped ?? 0);
        if (snap) r.gauges.set('vus', snap.vus);
        return r;
      },
      derive: (inc, dt) =>
        new Map([
          ['arrivals_per_s', (inc.counters.get('arrivals') ?? 0) / dt],
          ['dropped_per_s', (inc.counters.get('dropped') ?? 0) / dt],
        ]),
    };
  }
}

/**
 * The count behind a rate series: the sum of rate x (t[i] - t[i-1]) over the
 * entries whose rate is known. Exact when no scrape of the series' source
 * failed (a rate after a gap covers the gap: use Collector.totals() then).
 */
export function integrate(ts: TimeSeries, key: string): number | null {
  const s = ts.series[key];
  if (!s) return null;
  let sum = 0;
  let any = false;
  for (let i = 1; i < ts.t.length; i++) {
    const v = s[i];
    if (v === null || v === undefined) continue;
    sum += v * (ts.t[i]! - ts.t[i - 1]!);
    any = true;
  }
  return any ? sum : null;
}

/** One checkout process's /metrics as the collector keeps it (counters, histograms, gauges). */
function checkoutReading(text: string): Reading {
  const { rows, histograms } = readMetrics(text, 'flashcrowd_checkout_');
  const r = empty();
  for (const row of rows) {
    const l = row.labels;
    switch (row.name) {
      case 'flashcrowd_checkout_requests_total':
        add(r.counters, ['req', l.route, l.status, l.reason ?? 'none'].join(SEP), row.value);
        break;
      case 'flashcrowd_checkout_order_events_total':
        add(r.counters, `event${SEP}${l.event}`, row.value);
        break;
      case 'flashcrowd_checkout_shed_total':
        add(r.counters, 'shed', row.value);
        break;
      case 'flashcrowd_checkout_dependency_calls_total':
        add(r.counters, ['call', l.dependency, l.outcome].join(SEP), row.value);
        break;
      case 'flashcrowd_checkout_dependency_retries_total':
        add(r.counters, `retry${SEP}${l.dependency}`, row.value);
        break;
      case 'flashcrowd_checkout_event_loop_delay_seconds':
        r.gauges.set('loop_delay_ms', row.value * 1000);
        break;
      case 'flashcrowd_checkout_bulkhead_queued':
        r.gauges.set(seriesKey('bulkhead_queued', { dependency: l.dependency ?? '' }), row.value);
        break;
      case 'flashcrowd_checkout_breaker_state':
        r.gauges.set(
          seriesKey('breaker_state', { dependency: l.dependency ?? '', key: l.key ?? '' }),
          row.value,
        );
        break;
    }
  }
  const of = (name: string, keep: (h: HistogramRow) => boolean = () => true) =>
    mergeBuckets(histograms.filter((h) => h.name === name && keep(h)).map((h) => h.buckets));
  r.histograms.set(
    'latency',
    of(
      'flashcrowd_checkout_request_duration_seconds',
      (h) => !NON_SHOPPER_ROUTES.has(h.labels.route ?? ''),
    ),
  );
  r.histograms.set('queue', of('flashcrowd_checkout_request_queue_seconds'));
  // Every Redis op of the checkout together: what the cascade reads as "Redis queued".
  r.histograms.set('redis', of('flashcrowd_checkout_redis_duration_seconds'));
  return r;
}
