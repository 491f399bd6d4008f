// `flashcrowd run`, metrics: the final readings (stock, the checkout's and the
// mocks' Prometheus counters) and the flat metrics budgets name
// (docs/BUDGETS.md), with the failures and injected faults summary.json lists.
import type { AuditReport, InvariantId, InvariantResult } from '../audit.ts';
import type { EngineSummary } from '../engine/metrics.ts';
import type { Collector } from '../collect.ts';
import { processOf } from '../collect-instances.ts';
import { counterRows, scrape, sumCounterTexts } from '../prom.ts';
import { seriesKey, type RunSummary } from '../summary.ts';
import { fromAnyInstance } from './http.ts';
import type { Traffic } from './load.ts';
import { SERVICES, type Service, type Target } from './target.ts';

type Metrics = Record<string, number | null>;

export interface Readings {
  stock: RunSummary['stock'];
  /**
   * Prometheus text (undefined: the scrape failed, or no such mock). The
   * checkout's: every instance's counters summed, each of its processes
   * counted (a killed one by its last scrape).
   */
  checkoutProm: string | undefined;
  /** Shopper and callback requests each checkout instance counted, by index (null: none of its texts read). */
  instanceRequests?: (number | null)[];
  mockProms: Partial<Record<Service, string>>;
}

type StockBody = {
  data: {
    sku?: string;
    id?: string;
    initial: number;
    available: number;
    reserved: number;
    sold: number;
  }[];
};

/**
 * Every checkout instance's counters: its last process scraped now, and the
 * last scrape the collector took of each earlier process (killed, restarted)
 * or of the current one when it does not answer now.
 */
async function checkoutTexts(checkouts: readonly string[], collector?: Collector) {
  const perInstance = await Promise.all(
    checkouts.map(async (url, i) => {
      const now = await scrape(url).catch(() => undefined);
      const earlier =
        collector?.checkoutInstances.lastTexts(i, now === undefined ? undefined : processOf(now)) ??
        [];
      return now === undefined ? earlier : [now, ...earlier];
    }),
  );
  const requests = perInstance.map((texts) =>
    texts.length === 0
      ? null
      : texts
          .flatMap((t) => counterRows(t, 'flashcrowd_checkout_requests_total'))
          .filter((r) => r.name === 'flashcrowd_checkout_requests_total')
          .reduce((n, r) => n + r.value, 0),
  );
  const all = perInstance.flat();
  return {
    checkoutProm:
      all.length === 0
        ? undefined
        : checkouts.length === 1 && all.length === 1
          ? all[0]
          : sumCounterTexts(all),
    instanceRequests: requests,
  };
}

/** Read once the system has settled: stock by SKU, and every service's counters. */
export async function finalReadings(
  { urls, haveMocks }: Target,
  collector?: Collector,
): Promise<Readings> {
  const checkouts = urls.checkouts ?? [urls.checkout];
  const stockBody = await fromAnyInstance<StockBody>(checkouts, '/admin/stock');
  const stock: RunSummary['stock'] = (stockBody?.body.data ?? []).map((x) => ({
    sku: String(x.sku ?? x.id),
    initial: x.initial,
    available: x.available,
    reserved: x.reserved,
    sold: x.sold,
  }));
  const { checkoutProm, instanceRequests } = await checkoutTexts(checkouts, collector);
  const mockProms: Readings['mockProms'] = {};
  if (haveMocks)
    for (const s of SERVICES) mockProms[s] = await scrape(urls[s]).catch(() => undefined);
  return { stock, checkoutProm, instanceRequests, mockProms };
}

/**
 * Payment-gateway calls (bank and wallet, every operation and retry) per pay
 * click of a shopper: what the shoppers' re-clicks and the checkout's retries
 * make of one click, end to end (null without clicks or calls).
 */
function endToEnd(m: Metrics): number | null {
  const clicks = m['pay.attempted'];
  const bank = m['dep.calls{dependency=bank}'];
  const wallet = m['dep.calls{dependency=wallet}'];
  if (!clicks || bank === undefined || bank === null) return null;
  return (bank + (wallet ?? 0)) / clicks;
}

/** The gateways' risk-control declines (velocity, fraud rules), seeds 000 and 003. */
const RISK_DECLINES = new Set(['card_velocity_exceeded', 'risk_control_rejected']);

