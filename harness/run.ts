// `flashcrowd run <preset|file>`: from traffic spike to verdict. Starts (or
// targets) the stack, seeds the sale, applies the preset's chaos, runs the
// livestream shoppers with the load engine (flashcrowd's own, or the user's k6)
// while collecting every service's metrics each
// second and printing progress, waits for the system to settle, audits the
// invariants, evaluates the budgets and writes the report files.
//
// Exit codes: 0 every budget passed and no invariant broke; 1 a budget failed
// or an invariant broke (for a preset with variants run together: a variant
// did not do what it `expect`s); 2 usage or set-up error.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectRedis, Store } from '../checkout/store.ts';
import { audit, INVARIANT_NAMES, type AuditReport, type InvariantId } from './audit.ts';
import { evaluateBudgets, parseBudget, type ParsedBudget } from './budgets.ts';
import { Collector } from './collect.ts';
import { UsageError } from './errors.ts';
import { EmbeddedEngine } from './engine/embedded.ts';
import { K6Engine, resolveK6Engine } from './engine/k6.ts';
import type { EngineSummary } from './engine/metrics.ts';
import type { EngineName, LoadEngine, LoadPlan, LoadResult } from './engine/types.ts';
import { gracefulStopS } from '../scenarios/lib/preset.ts';
import {
  loadPreset,
  resolvePreset,
  scaleChaosProfile,
  type Preset,
  type ResolvedPreset,
  type Variant,
} from './preset.ts';
import { counterRows, scrape } from './prom.ts';
import { writeReports } from './report/index.ts';
import { startStack, type Stack, type StackUrls } from './stack.ts';
import {
  SUMMARY_SCHEMA_VERSION,
  seriesKey,
  type BudgetResult,
  type FaultBand,
  type RunSummary,
  type TimeSeries,
} from './summary.ts';
import { PROJECT_ROOT } from './tools.ts';

export interface RunOptions {
  preset: string;
  seed: number;
  timeScale?: number;
  loadScale?: number;
  /** Use the preset's `ci` scales (short run) where --time-scale / --load-scale are not given. */
  ci: boolean;
  variant?: string;
  target?: string;
  bank?: string;
  wallet?: string;
  coupon?: string;
  redis?: string;
  allowRemoteTarget: boolean;
  out?: string;
  budgets: string[];
  /** Longest wait for the system to settle after the traffic (seconds; default from the payment deadline). */
  quiescenceS?: number;
  progress: 'auto' | 'tty' | 'plain' | 'none';
  /** The load engine (default flashcrowd's own). */
  engine?: EngineName;
  /** Worker threads of flashcrowd's engine (default 1). */
  workers?: number;
  /** Ctrl-C: the load stops early (the run then reports what it saw). */
  signal?: AbortSignal;
}

type Print = (line: string) => void;

