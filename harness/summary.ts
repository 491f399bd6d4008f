// The run's outputs as data: `summary.json` (a stable, documented schema:
// docs/summary.schema.json is generated from `runSummarySchema`) and
// `timeseries.json` (one sample per second). The renderers in harness/report/
// read only these two, so a report can be re-rendered from a run's files.
//
// Changing a field here is a change to a public format: bump SUMMARY_SCHEMA_VERSION
// when a field is removed or changes meaning (adding an optional field is fine).
import { z } from 'zod';

export const SUMMARY_SCHEMA_VERSION = 1;

const num = z.number();
const nullableNum = z.number().nullable();

export const budgetResultSchema = z
  .object({
    /** As written: `pay.failure_rate<0.02`. */
    expr: z.string(),
    metric: z.string(),
    op: z.enum(['<', '<=', '>', '>=', '==', '!=']),
    threshold: num,
    /** The metric's value; null when it had no samples (the budget then fails). */
    value: nullableNum,
    ok: z.boolean(),
    /** Where the budget came from. */
    source: z.enum(['preset', 'variant', 'cli', 'harness']),
    note: z.string().optional(),
  })
  .strict();
export type BudgetResult = z.infer<typeof budgetResultSchema>;

export const invariantResultSchema = z
  .object({
    id: z.string().regex(/^I\d+$/),
    name: z.string(),
    /** true holds, false broken, null the data could not decide (see note). */
    ok: z.boolean().nullable(),
    count: z.number().int().min(0),
    examples: z.array(z.string()),
    note: z.string().optional(),
  })
  .strict();

export const stockRowSchema = z
  .object({
    sku: z.string(),
    initial: num,
    available: num,
    reserved: num,
    sold: num,
  })
  .strict();

/** One fault interval on the time axis (seconds from the start of traffic). */
export const faultBandSchema = z
  .object({
    service: z.enum(['bank', 'wallet', 'coupon', 'checkout', 'redis']),
    label: z.string(),
    fromS: num,
    /** null: still in force when the run ended. */
    toS: nullableNum,
  })
  .strict();
export type FaultBand = z.infer<typeof faultBandSchema>;

/**
 * The cascade timeline (harness/cascade.ts, docs/REPORTS.md "Cascade"): when
 * each signal left its baseline, in time order, and how much the layers
 * multiplied the shoppers' payment clicks on their way to the gateways.
 */
export const cascadeSchema = z
  .object({
    /** The onset rule's constants: baseline window, then per signal factor, floor and consecutive seconds. */
    rule: z
      .object({
        baselineStage: z.string(),
        baselineShare: num,
        baselineMinSamples: z.number().int(),
        signals: z.record(
          z.string(),
          z.object({ factor: num, floor: num, consecutive: z.number().int() }).strict(),
        ),
      })
      .strict(),
    /** The start of the first fault band (seconds from the start of traffic); null: no band. */
    firstFaultS: nullableNum,
    /** Signals that crossed their threshold, earliest first. */
    onsets: z.array(
      z
        .object({
          /** `dep.p99_ms`, `dep.error_rate`, `dep.retries_per_s`, `dep.breaker_open`, `checkout.p99_ms`, `checkout.failure_rate`, `checkout.shed_per_s`, `stock.held`. */
          signal: z.string(),
          /** For the `dep.*` signals: bank, wallet, coupon. */
          dependency: z.string().optional(),
          /** The first second of the first run of `consecutive` seconds above the threshold. */
          atS: num,
          /** atS minus firstFaultS; null without a fault band. */
          lagS: nullableNum,
          /** Median over the baseline window (0 when it had no sample). */
          baseline: num,
          threshold: num,
          /** The highest value from the onset on. */
          peak: num,
        })
        .strict(),
    ),
    /** Signals with no onset, as `signal{dependency=bank}` or `signal`. */
    none: z.array(z.string()),
    /** `bank p99 x4.2 at 12 s -> bank retries x3 at 13 s -> ...`, or `no onset`. */
    story: z.string(),
    /** Calls per shopper pay click, by layer; null where the data is missing. */
    amplification: z
      .object({
        /** `pay.attempted`: the shoppers' pay clicks, first and retried after a failure; re-click copies not counted. */
        payClicks: nullableNum,
        /** Answers to POST /v1/orders/:id/pay (requests_per_s{route=orders.pay}, integrated): clicks and their re-click copies. */
        payRequests: nullableNum,
        /** payRequests / payClicks: the shoppers' re-click layer. */
        reclickX: nullableNum,
        /** Calls to the payment gateways (`dep.calls` of bank and wallet). */
        paymentCalls: nullableNum,
        /** paymentCalls / payRequests: the checkout layer (retries, deduplicated re-clicks, the wallet's two calls, queries). */
        checkoutX: nullableNum,
        /** paymentCalls / payClicks = reclickX x checkoutX. */
        endToEndX: nullableNum,
        dependencies: z.array(
          z
            .object({
              dependency: z.string(),
              /** `dep.calls{dependency}`: every attempt the checkout made. */
              calls: nullableNum,
              /** retries_per_s{dependency}, integrated. */
              retries: nullableNum,
              /** calls / (calls - retries): the checkout's retry layer. */
              retryX: nullableNum,
              /** calls / payClicks, for the payment gateways (bank, wallet); null for the coupon service. */
              perPayClick: nullableNum,
            })
            .strict(),
        ),
      })
      .strict(),
  })
  .strict();