/** The run's metrics: computeMetrics, the gateways' risk declines, and the schedule's arrivals. */
export function runMetrics(
  readings: Readings,
  a: {
    load: EngineSummary | undefined;
    audit: AuditReport | undefined;
    invariants: InvariantResult[];
    allowUndecided: readonly InvariantId[];
    stages: string[];
  },
  traffic: Traffic,
): Metrics {
  const metrics = computeMetrics({
    load: a.load,
    checkoutProm: readings.checkoutProm,
    audit: a.audit,
    invariants: a.invariants,
    allowUndecided: a.allowUndecided,
    stock: readings.stock,
    stages: a.stages,
  });
  metrics['retries.end_to_end'] = endToEnd(metrics);
  if (Object.keys(readings.mockProms).length)
    metrics['risk.declines'] = declinesOf(readings.mockProms)
      .filter((d) => RISK_DECLINES.has(d.reason))
      .reduce((n, d) => n + d.count, 0);
  const perInstance = readings.instanceRequests ?? [];
  if (perInstance.length > 0) {
    metrics['checkout.instances'] = perInstance.length;
    perInstance.forEach((n, i) => (metrics[seriesKey('checkout.requests', { instance: i })] = n));
  }
  metrics['arrivals.scheduled'] = traffic.scheduled;
  metrics['arrivals.unaccounted'] = traffic.unaccounted;
  return metrics;
}

/** The flat metrics budgets name (docs/BUDGETS.md). null: no samples. */
export function computeMetrics(a: {
  load: EngineSummary | undefined;
  checkoutProm: string | undefined;
  audit: AuditReport | undefined;
  /** The run's invariants (default: the audit's); every one undecided when the audit could not run. */
  invariants?: InvariantResult[];
  /** Invariants the preset accepts undecided (`allowUndecided`): not counted in invariants.broken. */
  allowUndecided?: readonly InvariantId[];
  stock: RunSummary['stock'];
  stages: string[];
}): Metrics {
  const m: Metrics = loadMetrics(a.load, a.stages);
  if (a.checkoutProm !== undefined) Object.assign(m, checkoutMetrics(a.checkoutProm));
  if (a.audit) Object.assign(m, auditMetrics(a.audit));
  const invariants = a.invariants ?? a.audit?.invariants ?? [];
  if (invariants.length) Object.assign(m, invariantMetrics(invariants, a.allowUndecided ?? []));
  if (a.stock.length) Object.assign(m, stockMetrics(a.stock));
  return m;
}

/** From the engine's summary: arrivals, shoppers' order and pay steps (overall and by stage), latency. */
function loadMetrics(load: EngineSummary | undefined, stages: string[]): Metrics {
  const m: Metrics = {};
  const k = load?.metrics ?? {};
  const v = (name: string, field: string): number | null => {
    const x = k[name]?.values?.[field];
    return typeof x === 'number' && Number.isFinite(x) ? x : null;
  };
  const rateCount = (name: string): number | null => {
    const p = v(name, 'passes');
    const f = v(name, 'fails');
    return p === null && f === null ? null : (p ?? 0) + (f ?? 0);
  };
  const iterations = v('iterations', 'count');
  m.arrivals = iterations;
  // Engines create dropped_iterations only when an arrival is dropped.
  m.dropped_iterations = v('dropped_iterations', 'count') ?? (iterations !== null ? 0 : null);
  const perStage = (key: string, metric: string, field: string, stage?: string) => {
    const name = stage ? `${metric}{stage:${stage}}` : metric;
    m[stage ? seriesKey(key, { stage }) : key] =
      field === 'count' ? rateCount(name) : v(name, field);
  };
  for (const stage of [undefined, ...stages]) {
    perStage('orders.failure_rate', 'fc_order_failed', 'rate', stage);
    perStage('orders.attempted', 'fc_order_failed', 'count', stage);
    perStage('pay.failure_rate', 'fc_pay_failed', 'rate', stage);
    perStage('pay.attempted', 'fc_pay_failed', 'count', stage);
    perStage('order.p99_ms', 'fc_order_ms', 'p(99)', stage);
    perStage('pay.p99_ms', 'fc_pay_ms', 'p(99)', stage);
  }
  m['checkout.p50_ms'] = v('http_req_duration{service:checkout}', 'med');
  m['checkout.p95_ms'] = v('http_req_duration{service:checkout}', 'p(95)');
  m['checkout.p99_ms'] = v('http_req_duration{service:checkout}', 'p(99)');
  return m;
}

