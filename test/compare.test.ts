// `flashcrowd compare`: two run summaries compared value by value. Exact
// classes (the audit, the schedule, injected faults) must be equal; counts,
// rates and latencies within their stated tolerances; runs of different
// presets, seeds or scales are not comparable. The CLI exits 0 reproduced,
// 1 not, 2 when a directory is not a run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classOf, compareSummaries, TOLERANCE } from '../harness/compare.ts';
import type { RunSummary } from '../harness/summary.ts';
import { baseSummary, failingSummary } from './support/report-fixtures.ts';

const copy = (s: RunSummary): RunSummary => structuredClone(s);
/** A checkout whose gateway calls are a function of the seed (the naive build's features). */
const NAIVE = { circuitBreaker: false, retryBudget: false, bulkhead: false, loadShedding: false };
const HARDENED = { circuitBreaker: true, retryBudget: true, bulkhead: true, loadShedding: true };
const naive = (s: RunSummary): RunSummary => ({
  ...s,
  checkout: { ...s.checkout, features: NAIVE },
});

describe('compareSummaries', () => {
  it('a run compared with itself is identical in every value', () => {
    const s = failingSummary();
    const c = compareSummaries(s, copy(s));
    expect(c.ok).toBe(true);
    expect(c.outOfTolerance).toBe(0);
    expect(c.identical).toBe(c.rows.length);
    // Invariant counts and injected faults are compared, not only the flat metrics.
    expect(c.rows.map((r) => r.name)).toEqual(
      expect.arrayContaining(['invariant_count.I3', 'faults.bank.payments.create.http_503']),
    );
  });

  it('one more injected fault (a naive build), or one more broken order in an invariant, is out of tolerance', () => {
    const a = naive(failingSummary());
    const b = copy(a);
    b.chaos.injected[1]!.count += 1;
    b.invariants.find((i) => i.id === 'I3')!.count += 1;
    const c = compareSummaries(a, b);
    expect(c.ok).toBe(false);
    expect(c.rows.filter((r) => !r.ok).map((r) => r.name)).toEqual([
      'faults.bank.payments.create.http_503',
      'invariant_count.I3',
    ]);
  });

  it('a count within the tolerance passes, one beyond it does not; rates are absolute, latencies relative', () => {
    const a = baseSummary();
    a.metrics['orders.created'] = 1000;
    a.metrics['pay.failure_rate'] = 0.1;
    a.metrics['checkout.p99_ms'] = 100;
    const near = copy(a);
    near.metrics['orders.created'] = 1000 * (1 + TOLERANCE.countRel) - 1;
    near.metrics['pay.failure_rate'] = 0.1 + TOLERANCE.rateAbs / 2;
    near.metrics['checkout.p99_ms'] = 300; // 3x, within 4x
    expect(compareSummaries(a, near).ok).toBe(true);
    // Small counts: two Poisson standard deviations (2 x sqrt(27) = 10.4).
    const small = copy(a);
    a.metrics['orders.sold_out'] = 27;
    small.metrics['orders.sold_out'] = 23;
    expect(compareSummaries(a, small).rows.find((r) => r.name === 'orders.sold_out')!.ok).toBe(
      true,
    );
    small.metrics['orders.sold_out'] = 12;
    expect(compareSummaries(a, small).rows.find((r) => r.name === 'orders.sold_out')!.ok).toBe(
      false,
    );
    const far = copy(a);
    far.metrics['orders.created'] = 1000 * (1 + 2 * TOLERANCE.countRel);
    far.metrics['pay.failure_rate'] = 0.1 + 2 * TOLERANCE.rateAbs;
    far.metrics['checkout.p99_ms'] = 1000; // 10x and 900 ms apart
    far.metrics['orders.sold_out'] = 27;
    const c = compareSummaries(a, far);
    expect(
      c.rows
        .filter((r) => !r.ok)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['checkout.p99_ms', 'orders.created', 'pay.failure_rate']);
  });

  it('a failure rate whose attempts are counted is within 3 binomial standard errors: wide for a one-second stage, narrow for a big one', () => {
    const a = baseSummary();
    const b = copy(a);
    const row = (x: RunSummary, y: RunSummary) =>
      compareSummaries(x, y).rows.find((r) => r.name === 'pay.failure_rate{stage=open}')!;
    // 4 of 45 against 6 of 46 pay clicks (the brownout's open stage): 3 SE = 0.20.
    a.metrics['pay.attempted{stage=open}'] = 45;
    a.metrics['pay.failure_rate{stage=open}'] = 4 / 45;
    b.metrics['pay.attempted{stage=open}'] = 46;
    b.metrics['pay.failure_rate{stage=open}'] = 6 / 46;
    expect(row(a, b)).toMatchObject({ ok: true, class: 'rate' });
    expect(row(a, b).diff).toMatch(/\(tolerance 0\.2\)$/);
    // 30% against 42% of 400 each: 3 SE = 0.10, out.
    a.metrics['pay.attempted{stage=open}'] = 400;
    a.metrics['pay.failure_rate{stage=open}'] = 0.3;
    b.metrics['pay.attempted{stage=open}'] = 400;
    b.metrics['pay.failure_rate{stage=open}'] = 0.42;
    expect(row(a, b).ok).toBe(false);
    // Without the attempts the tolerance stays 0.02.
    delete a.metrics['pay.attempted{stage=open}'];
    b.metrics['pay.failure_rate{stage=open}'] = 0.3 + TOLERANCE.rateAbs * 1.5;
    expect(row(a, b).ok).toBe(false);
  });

  it("a hardened build's faults are counts: its breaker and retry budget decide on the run's timing whether a call is made", () => {
    const a = failingSummary();
    a.checkout.features = HARDENED;
    const near = copy(a);
    near.chaos.injected[1]!.count += 2; // 1022 -> 1024
    expect(compareSummaries(a, near).ok).toBe(true);
    const far = copy(a);
    far.chaos.injected[1]!.count = 900;
    const c = compareSummaries(a, far);
    expect(c.rows.filter((r) => !r.ok).map((r) => [r.name, r.class])).toEqual([
      ['faults.bank.payments.create.http_503', 'count'],
    ]);
  });

  it('which path paid an order is a race (within 50% or 20); the orders paid in all are a count', () => {
    const a = naive(baseSummary());
    a.events = {
      orders: [
        { event: 'paid', count: 500 },
        { event: 'paid_by_reconciler', count: 60 },
      ],
      declines: [],
    };
    const b = copy(a);
    b.events!.orders = [
      { event: 'paid', count: 507 },
      { event: 'paid_by_reconciler', count: 53 },
    ];
    const c = compareSummaries(a, b);
    expect(c.ok).toBe(true);
    expect(c.rows.find((r) => r.name === 'order_events.paid_by_reconciler')!.class).toBe('race');
    expect(c.rows.find((r) => r.name === 'order_events.paid_total')).toMatchObject({
      a: 560,
      b: 560,
      diff: '',
    });
  });

  it('a value only one run has is out of tolerance, except a fault kind or an order event (0 in the other)', () => {
    const a = naive(baseSummary());
    const b = copy(a);
    delete b.metrics['pay.failure_rate'];
    b.chaos.injected.push({
      service: 'bank',
      operation: 'payments.create',
      kind: 'latency',
      count: 3,
    });
    const c = compareSummaries(a, b);
    const bad = c.rows.filter((r) => !r.ok).map((r) => [r.name, r.diff]);
    expect(bad).toEqual([
      ['faults.bank.payments.create.latency', '+3'],
      ['pay.failure_rate', 'no value in one run'],
    ]);
  });

  it('runs of another seed or scale are not the same run', () => {
    const a = baseSummary();
    const b = copy(a);
    b.params.seed += 1;
    const c = compareSummaries(a, b);
    expect(c.ok).toBe(false);
    expect(c.mismatch[0]).toMatch(/^seed: /);
  });

  it('classes: the audit and faults exact, latencies, rates and counts by name', () => {
    expect(classOf('leaks.stock')).toBe('exact');
    expect(classOf('invariants.broken')).toBe('exact');
    expect(classOf('arrivals.scheduled')).toBe('exact');
    expect(classOf('order.p99_ms{stage=peak}')).toBe('latency');
    expect(classOf('pay.failure_rate{stage=peak}')).toBe('rate');
    // The stage a click falls in is a race (its latency decides the side of the edge); the total a count.
    expect(classOf('pay.attempted{stage=rush}')).toBe('race');
    expect(classOf('orders.attempted{stage=peak}')).toBe('race');
    expect(classOf('pay.attempted')).toBe('count');
    expect(classOf('stock.sold_ratio')).toBe('rate');
    expect(classOf('orders.created')).toBe('count');
    expect(classOf('faults.bank.payments.create.http')).toBe('exact');
    expect(classOf('faults.bank.payments.create.http', true)).toBe('count');
    expect(classOf('order_events.paid_by_notify')).toBe('race');
    expect(classOf('order_events.expired')).toBe('count');
    expect(classOf('dep.calls{dependency=wallet}')).toBe('count');
    expect(classOf('dep.calls{dependency=wallet}', true)).toBe('race');
  });
});

describe('flashcrowd compare', () => {
  const bin = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
  const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  const dirWith = (s: RunSummary) => {
    const d = mkdtempSync(join(tmpdir(), 'flashcrowd-compare-'));
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'summary.json'), JSON.stringify(s));
    return d;
  };

  it('exits 0 for the same run, 1 naming what differs, 2 for a directory that is not a run', () => {
    const s = naive(failingSummary());
    const a = dirWith(s);
    expect(cli(['compare', a, dirWith(copy(s))]).status).toBe(0);
    const b = copy(s);
    b.metrics.double_charges = (b.metrics.double_charges ?? 0) + 1;
    const r = cli(['compare', a, dirWith(b)]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/NOT REPRODUCED/);
    expect(r.stdout).toMatch(/double_charges\s+exact\s+.*OUT OF TOLERANCE/);
    const bad = cli(['compare', a, tmpdir()]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/summary\.json/);
  });
});