export type Cascade = z.infer<typeof cascadeSchema>;

export const runSummarySchema = z
  .object({
    schemaVersion: z.literal(SUMMARY_SCHEMA_VERSION),
    runId: z.string(),
    tool: z.object({ name: z.literal('flashcrowd'), version: z.string() }).strict(),
    /** The load engine that ran the traffic (absent in summaries written before engines). */
    engine: z
      .object({ name: z.enum(['flashcrowd', 'k6']), version: z.string(), detail: z.string() })
      .strict()
      .optional(),
    /** The arrival schedule against what the engine did (absent in older summaries). */
    traffic: z
      .object({
        scheduled: z.number().int().min(0),
        started: z.number().int().min(0).nullable(),
        dropped: z.number().int().min(0),
        /** Scheduled arrivals neither started nor dropped; above `tolerance` the run fails. */
        unaccounted: z.number().int(),
        tolerance: z.number().int().min(0),
      })
      .strict()
      .optional(),
    preset: z
      .object({
        name: z.string(),
        file: z.string(),
        description: z.string(),
        variant: z.string().optional(),
      })
      .strict(),
    params: z
      .object({
        seed: z.number().int(),
        timeScale: num,
        loadScale: num,
        /** `embedded` (the harness started the stack) or the target URL. */
        target: z.string(),
      })
      .strict(),
    startedAt: z.string(),
    endedAt: z.string(),
    /** Seconds of traffic (k6), then of quiescence. */
    durations: z.object({ trafficS: num, quiescenceS: num, totalS: num }).strict(),
    verdict: z.enum(['pass', 'fail']),
    /** 0 pass, 1 a budget or an invariant failed, 130 / 143 interrupted by SIGINT / SIGTERM. */
    exitCode: z.union([z.literal(0), z.literal(1), z.literal(130), z.literal(143)]),
    /** Set when Ctrl-C or SIGTERM cut the run short: the load stopped, quiescence was skipped. */
    interrupted: z
      .object({ signal: z.enum(['SIGINT', 'SIGTERM']), afterTrafficS: num })
      .strict()
      .optional(),
    checkout: z
      .object({
        mode: z.enum(['naive', 'hardened']),
        features: z.record(z.string(), z.union([z.boolean(), z.string()])),
        params: z.record(z.string(), z.union([z.number(), z.string()])),
      })
      .strict(),
    /**
     * Every metric a budget can name, flat: `pay.failure_rate`, `checkout.p99_ms`,
     * `leaks.stock`, `dropped_iterations`... (docs/BUDGETS.md lists them). null: no samples.
     */
    metrics: z.record(z.string(), nullableNum),
    budgets: z.array(budgetResultSchema),
    invariants: z.array(invariantResultSchema),
    stock: z.array(stockRowSchema),
    /** Failures seen by shoppers, by step (order, pay) and reason code. */
    failures: z.array(
      z.object({ step: z.string(), reason: z.string(), count: z.number().int() }).strict(),
    ),
    /**
     * What happened to orders and payments beyond the shoppers' answers (absent
     * in older summaries): the checkout's order events (created, paid, expired,
     * failover, late_refunded...) and the gateways' declines by reason (risk
     * control: card_velocity_exceeded...), from their metrics.
     */
    events: z
      .object({
        orders: z.array(z.object({ event: z.string(), count: num }).strict()),
        declines: z.array(
          z
            .object({ service: z.string(), operation: z.string(), reason: z.string(), count: num })
            .strict(),
        ),
        /** The wallet's merchant notifications by event (sent, acked, dropped, lost, gave_up...). */
        notifications: z.array(z.object({ event: z.string(), count: num }).strict()).optional(),
      })
      .strict()
      .optional(),
    chaos: z
      .object({
        bands: z.array(faultBandSchema),
        /**
         * The preset's faults beyond the mocks as played (absent without them):
         * each step, when it took effect and ended (seconds from the start of
         * traffic), and why it did not (`faults.failed` counts those).
         */
        timeline: z
          .array(
            z
              .object({
                step: num,
                action: z.enum(['toxic', 'down', 'kill', 'restart', 'pause']),
                target: z.string(),
                label: z.string(),
                fromS: nullableNum,
                toS: nullableNum,
                error: z.string().optional(),
              })
              .strict(),
          )
          .optional(),
        /** Faults the mocks injected, from their metrics. */
        injected: z.array(
          z
            .object({
              service: z.string(),
              operation: z.string(),
              kind: z.string(),
              count: num,
            })
            .strict(),
        ),
      })
      .strict(),
    quiescence: z
      .object({
        settled: z.boolean(),
        waitedS: num,
        note: z.string().optional(),
      })
      .strict(),
    /** When each signal left its baseline, and the retry amplification (absent in older summaries). */
    cascade: cascadeSchema.optional(),
    /**
     * Cores each process used on average during the traffic (absent in older
     * summaries, and empty where /proc cannot be read): `harness+load` (the
     * harness with flashcrowd's engine in it; `harness` with --runners),
     * `checkout`, `mocks`, `redis` (started by the run), `machine` (all of it,
     * of `cores`); `peakCores`, the same in the busiest 3 s of the traffic.
     * `flashcrowd sweep` names the one that saturated (at its peak).
     */
    cpu: z
      .object({
        shares: z.array(
          z.object({ name: z.string(), cores: num, peakCores: num.optional() }).strict(),
        ),
        cores: z.number().int(),
      })
      .strict()
      .optional(),
    /**
     * Where the sale's data lived (absent in older summaries and without a
     * Redis URL): one Redis, or a Redis Cluster (`cluster`); per master, its
     * address, its keys after the run (DBSIZE) and the SKUs whose hash slot it
     * serves (harness/run/redis-layout.ts).
     */
    redis: z
      .object({
        cluster: z.boolean(),
        masters: z.array(
          z.object({ node: z.string(), keys: num, skus: z.array(z.string()) }).strict(),
        ),
      })
      .strict()
      .optional(),
    /** Problems that did not stop the run (a scrape that failed, k6's own exit code...). */
    warnings: z.array(z.string()),
    /** Report files, relative to the run directory. */
    files: z.record(z.string(), z.string()),
  })
  .strict();