/** From the checkout's counters: errors, shedding, orders, payments, dependencies, retries. */
function checkoutMetrics(checkoutProm: string): Metrics {
  const m: Metrics = {};
  const rows = counterRows(checkoutProm, 'flashcrowd_checkout_');
  const sum = (name: string, f: (l: Record<string, string>) => boolean = () => true) =>
    rows.filter((r) => r.name === name && f(r.labels)).reduce((s, r) => s + r.value, 0);
  const req = 'flashcrowd_checkout_requests_total';
  const total = sum(req);
  m['checkout.error_rate'] = total > 0 ? sum(req, (l) => Number(l.status) >= 500) / total : null;
  m['checkout.shed'] = sum('flashcrowd_checkout_shed_total');
  // Every failure carries a reason code (seeds 000, 002, 003: "vague error messages").
  const failed = (l: Record<string, string>) => Number(l.status) >= 400;
  m['checkout.unexplained'] = sum(req, (l) => failed(l) && (l.reason ?? 'none') === 'none');
  m['failures.reasons'] = new Set(
    rows.filter((r) => r.name === req && failed(r.labels)).map((r) => r.labels.reason ?? 'none'),
  ).size;
  m['orders.created'] = sum(req, (l) => l.route === 'orders.create' && l.status === '201');
  m['orders.sold_out'] = sum(req, (l) => l.route === 'orders.create' && l.reason === 'sold_out');
  // Orders paid, whichever way the payment was confirmed (answer, callback, reconciler).
  m['pay.paid'] = sum(
    'flashcrowd_checkout_order_events_total',
    (l) => l.event === 'paid' || (l.event ?? '').startsWith('paid_by_'),
  );
  const calls = 'flashcrowd_checkout_dependency_calls_total';
  let attempts = 0;
  for (const dep of SERVICES) {
    const n = sum(calls, (l) => l.dependency === dep);
    const bad = sum(calls, (l) => l.dependency === dep && l.outcome !== 'ok');
    m[seriesKey('dep.calls', { dependency: dep })] = n;
    m[seriesKey('dep.error_rate', { dependency: dep })] = n > 0 ? bad / n : null;
    // A cut link times out (a black hole) or refuses (a closed port): which one, per dependency.
    m[seriesKey('dep.timeouts', { dependency: dep })] = sum(
      calls,
      (l) => l.dependency === dep && l.outcome === 'timeout',
    );
    m[seriesKey('dep.refused', { dependency: dep })] = sum(
      calls,
      (l) => l.dependency === dep && l.outcome === 'connection_refused',
    );
    attempts += n;
  }
  const event = (e: string) => sum('flashcrowd_checkout_order_events_total', (l) => l.event === e);
  m['orders.expired'] = event('expired');
  m['orders.false_sold_out'] = event('false_sold_out');
  m['pay.failover'] = event('failover');
  const retries = sum('flashcrowd_checkout_dependency_retries_total');
  m['retries.amplification'] = attempts - retries > 0 ? attempts / (attempts - retries) : null;
  return m;
}

/** From the audit: leaks, double charges, late payments, processing payments. */
function auditMetrics(audit: AuditReport): Metrics {
  const m: Metrics = {};
  const t = audit.totals;
  m['leaks.stock'] = t.stockLeaks;
  m['leaks.stock_units'] = t.stockLeakUnits;
  m['leaks.coupon'] = t.couponLeaks;
  m.double_charges = t.doubleCharges;
  m.captures_without_paid_order = t.capturesWithoutPaidOrder;
  m.paid_without_capture = t.paidWithoutCapture;
  m.late_payments = t.latePayments;
  m.stuck_processing = t.stuckProcessing;
  m['leaks.stream_pending'] = t.streamPending;
  return m;
}

/**
 * Each invariant (1 held, 0 broken, no value undecided); how many are broken,
 * an undecided one counting as broken unless the preset allows it undecided
 * (a check that could not be made never passes by accident); how many are
 * undecided.
 */
function invariantMetrics(invariants: InvariantResult[], allow: readonly InvariantId[]): Metrics {
  const m: Metrics = {};
  const undecided = invariants.filter((i) => i.ok === null);
  m['invariants.broken'] =
    invariants.filter((i) => i.ok === false).length +
    undecided.filter((i) => !allow.includes(i.id)).length;
  m['invariants.undecided'] = undecided.length;
  for (const inv of invariants) m[`invariants.${inv.id}`] = inv.ok === null ? null : inv.ok ? 1 : 0;
  return m;
}