const SCENARIO = join(PROJECT_ROOT, 'scenarios', 'livestream.ts');
const SERVICES = ['bank', 'wallet', 'coupon'] as const;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function toolVersion(): string {
  return (
    JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

function checkUrl(flag: string, v: string, allowRemote: boolean): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new UsageError(`${flag} must be a URL, got "${v}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`${flag} must be an http(s) URL, got "${v}"`);
  if (!allowRemote && !LOOPBACK_HOSTS.has(u.hostname))
    throw new UsageError(
      `${flag} ${v} is not a loopback address: a testbed must never load production by accident. ` +
        'Give --allow-remote-target if you mean it.',
    );
  return v.replace(/\/$/, '');
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

async function http<T = unknown>(
  url: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const token = process.env.FLASHCROWD_ADMIN_TOKEN;
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: body as T };
}

async function must<T = unknown>(
  what: string,
  url: string,
  init: { method?: string; body?: unknown } = {},
): Promise<T> {
  const r = await http<T>(url, init);
  if (r.status >= 300)
    throw new UsageError(
      `${what}: ${init.method ?? 'GET'} ${url} answered ${r.status}: ${JSON.stringify(r.body)}`,
    );
  return r.body;
}

/** Fault bands from a (scaled) chaos profile: outage windows and timeline steps. */
export function bandsOf(
  service: FaultBand['service'],
  profile: unknown,
  endS: number,
): FaultBand[] {
  const p = (profile ?? {}) as {
    latency?: unknown;
    errors?: unknown[];
    outages?: { startMs?: number; durationMs?: number; mode?: string }[];
    timeline?: { atMs: number; profile?: unknown; mode?: string }[];
    operations?: Record<string, unknown>;
  };
  const bands: FaultBand[] = [];
  const describe = (x: unknown): string | undefined => {
    const q = (x ?? {}) as {
      latency?: { dist?: string; medianMs?: number; ms?: number };
      errors?: { rate?: number; kind?: string }[];
      outages?: unknown[];
      operations?: Record<string, unknown>;
    };
    const parts: string[] = [];
    if (q.latency)
      parts.push(
        `latency ${q.latency.medianMs ?? q.latency.ms ?? ''}${q.latency.dist ? ` ${q.latency.dist}` : ''}`.trim(),
      );
    for (const e of q.errors ?? [])
      parts.push(`${e.kind ?? 'error'} ${Math.round((e.rate ?? 0) * 100)}%`);
    if (q.operations) parts.push(`ops ${Object.keys(q.operations).join(',')}`);
    return parts.length ? parts.join(', ') : undefined;
  };
  const base = describe(p);
  if (base) bands.push({ service, label: base, fromS: 0, toS: null });
  for (const o of p.outages ?? []) {
    const from = (o.startMs ?? 0) / 1000;
    bands.push({
      service,
      label: `${o.mode ?? 'outage'}`,
      fromS: from,
      toS: o.durationMs === undefined ? null : Math.min(endS, from + o.durationMs / 1000),
    });
  }
  const steps = [...(p.timeline ?? [])].sort((a, b) => a.atMs - b.atMs);
  steps.forEach((s, i) => {
    const label = describe(s.profile) ?? (s.mode === 'replace' ? 'faults cleared' : undefined);
    if (!label || label === 'faults cleared') return;
    const next = steps[i + 1];
    bands.push({
      service,
      label,
      fromS: s.atMs / 1000,
      toS: next ? next.atMs / 1000 : null,
    });
  });
  return bands;
}

/** The flat metrics budgets name (docs/BUDGETS.md). null: no samples. */
export function computeMetrics(a: {
  load: EngineSummary | undefined;
  checkoutProm: string | undefined;
  audit: AuditReport | undefined;
  stock: RunSummary['stock'];
  stages: string[];
}): Record<string, number | null> {
  const m: Record<string, number | null> = {};
  const k = a.load?.metrics ?? {};
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
  for (const stage of [undefined, ...a.stages]) {
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

  if (a.checkoutProm !== undefined) {
    const rows = counterRows(a.checkoutProm, 'flashcrowd_checkout_');
    const sum = (name: string, f: (l: Record<string, string>) => boolean = () => true) =>
      rows.filter((r) => r.name === name && f(r.labels)).reduce((s, r) => s + r.value, 0);
    const req = 'flashcrowd_checkout_requests_total';
    const total = sum(req);
    m['checkout.error_rate'] = total > 0 ? sum(req, (l) => Number(l.status) >= 500) / total : null;
    m['checkout.shed'] = sum('flashcrowd_checkout_shed_total');
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
      attempts += n;
    }
    const retries = sum('flashcrowd_checkout_dependency_retries_total');
    m['retries.amplification'] = attempts - retries > 0 ? attempts / (attempts - retries) : null;
  }

  if (a.audit) {
    const t = a.audit.totals;
    m['leaks.stock'] = t.stockLeaks;
    m['leaks.stock_units'] = t.stockLeakUnits;
    m['leaks.coupon'] = t.couponLeaks;
    m.double_charges = t.doubleCharges;
    m.captures_without_paid_order = t.capturesWithoutPaidOrder;
    m.paid_without_capture = t.paidWithoutCapture;
    m.late_payments = t.latePayments;
    m.stuck_processing = t.stuckProcessing;
    m['invariants.broken'] = a.audit.violated.length;
    for (const inv of a.audit.invariants)
      m[`invariants.${inv.id}`] = inv.ok === null ? null : inv.ok ? 1 : 0;
  }
  if (a.stock.length) {
    const sold = a.stock.reduce((s, r) => s + r.sold, 0);
    const initial = a.stock.reduce((s, r) => s + r.initial, 0);
    m['stock.sold'] = sold;
    m['stock.sold_ratio'] = initial > 0 ? sold / initial : null;
    m.oversold = a.stock.reduce(
      (s, r) => s + Math.max(0, r.sold - r.initial) + Math.max(0, -r.available),
      0,
    );
  }
  return m;
}

/** Shopper-visible failures by step and reason, from the checkout's counters. */
function failuresOf(checkoutProm: string | undefined): RunSummary['failures'] {
  if (checkoutProm === undefined) return [];
  const rows = counterRows(checkoutProm, 'flashcrowd_checkout_').filter(
    (r) => r.name === 'flashcrowd_checkout_requests_total' && Number(r.labels.status) >= 400,
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

function injectedOf(proms: Partial<Record<(typeof SERVICES)[number], string>>) {
  const out: RunSummary['chaos']['injected'] = [];
  for (const service of SERVICES) {
    const text = proms[service];
    if (!text) continue;
    for (const r of counterRows(text, 'flashcrowd_mock_').filter(
      (x) => x.name === 'flashcrowd_mock_faults_injected_total',
    ))
      if (r.value > 0)
        out.push({
          service,
          operation: r.labels.operation ?? '?',
          kind: r.labels.kind ?? '?',
          count: r.value,
        });
  }
  return out.sort((a, b) => b.count - a.count);
}

// ---------------------------------------------------------------- progress

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

function fmt(n: number | null | undefined, digits = 0): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

// ---------------------------------------------------------------- one run

interface OneRun {
  preset: Preset;
  presetFile: string;
  variant?: Variant;
  dir: string;
  runId: string;
  seed: number;
  timeScale: number;
  loadScale: number;
  budgets: { expr: string; parsed: ParsedBudget; source: BudgetResult['source'] }[];
  /** A fresh load engine for this run. */
  engine: () => LoadEngine;
}

/** harness/shoppers-main.ts in a child process: faker stays out of this one. */
async function writeShoppersApart(file: string, presetFile: string, seed: number): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'bin', 'run-ts.js'),
      join(PROJECT_ROOT, 'harness', 'shoppers-main.ts'),
      file,
      presetFile,
      String(seed),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`writing the shoppers file failed (exit ${code}): ${stderr}`);
}

async function runOne(r: OneRun, o: RunOptions, print: Print): Promise<RunSummary> {
  mkdirSync(r.dir, { recursive: true });
  const startedAt = new Date();
  const warnings: string[] = [];
  const build = r.variant?.checkout ?? r.preset.checkout;
  const set = [
    ...Object.entries(build.set).map(([k, v]) => `${k}=${v}`),
    // The checkout's own durations (payment deadline, sweeper, reconciler) follow the run's time-scale.
    ...(Object.keys(build.set).includes('timeScale') ? [] : [`timeScale=${r.timeScale}`]),
  ];
  const resolved: ResolvedPreset = resolvePreset(r.preset, {
    seed: r.seed,
    timeScale: r.timeScale,
    loadScale: r.loadScale,
    variant: r.variant?.name,
  });

  let stack: Stack | undefined;
  let urls: StackUrls;
  if (o.target) {
    const allow = o.allowRemoteTarget;
    urls = {
      checkout: checkUrl('--target', o.target, allow),
      bank: o.bank ? checkUrl('--bank', o.bank, allow) : '',
      wallet: o.wallet ? checkUrl('--wallet', o.wallet, allow) : '',
      coupon: o.coupon ? checkUrl('--coupon', o.coupon, allow) : '',
      redis: o.redis ?? '',
    };
    if (!urls.bank || !urls.wallet || !urls.coupon)
      warnings.push(
        '--target without --bank, --wallet and --coupon: no chaos applied, ledger invariants undecided',
      );
    print(
      `target: checkout ${urls.checkout} (the harness did not start it; --set and the preset's checkout build do not apply)`,
    );
  } else {
    stack = await startStack({
      seed: r.seed,
      mode: build.mode,
      set,
      logDir: r.dir,
      log: print,
    });
    urls = stack.urls;
  }
  const haveMocks = Boolean(urls.bank && urls.wallet && urls.coupon);

  let redisClient: ReturnType<typeof connectRedis> | undefined;
  try {
    // ---- the sale and the chaos
    const config = await must<{
      mode: 'naive' | 'hardened';
      features: Record<string, boolean | string>;
      params: Record<string, number | string>;
      keyPrefix?: string;
    }>('reading the checkout settings', `${urls.checkout}/admin/config`);
    await must('seeding the sale', `${urls.checkout}/admin/sale`, {
      method: 'POST',
      body: {
        skus: resolved.sale.skus,
        ...(resolved.sale.coupon ? { coupon: resolved.sale.coupon } : {}),
      },
    });
    const skuIds = resolved.sale.skus.map((s) => s.id);
    print(
      `sale: ${resolved.sale.skus.map((s) => `${s.id} x${s.stock}`).join(', ')}` +
        (resolved.sale.coupon ? `; coupons ${resolved.sale.coupon.budget}` : ''),
    );

    // ---- the load engine's inputs (k6 reads them as files)
    const presetFile = join(r.dir, 'preset.resolved.json');
    writeFileSync(presetFile, JSON.stringify(resolved, null, 2));
    const shoppersFile = join(r.dir, 'shoppers.json');
    // As many shoppers as the shape brings arrivals, with a margin (scenarios/lib/preset.ts).
    await writeShoppersApart(shoppersFile, presetFile, r.seed);
    const plan = livestreamPlan(resolved, urls, r.dir, presetFile, shoppersFile, r.seed);
    const engine = r.engine();

    // ---- chaos, applied just before the traffic so its clock starts with it
    const chaos = (r.preset.chaos ?? {}) as Partial<
      Record<(typeof SERVICES)[number], Record<string, unknown>>
    >;
    const bands: FaultBand[] = [];
    if (haveMocks) {
      for (const service of SERVICES) {
        const url = urls[service];
        let profile = chaos[service]
          ? (scaleChaosProfile(chaos[service], r.timeScale) as Record<string, unknown>)
          : undefined;
        if (service === 'wallet') {
          // Notification retries (minutes to hours) follow the run's time-scale too.
          const extra = (profile?.extra ?? {}) as Record<string, unknown>;
          const notify = (extra.notify ?? {}) as Record<string, unknown>;
          profile = {
            ...(profile ?? {}),
            extra: { ...extra, notify: { timeScale: r.timeScale, ...notify } },
          };
        }
        if (profile) {
          await must(`applying the ${service} chaos profile`, `${url}/__chaos?seed=${r.seed}`, {
            method: 'PUT',
            body: profile,
          });
          bands.push(...bandsOf(service, chaos[service] ? profile : undefined, resolved.durationS));
        } else {
          await must(`clearing ${service} chaos`, `${url}/__chaos`, { method: 'DELETE' });
        }
      }
    }

    // ---- traffic
    const collector = new Collector({
      intervalMs: 1_000,
      checkoutUrl: urls.checkout,
      mocks: haveMocks ? { bank: urls.bank, wallet: urls.wallet, coupon: urls.coupon } : undefined,
      load: () => engine.snapshot(),
      adminToken: process.env.FLASHCROWD_ADMIN_TOKEN,
      startedAtMs: Date.now(),
    });
    const progress = progressPrinter(o.progress, print);
    print(
      `traffic: ${resolved.durationS} s, ${resolved.traffic.stages.length} stages, peak ${fmt(Math.max(resolved.traffic.startRate, ...resolved.traffic.stages.map((s) => s.target)))} arrivals/s (seed ${r.seed}, time-scale ${r.timeScale}, load-scale ${r.loadScale})`,
    );
    const trafficStart = Date.now();
    await collector.start();
    const ticker = setInterval(() => {
      const s = collector.snapshot();
      const el = (Date.now() - trafficStart) / 1000;
      const active = bands.filter((b) => b.fromS <= el && (b.toS === null || el < b.toS));
      progress.line(
        `[${fmt(el)}/${resolved.durationS}s] ${fmt(s.arrivalsPerS)} arrivals/s, ${fmt(s.paidPerS)} paid/s, ` +
          `failing ${s.failureShare === null ? '-' : fmt(s.failureShare * 100, 1)}%, p99 ${fmt(s.p99Ms)} ms, ` +
          `stock ${fmt(s.stock?.available)} left / ${fmt(s.stock?.reserved)} held / ${fmt(s.stock?.sold)} sold` +
          (active.length
            ? `; faults: ${active.map((b) => `${b.service} ${b.label}`).join('; ')}`
            : ''),
        el,
      );
    }, 1_000);
    let load: LoadResult;
    const stopLoad = () => void engine.stop();
    o.signal?.addEventListener('abort', stopLoad, { once: true });
    try {
      await engine.start(plan);
      load = await engine.result();
    } finally {
      o.signal?.removeEventListener('abort', stopLoad);
      clearInterval(ticker);
      progress.done();
    }
    const trafficS = (Date.now() - trafficStart) / 1000;
    if (load.log) writeFileSync(join(r.dir, load.logFile), load.log);
    warnings.push(...load.warnings);
    const traffic = trafficCheck(load);
    if (traffic.unaccounted > traffic.tolerance)
      warnings.push(
        `the engine started ${traffic.started ?? 'no'} of ${traffic.scheduled} scheduled arrivals and dropped ${traffic.dropped}: ` +
          `${traffic.unaccounted} are unaccounted for, so the run cannot pass (a load generator that sent no traffic?)`,
      );

    // ---- quiescence: faults end with the traffic; wait for deadlines, sweeper, reconciler, notifications
    if (haveMocks)
      for (const service of SERVICES)
        await http(`${urls[service]}/__chaos`, { method: 'DELETE' }).catch(() => undefined);
    const ttlS = (Number(config.params.paymentTtlMs ?? 900_000) * r.timeScale) / 1000;
    const limitS = o.quiescenceS ?? Math.max(15, Math.ceil(ttlS * 2 + 10));
    const qStart = Date.now();
    let report: AuditReport | undefined;
    let settled = false;
    const redisUrl = urls.redis;
    const store = redisUrl
      ? new Store((redisClient = connectRedis(redisUrl)), config.keyPrefix ?? 'fc')
      : undefined;
    if (!store) warnings.push('no Redis URL for the target (--redis): the audit was skipped');
    print(
      `settling: waiting up to ${limitS} s for deadlines, sweeper, reconciler and notifications...`,
    );
    const runAudit = () =>
      audit({
        store: store!,
        bank: urls.bank,
        wallet: urls.wallet,
        coupon: urls.coupon,
        skus: skuIds,
        campaignId: resolved.sale.coupon?.campaignId,
        since: startedAt.toISOString(),
      }).catch((e: Error) => {
        warnings.push(`audit failed: ${e.message}`);
        return undefined;
      });
    while (store && haveMocks) {
      // Settled: no open order holds stock, no ended order is watched for a late
      // payment (the reconciler refunds or re-reserves what lands), and no gateway
      // has a payment of this sale still processing (the audit's probe). The
      // audit that decides is the one taken after the first two held.
      const open = await openOrders(urls.checkout);
      let watched = 0;
      for (const sku of skuIds) watched += await store.redis.zcard(store.keys(sku).watch);
      const timeUp = (Date.now() - qStart) / 1000 >= limitS;
      if ((open === 0 && watched === 0) || timeUp) {
        report = await runAudit();
        if (report?.quiescent && open === 0 && watched === 0) {
          settled = true;
          break;
        }
        if (timeUp) break;
      }
      await sleep(1_000);
    }
    const quiescenceS = (Date.now() - qStart) / 1000;
    const series: TimeSeries = await collector.stop();
    series.bands = bands;
    let at = 0;
    series.stages = resolved.traffic.stages.map((s, i) => {
      const st = { label: s.label ?? `stage${i + 1}`, fromS: at, toS: at + s.durationS };
      at += s.durationS;
      return st;
    });

    // ---- final readings
    const stockBody = await http<{
      data: {
        sku?: string;
        id?: string;
        initial: number;
        available: number;
        reserved: number;
        sold: number;
      }[];
    }>(`${urls.checkout}/admin/stock`).catch(() => undefined);
    const stock: RunSummary['stock'] = (stockBody?.body.data ?? []).map((x) => ({
      sku: String(x.sku ?? x.id),
      initial: x.initial,
      available: x.available,
      reserved: x.reserved,
      sold: x.sold,
    }));
    const checkoutProm = await scrape(urls.checkout).catch(() => undefined);
    const mockProms: Partial<Record<(typeof SERVICES)[number], string>> = {};
    if (haveMocks)
      for (const s of SERVICES) mockProms[s] = await scrape(urls[s]).catch(() => undefined);

    const stages = series.stages.map((s) => s.label);
    const metrics = computeMetrics({
      load: load.summary,
      checkoutProm,
      audit: report,
      stock,
      stages,
    });
    metrics['arrivals.scheduled'] = traffic.scheduled;
    metrics['arrivals.unaccounted'] = traffic.unaccounted;
    const budgetResults = [
      ...evaluateBudgets(
        r.budgets.map((b) => b.parsed),
        metrics,
      ),
      trafficBudget(traffic),
    ];
    const invariantsBroken = report ? report.violated.length > 0 : false;
    const verdict: RunSummary['verdict'] =
      budgetResults.every((b) => b.ok) && !invariantsBroken ? 'pass' : 'fail';
    const endedAt = new Date();
    const summary: RunSummary = {
      schemaVersion: SUMMARY_SCHEMA_VERSION,
      runId: r.runId,
      tool: { name: 'flashcrowd', version: toolVersion() },
      engine: load.engine,
      traffic,
      preset: {
        name: r.preset.name,
        file: relative(PROJECT_ROOT, r.presetFile) || r.presetFile,
        description: r.variant?.description ?? r.preset.description,
        ...(r.variant ? { variant: r.variant.name } : {}),
      },
      params: {
        seed: r.seed,
        timeScale: r.timeScale,
        loadScale: r.loadScale,
        target: o.target ? urls.checkout : 'embedded',
      },
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      durations: {
        trafficS,
        quiescenceS,
        totalS: (endedAt.getTime() - startedAt.getTime()) / 1000,
      },
      verdict,
      exitCode: verdict === 'pass' ? 0 : 1,
      checkout: { mode: config.mode, features: config.features, params: config.params },
      metrics,
      budgets: budgetResults,
      invariants: (report?.invariants ?? []).map((i) => ({
        id: i.id,
        name: i.name ?? INVARIANT_NAMES[i.id as InvariantId],
        ok: i.ok,
        count: i.count,
        examples: i.examples,
        ...(i.note ? { note: i.note } : {}),
      })),
      stock,
      failures: failuresOf(checkoutProm),
      chaos: { bands, injected: injectedOf(mockProms) },
      quiescence: {
        settled,
        waitedS: quiescenceS,
        ...(settled ? {} : { note: `not settled within ${limitS} s: leaks counted as found` }),
      },
      warnings,
      files: {},
    };
    summary.files = await writeReports(r.dir, summary, series);
    return summary;
  } finally {
    redisClient?.disconnect();
    await stack?.stop();
  }
}

/** Orders still open (pending payment or paying), from the checkout's stock counters. */
async function openOrders(checkoutUrl: string): Promise<number> {
  const r = await http<{ data: { reserved: number }[] }>(`${checkoutUrl}/admin/stock`).catch(
    () => undefined,
  );
  return (r?.body.data ?? []).reduce((s, x) => s + (x.reserved ?? 0), 0);
}

// ---------------------------------------------------------------- the load

/** The livestream shoppers as the engines run them: the journey, its shape, and k6's script and files. */
function livestreamPlan(
  resolved: ResolvedPreset,
  urls: StackUrls,
  dir: string,
  presetFile: string,
  shoppersFile: string,
  seed: number,
): LoadPlan {
  const summaryFile = join(dir, 'k6-summary.json');
  return {
    journey: {
      name: 'livestream',
      config: {
        preset: resolved,
        target: urls.checkout,
        ...(urls.coupon ? { couponUrl: urls.coupon } : {}),
      },
    },
    shape: resolved.traffic,
    preAllocatedVUs: resolved.traffic.preAllocatedVUs,
    maxVUs: resolved.traffic.maxVUs,
    gracefulStopS: gracefulStopS(resolved),
    k6: {
      script: SCENARIO,
      // The run's files (preset, shoppers, summary) are in dir.
      mounts: [dir],
      summaryFile,
      env: {
        TARGET_URL: urls.checkout,
        ...(urls.coupon ? { COUPON_URL: urls.coupon } : {}),
        PRESET_FILE: presetFile,
        SHOPPERS_FILE: shoppersFile,
        SUMMARY_FILE: summaryFile,
        SEED: seed,
      },
    },
  };
}

/**
 * The schedule against what the engine did. flashcrowd's engine accounts for
 * every arrival (started or dropped); k6 counts completed iterations only, so
 * a few interrupted at the end are allowed for (1%, at least 2).
 */
export function trafficCheck(load: LoadResult): NonNullable<RunSummary['traffic']> {
  const unaccounted = load.scheduled - (load.started ?? 0) - load.dropped;
  const tolerance = load.engine.name === 'k6' ? Math.max(2, Math.ceil(load.scheduled * 0.01)) : 0;
  return {
    scheduled: load.scheduled,
    started: load.started,
    dropped: load.dropped,
    unaccounted,
    tolerance,
  };
}

/** The check every run makes: arrivals that were neither started nor dropped. */
function trafficBudget(t: NonNullable<RunSummary['traffic']>): BudgetResult {
  return {
    expr: `arrivals.unaccounted<=${t.tolerance}`,
    metric: 'arrivals.unaccounted',
    op: '<=',
    threshold: t.tolerance,
    value: t.unaccounted,
    ok: t.unaccounted <= t.tolerance,
    source: 'harness',
    note:
      `${t.started ?? 'unknown'} of ${t.scheduled} scheduled arrivals started, ${t.dropped} dropped` +
      (t.unaccounted > t.tolerance ? ': the load did not run as scheduled' : ''),
  };
}

/** How each run gets its engine; k6 is resolved here, before the stack starts (exit 2 without one). */
async function engineFactory(o: RunOptions): Promise<() => LoadEngine> {
  if (o.engine === 'k6') {
    const k6 = (await resolveK6Engine()).k6;
    return () => new K6Engine(k6);
  }
  return () => new EmbeddedEngine({ workers: o.workers ?? 1 });
}

// ---------------------------------------------------------------- the command

export async function runCommand(o: RunOptions, print: Print = console.log): Promise<number> {
  // Refuse a target outside loopback before anything is read, started or written.
  for (const [flag, v] of [
    ['--target', o.target],
    ['--bank', o.bank],
    ['--wallet', o.wallet],
    ['--coupon', o.coupon],
  ] as const)
    if (v !== undefined) checkUrl(flag, v, o.allowRemoteTarget);
  if (!o.target && (o.bank || o.wallet || o.coupon || o.redis))
    throw new UsageError('--bank, --wallet, --coupon and --redis go with --target');
  const { preset, file } = loadPreset(o.preset);
  const timeScale = o.timeScale ?? (o.ci ? preset.ci.timeScale : 1);
  const loadScale = o.loadScale ?? (o.ci ? preset.ci.loadScale : 1);
  if (!(timeScale > 0 && timeScale <= 1))
    throw new UsageError(`--time-scale must be above 0 and at most 1 (got ${timeScale})`);
  if (!(loadScale > 0 && loadScale <= 100))
    throw new UsageError(`--load-scale must be above 0 and at most 100 (got ${loadScale})`);
  const cliBudgets = o.budgets.map((e) => ({
    expr: e,
    parsed: parseBudget(e, 'cli'),
    source: 'cli' as const,
  }));
  const variants: (Variant | undefined)[] = preset.variants?.length
    ? o.variant
      ? [preset.variants.find((v) => v.name === o.variant) ?? usageNoVariant(preset, o.variant)]
      : preset.variants
    : o.variant
      ? [usageNoVariant(preset, o.variant)]
      : [undefined];
  // Which engine (and for k6, which binary or container) is settled before anything starts.
  const engine = await engineFactory(o);
  print(`engine: ${engine().describe()}`);
  const runId = `${preset.name}-${stamp(new Date())}-s${o.seed}`;
  const base = resolve(o.out ?? join(PROJECT_ROOT, 'reports', runId));
  const results: { variant?: Variant; summary: RunSummary }[] = [];
  for (const variant of variants) {
    const budgetExprs = variant?.budgets ?? preset.budgets;
    const budgets = [
      ...budgetExprs.map((e) => ({
        expr: e,
        parsed: parseBudget(e, variant?.budgets ? 'variant' : 'preset'),
        source: (variant?.budgets ? 'variant' : 'preset') as BudgetResult['source'],
      })),
      ...cliBudgets,
    ];
    const dir = variants.length > 1 && variant ? join(base, variant.name) : base;
    print(
      `\nflashcrowd run ${preset.name}${variant ? ` (variant ${variant.name})` : ''} -> ${relative(process.cwd(), dir) || dir}`,
    );
    const summary = await runOne(
      {
        preset,
        presetFile: file,
        variant,
        dir,
        runId,
        seed: o.seed,
        timeScale,
        loadScale,
        budgets,
        engine,
      },
      o,
      print,
    );
    results.push({ variant, summary });
    printVerdict(summary, relative(process.cwd(), dir) || dir, print);
  }
  if (results.length === 1) return results[0]!.summary.exitCode;
  // Variants run together: each must do what it expects (e.g. naive fails, hardened passes).
  let ok = true;
  print('\nvariants:');
  for (const { variant, summary } of results) {
    const expect = variant?.expect ?? 'pass';
    const met = summary.verdict === expect;
    ok &&= met;
    print(
      `  ${variant?.name ?? '-'}: ${summary.verdict.toUpperCase()} (expected ${expect}) ${met ? 'as expected' : 'NOT AS EXPECTED'}`,
    );
  }
  return ok ? 0 : 1;
}

function usageNoVariant(p: Preset, v: string): never {
  throw new UsageError(
    p.variants?.length
      ? `preset ${p.name} has no variant "${v}" (variants: ${p.variants.map((x) => x.name).join(', ')})`
      : `preset ${p.name} has no variants (--variant does not apply)`,
  );
}

function printVerdict(s: RunSummary, dir: string, print: Print) {
  print(
    `\n${s.verdict === 'pass' ? 'PASS' : 'FAIL'}: ${s.preset.name}${s.preset.variant ? ` / ${s.preset.variant}` : ''}`,
  );
  for (const b of s.budgets)
    print(
      `  ${b.ok ? 'ok  ' : 'FAIL'} ${b.expr.padEnd(40)} ${b.value === null ? 'no samples' : String(Number(b.value.toPrecision(4)))}`,
    );
  const broken = s.invariants.filter((i) => i.ok === false);
  for (const i of broken)
    print(`  FAIL ${i.id} ${i.name}: ${i.count} (e.g. ${i.examples.slice(0, 3).join(', ')})`);
  if (!broken.length && s.invariants.length)
    print(
      `  ok   invariants I1-I11 (${
        s.invariants
          .filter((i) => i.ok === null)
          .map((i) => i.id)
          .join(', ') || 'none'
      } undecided)`,
    );
  for (const w of s.warnings) print(`  warning: ${w}`);
  print(
    `  report: ${join(dir, 'index.html')} (and ${Object.values(s.files)
      .filter((f) => f !== 'index.html')
      .join(', ')})`,
  );
}