export type RunSummary = z.infer<typeof runSummarySchema>;

/**
 * One sample per second from the start of traffic. Every series has one value
 * per entry of `t` (null where no sample was taken). Series names:
 *
 *   arrivals_per_s            shoppers k6 started per second
 *   dropped_per_s             arrivals k6 could not start (no free VU)
 *   requests_per_s{route}     checkout answers per second, by route
 *   paid_per_s                orders paid per second
 *   failures_per_s{reason}    shopper-visible failures per second, by reason code
 *   refused_per_s{reason}     refusals by design (sold_out, purchase_limit_exceeded...)
 *   vus                       k6 VUs busy
 *   latency_ms{q}             checkout request latency quantiles (q=0.5, 0.99) over the second
 *   stock_available{sku}, stock_reserved{sku}, stock_sold{sku}
 *   dep_calls_per_s{dependency,outcome}   gateway calls by outcome (ok or a reason)
 *   dep_latency_ms{dependency,q}          the mock's own answer latency quantiles
 *   shed_per_s, retries_per_s{dependency}, breaker_state{dependency,key}
 */
export const timeSeriesSchema = z
  .object({
    schemaVersion: z.literal(SUMMARY_SCHEMA_VERSION),
    /** Epoch milliseconds of t = 0 (the start of traffic). */
    startedAtMs: num,
    intervalS: num,
    t: z.array(num),
    series: z.record(z.string(), z.array(nullableNum)),
    bands: z.array(faultBandSchema),
    /** Stage boundaries of the traffic shape, for the charts. */
    stages: z.array(z.object({ label: z.string(), fromS: num, toS: num }).strict()),
  })
  .strict();
export type TimeSeries = z.infer<typeof timeSeriesSchema>;

/** `name{a=1,b=x}` for a series with labels (labels sorted), `name` without. */
export function seriesKey(name: string, labels: Record<string, string | number> = {}): string {
  const ks = Object.keys(labels).sort();
  return ks.length ? `${name}{${ks.map((k) => `${k}=${labels[k]}`).join(',')}}` : name;
}