/** From the final stock: units sold, their share, and oversold units. */
function stockMetrics(stock: RunSummary['stock']): Metrics {
  const sold = stock.reduce((s, r) => s + r.sold, 0);
  const initial = stock.reduce((s, r) => s + r.initial, 0);
  return {
    'stock.sold': sold,
    'stock.sold_ratio': initial > 0 ? sold / initial : null,
    // Units sold or reserved beyond the stock: once a sale is oversold and paid,
    // sold - initial and -available are the same units (counted once).
    oversold: stock.reduce((s, r) => s + Math.max(0, r.sold - r.initial, -r.available), 0),
  };
}

/** Shopper-visible failures by step and reason, from the checkout's counters. */
export function failuresOf(checkoutProm: string | undefined): RunSummary['failures'] {
  if (checkoutProm === undefined) return [];
  const rows = counterRows(checkoutProm, 'flashcrowd_checkout_').filter(
    (r) =>
      r.name === 'flashcrowd_checkout_requests_total' &&
      Number(r.labels.status) >= 400 &&
      // The answer to a copy of a double-submitted order while the first runs:
      // the shopper sees the first's answer (I10 compares them: fc_idem_replays).
      r.labels.reason !== 'idempotency_key_in_use',
  );
  const by = new Map<string, number>();
  for (const r of rows) {
    const step =
      r.labels.route === 'orders.create'
        ? 'order'
        : r.labels.route === 'orders.pay'
          ? 'pay'
          : (r.labels.route ?? '?');
    const key = `${step}\u0000${r.labels.reason ?? 'none'}`;
    by.set(key, (by.get(key) ?? 0) + r.value);
  }
  return [...by]
    .map(([k, count]) => {
      const [step, reason] = k.split('\u0000') as [string, string];
      return { step, reason, count };
    })
    .filter((f) => f.count > 0)
    .sort((a, b) => b.count - a.count);
}

/** A counter labelled by `event` (no text: none), most first. */
function eventCounts(prom: string | undefined, counter: string) {
  if (prom === undefined) return [];
  return counterRows(prom, counter)
    .filter((r) => r.name === counter && r.value > 0)
    .map((r) => ({ event: r.labels.event ?? '?', count: r.value }))
    .sort((a, b) => b.count - a.count || a.event.localeCompare(b.event));
}

/** The checkout's order events (flashcrowd_checkout_order_events_total), most first. */
export const orderEventsOf = (checkoutProm: string | undefined) =>
  eventCounts(checkoutProm, 'flashcrowd_checkout_order_events_total');

/** The wallet's merchant notifications by event (flashcrowd_mock_notifications_total), most first. */
export const notificationsOf = (walletProm: string | undefined) =>
  eventCounts(walletProm, 'flashcrowd_mock_notifications_total');

/** Every mock's rows of `counter` above 0 that `keep` accepts, as `row` shapes them, most first. */
function mockCounts<T extends { count: number }>(
  proms: Partial<Record<Service, string>>,
  counter: string,
  row: (service: Service, labels: Record<string, string>, count: number) => T | undefined,
): T[] {
  const out: T[] = [];
  for (const service of SERVICES) {
    const text = proms[service];
    if (!text) continue;
    for (const r of counterRows(text, counter)) {
      if (r.name !== counter || r.value <= 0) continue;
      const x = row(service, r.labels, r.value);
      if (x) out.push(x);
    }
  }
  return out.sort((a, b) => b.count - a.count);
}

/** The gateways' declines (402 answers) by service, operation and reason, most first. */
export const declinesOf = (proms: Partial<Record<Service, string>>) =>
  mockCounts(proms, 'flashcrowd_mock_requests_total', (service, l, count) =>
    l.outcome === 'declined'
      ? { service, operation: l.operation ?? '?', reason: l.reason ?? '?', count }
      : undefined,
  );

/** Faults the mocks injected, by service, operation and kind, most first. */
export const injectedOf = (proms: Partial<Record<Service, string>>) =>
  mockCounts(proms, 'flashcrowd_mock_faults_injected_total', (service, l, count) => ({
    service,
    operation: l.operation ?? '?',
    kind: l.kind ?? '?',
    count,
  }));
