// Budget expressions: parsing (operators, labels, whitespace, % and time
// suffixes), the usage errors for each kind of bad input (message and
// pointer checked), the suggestions for unknown metric names, and evaluation
// (a metric without a value never passes; equality within a tolerance).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  closestMetrics,
  compare,
  editDistance,
  evaluateBudgets,
  KNOWN_METRICS,
  parseBudget,
  parseBudgets,
  type ParsedBudget,
} from '../harness/budgets.ts';
import { UsageError } from '../harness/errors.ts';
import { budgetResultSchema } from '../harness/summary.ts';

/** The UsageError a bad expression throws (the test fails if it parses). */
function errorOf(expr: string, opts: { stages?: string[] } = {}): UsageError {
  try {
    parseBudget(expr, 'cli', opts);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).exitCode).toBe(2);
    return e as UsageError;
  }
  throw new Error(`\`${expr}\` parsed, but an error was expected`);
}

/** The column the error's caret line points at, and how many carets. */
function caret(e: UsageError): { at: number; width: number } {
  const lines = e.message.split('\n');
  const expr = lines.at(-2)!;
  const marks = lines.at(-1)!;
  expect(marks.startsWith('    ')).toBe(true);
  expect(expr.startsWith('    ')).toBe(true);
  const at = marks.indexOf('^') - 4;
  return { at, width: marks.trim().length };
}

describe('parsing', () => {
  it('reads the examples of the issue into name, labels, canonical key, operator and threshold', () => {
    expect(parseBudget('pay.failure_rate<0.02', 'preset')).toEqual({
      expr: 'pay.failure_rate<0.02',
      name: 'pay.failure_rate',
      labels: {},
      metric: 'pay.failure_rate',
      op: '<',
      threshold: 0.02,
      source: 'preset',
    });
    expect(parseBudget('leaks.stock==0', 'cli')).toMatchObject({
      metric: 'leaks.stock',
      op: '==',
      threshold: 0,
    });
    expect(parseBudget('checkout.p99_ms<800', 'cli')).toMatchObject({ op: '<', threshold: 800 });
    expect(parseBudget('dropped_iterations==0', 'variant')).toMatchObject({
      metric: 'dropped_iterations',
      source: 'variant',
    });
    expect(parseBudget('pay.failure_rate{stage=spike}<0.05', 'cli')).toMatchObject({
      name: 'pay.failure_rate',
      labels: { stage: 'spike' },
      metric: 'pay.failure_rate{stage=spike}',
      threshold: 0.05,
    });
    expect(parseBudget('dep.error_rate{dependency=bank}<=0.1', 'cli')).toMatchObject({
      metric: 'dep.error_rate{dependency=bank}',
      op: '<=',
      threshold: 0.1,
    });
    expect(parseBudget('invariants.I11==1', 'cli').metric).toBe('invariants.I11');
  });

  it('reads every operator', () => {
    for (const op of ['<', '<=', '>', '>=', '==', '!='] as const)
      expect(parseBudget(`arrivals${op}5`, 'cli')).toMatchObject({ op, threshold: 5 });
  });

  it('reads integers, decimals, exponents, signs, % as /100, ms and s on latencies', () => {
    const th = (e: string) => parseBudget(e, 'cli').threshold;
    expect(th('arrivals>=1000')).toBe(1000);
    expect(th('stock.sold_ratio>.5')).toBe(0.5);
    expect(th('stock.sold_ratio>1.')).toBe(1);
    expect(th('pay.failure_rate<2e-2')).toBe(0.02);
    expect(th('arrivals>1E3')).toBe(1000);
    expect(th('retries.amplification<+1.5')).toBe(1.5);
    expect(th('pay.failure_rate<2%')).toBeCloseTo(0.02, 15);
    expect(th('pay.failure_rate<0.5%')).toBeCloseTo(0.005, 15);
    expect(th('checkout.p99_ms<800ms')).toBe(800);
    expect(th('checkout.p99_ms<0.8s')).toBe(800);
    expect(th('pay.p99_ms{stage=spike}<1.5 s')).toBe(1500);
  });

  it('allows whitespace around every token and keeps the trimmed text as written', () => {
    const b = parseBudget('  dep.error_rate { dependency = wallet } <= 10 %  ', 'cli');
    expect(b).toMatchObject({
      expr: 'dep.error_rate { dependency = wallet } <= 10 %',
      metric: 'dep.error_rate{dependency=wallet}',
      op: '<=',
    });
    expect(b.threshold).toBeCloseTo(0.1, 15);
    expect(parseBudget('leaks.stock == 0', 'cli').op).toBe('==');
  });

  it('gives a quoted label value the same canonical key as a bare one', () => {
    expect(parseBudget('order.p99_ms{stage="top-of-hour"}<900', 'cli').metric).toBe(
      'order.p99_ms{stage=top-of-hour}',
    );
    expect(parseBudget('order.p99_ms{stage=top-of-hour}<900', 'cli').metric).toBe(
      'order.p99_ms{stage=top-of-hour}',
    );
    expect(parseBudget('dep.calls{dependency=coupon}>0', 'cli').metric).toBe(
      'dep.calls{dependency=coupon}',
    );
  });

  it('checks stage labels against the preset when its stages are given', () => {
    expect(
      parseBudget('pay.attempted{stage=decay}>0', 'preset', { stages: ['spike', 'decay'] }).labels,
    ).toEqual({
      stage: 'decay',
    });
    const e = errorOf('pay.attempted{stage=peak}>0', { stages: ['spike', 'decay'] });
    expect(e.message).toContain("unknown stage `peak`; this preset's stages are spike, decay");
    expect(caret(e)).toEqual({ at: 20, width: 4 });
  });

  it('exports every metric of the issue, with the labels each accepts', () => {
    const byName = new Map(KNOWN_METRICS.map((k) => [k.name, k.labels]));
    const S = [
      'orders.attempted',
      'orders.failure_rate',
      'pay.attempted',
      'pay.failure_rate',
      'order.p99_ms',
      'pay.p99_ms',
    ];
    for (const n of S) expect(byName.get(n), n).toEqual(['stage']);
    const D = ['dep.calls', 'dep.error_rate', 'dep.timeouts', 'dep.refused'];
    for (const n of D) expect(byName.get(n), n).toEqual(['dependency']);
    const plain = [
      'orders.created',
      'pay.paid',
      'arrivals',
      'dropped_iterations',
      'orders.sold_out',
      'orders.false_sold_out',
      'orders.expired',
      'pay.failover',
      'risk.declines',
      'checkout.unexplained',
      'failures.reasons',
      'capacity.arrivals_per_s',
      'retries.end_to_end',
      'checkout.p50_ms',
      'checkout.p95_ms',
      'checkout.p99_ms',
      'checkout.error_rate',
      'checkout.shed',
      'retries.amplification',
      'leaks.stock',
      'leaks.stock_units',
      'leaks.coupon',
      'leaks.stream_pending',
      'checkout.instances',
      'double_charges',
      'captures_without_paid_order',
      'paid_without_capture',
      'late_payments',
      'stuck_processing',
      'oversold',
      'invariants.broken',
      'invariants.undecided',
      'stock.sold',
      'stock.sold_ratio',
      'arrivals.scheduled',
      'arrivals.unaccounted',
      'quiescence.unsettled',
      'faults.failed',
    ];
    for (let i = 1; i <= 11; i++) plain.push(`invariants.I${i}`);
    for (const n of plain) expect(byName.get(n), n).toEqual([]);
    expect(byName.get('checkout.requests')).toEqual(['instance']);
    expect(byName.size).toBe(S.length + D.length + 1 + plain.length);
  });
});

describe('bad expressions', () => {
  it('an empty one says what is expected', () => {
    expect(errorOf('   ').message).toContain('empty budget; expected METRIC OP NUMBER');
  });

  it('an unknown metric lists the closest known names and points at the name', () => {
    const e = errorOf('pay.failure_rat<0.02');
    expect(e.message).toContain(
      'budget `pay.failure_rat<0.02` (in --budget): unknown metric `pay.failure_rat`; did you mean pay.failure_rate',
    );
    expect(caret(e)).toEqual({ at: 0, width: 15 });
    expect(errorOf('leak.stock==0').message).toMatch(/did you mean leaks\.stock\b/);
    expect(errorOf('Checkout.P99_ms<1').message).toContain('did you mean checkout.p99_ms');
    expect(errorOf('invariants.i3==1').message).toContain('did you mean invariants.I3');
    expect(errorOf('p99_ms<800').message).toContain(
      'did you mean checkout.p99_ms, order.p99_ms, pay.p99_ms?',
    );
    expect(errorOf('throughput>5').message).toContain('docs/BUDGETS.md lists the metrics');
  });

  it('a missing or bad operator says which operators exist', () => {
    let e = errorOf('leaks.stock 0');
    expect(e.message).toContain('expected an operator (<= >= == != < >), found `0`');
    expect(caret(e)).toEqual({ at: 12, width: 1 });
    e = errorOf('leaks.stock=0');
    expect(e.message).toContain('`=` is not an operator; use `==` for equality');
    expect(caret(e).at).toBe(11);
    expect(errorOf('leaks.stock=<1').message).toContain('found `=<`');
    expect(errorOf('leaks.stock<>1').message).toContain('expected a number after `<`, found `>`');
    expect(errorOf('leaks.stock').message).toContain('found the end');
  });

  it('a missing or malformed number is pointed at', () => {
    let e = errorOf('pay.failure_rate<');
    expect(e.message).toContain('expected a number after `<`, found the end');
    e = errorOf('pay.failure_rate<abc');
    expect(e.message).toContain('expected a number after `<`, found `a`');
    expect(caret(e)).toEqual({ at: 17, width: 1 });
    e = errorOf('pay.failure_rate<0.0.2');
    expect(e.message).toContain('unexpected `.2` after the threshold `0.0`');
    expect(caret(e)).toEqual({ at: 20, width: 2 });
    expect(errorOf('arrivals<1e999').message).toContain(
      'the threshold `1e999` is not a finite number',
    );
    expect(errorOf('arrivals<5 and more').message).toContain('unexpected `and more`');
  });

  it('a suffix that does not fit the metric is refused', () => {
    let e = errorOf('leaks.stock<2%');
    expect(e.message).toContain('`%` applies to ratios (*_rate, *_ratio); leaks.stock is a count');
    expect(caret(e)).toEqual({ at: 13, width: 1 });
    e = errorOf('pay.failure_rate<5ms');
    expect(e.message).toContain('`ms` applies to latencies (*_ms); pay.failure_rate is a ratio');
    expect(caret(e)).toEqual({ at: 18, width: 2 });
    expect(errorOf('arrivals<5x').message).toContain('unexpected `x`');
  });

  it('labels: unknown, not accepted, repeated, badly formed or unclosed', () => {
    let e = errorOf('leaks.stock{stage=spike}==0');
    expect(e.message).toContain('leaks.stock takes no labels');
    expect(caret(e)).toEqual({ at: 12, width: 5 });
    e = errorOf('pay.failure_rate{dependency=bank}<0.1');
    expect(e.message).toContain('pay.failure_rate takes no label `dependency`; it takes stage');
    e = errorOf('dep.error_rate{dependency=paypal}<0.1');
    expect(e.message).toContain('unknown dependency `paypal`; expected bank, wallet, coupon');
    expect(caret(e)).toEqual({ at: 26, width: 6 });
    expect(errorOf('pay.attempted{stage=a,stage=b}>0').message).toContain(
      'label `stage` given twice',
    );
    expect(errorOf('pay.attempted{stage spike}>0').message).toContain(
      'expected `=` after the label name `stage`, found `s`',
    );
    expect(errorOf('pay.attempted{stage=}>0').message).toContain(
      'expected a value for label `stage`',
    );
    expect(errorOf('pay.attempted{stage=Spike}>0').message).toContain('is not a stage label');
    expect(errorOf('pay.attempted{}>0').message).toContain('empty labels `{}`');
    e = errorOf('pay.attempted{stage=spike>0');
    expect(e.message).toContain('expected `,` or `}` after the label, found `>`');
    e = errorOf('pay.attempted{stage=spike');
    expect(e.message).toContain('missing `}` to close the labels');
    expect(caret(e).at).toBe(13);
    expect(errorOf('pay.attempted{=x}>0').message).toContain('expected a label name, found `=`');
  });

  it('names where the budget came from, and parseBudgets reports every bad one at once', () => {
    expect(() => parseBudget('nope<1', 'preset')).toThrow("(in the preset's budgets)");
    expect(() => parseBudget('nope<1', 'variant')).toThrow("(in the variant's budgets)");
    try {
      parseBudgets(['leaks.stock==0', 'nope<1', 'arrivals>'], 'cli');
      expect.unreachable('parseBudgets accepted bad budgets');
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      const msg = (e as Error).message;
      expect(msg).toContain('budget `nope<1`');
      expect(msg).toContain('budget `arrivals>`');
      expect(msg).not.toContain('leaks.stock==0');
    }
    expect(parseBudgets(['leaks.stock==0', 'arrivals>1'], 'cli').map((b) => b.metric)).toEqual([
      'leaks.stock',
      'arrivals',
    ]);
  });
});

describe('documentation', () => {
  it('docs/BUDGETS.md names every known metric', () => {
    const doc = readFileSync(new URL('../docs/BUDGETS.md', import.meta.url), 'utf8');
    const missing = KNOWN_METRICS.map((k) => k.name).filter(
      (n) => !/^invariants\.I\d+$/.test(n) && !doc.includes(`| \`${n}\` |`),
    );
    expect(missing).toEqual([]);
    expect(doc).toContain('| `invariants.I1` … `invariants.I11` |');
  });
});

describe('suggestions', () => {
  it('edit distance counts insertions, deletions and substitutions', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });

  it('closest names come nearest first and are known metrics', () => {
    const c = closestMetrics('pay.failur_rate');
    expect(c[0]).toBe('pay.failure_rate');
    expect(c).toContain('pay.failure_rate');
    const names = new Set(KNOWN_METRICS.map((k) => k.name));
    for (const n of closestMetrics('orders.create')) expect(names.has(n)).toBe(true);
    expect(closestMetrics('orders.create')[0]).toBe('orders.created');
  });
});

describe('evaluation', () => {
  const b = (expr: string): ParsedBudget => parseBudget(expr, 'cli');

  it('passes and fails by the operator, keeping the budget fields', () => {
    const r = evaluateBudgets(
      [
        b('pay.failure_rate<0.02'),
        b('pay.failure_rate<0.01'),
        b('leaks.stock==0'),
        b('arrivals>=100'),
        b('arrivals!=100'),
        b('dropped_iterations>0'),
      ],
      { 'pay.failure_rate': 0.015, 'leaks.stock': 0, arrivals: 100, dropped_iterations: 0 },
    );
    expect(r.map((x) => x.ok)).toEqual([true, false, true, true, false, false]);
    expect(r[0]).toEqual({
      expr: 'pay.failure_rate<0.02',
      metric: 'pay.failure_rate',
      op: '<',
      threshold: 0.02,
      value: 0.015,
      ok: true,
      source: 'cli',
    });
    for (const x of r) expect(budgetResultSchema.parse(x)).toEqual(x);
  });

  it('reads labelled metrics by their canonical key', () => {
    const [spike, decay] = evaluateBudgets(
      [b('pay.failure_rate{stage=spike}<5%'), b('pay.failure_rate{ stage = decay }<5%')],
      {
        'pay.failure_rate{stage=spike}': 0.07,
        'pay.failure_rate{stage=decay}': 0.01,
        'pay.failure_rate': 0.03,
      },
    );
    expect(spike).toMatchObject({ value: 0.07, ok: false });
    expect(decay).toMatchObject({ value: 0.01, ok: true });
  });

  it('a metric that is absent or null fails with "no samples", whatever the operator', () => {
    const budgets = [
      b('leaks.stock==0'),
      b('checkout.p99_ms<800'),
      b('arrivals!=0'),
      b('arrivals>=0'),
    ];
    for (const metrics of [{}, { 'leaks.stock': null, 'checkout.p99_ms': null, arrivals: null }]) {
      const r = evaluateBudgets(budgets, metrics);
      for (const x of r) {
        expect(x).toMatchObject({ ok: false, value: null, note: 'no samples' });
        expect(budgetResultSchema.parse(x)).toEqual(x);
      }
    }
    // A key that only exists on Object.prototype is not a value.
    expect(evaluateBudgets([b('arrivals>0')], Object.create({ arrivals: 5 }))[0]!.ok).toBe(false);
  });

  it('NaN and infinities fail with a note and a null value (summary.json stays valid)', () => {
    const [nan, nan2, neg] = evaluateBudgets(
      [b('retries.amplification<2'), b('retries.amplification>1'), b('arrivals<5')],
      { 'retries.amplification': Number.NaN, arrivals: -Infinity },
    );
    expect(nan).toMatchObject({ ok: false, value: null, note: 'not a number (NaN)' });
    expect(budgetResultSchema.parse(nan)).toEqual(nan);
    expect(nan2).toMatchObject({ ok: false, value: null, note: 'not a number (NaN)' });
    expect(neg).toMatchObject({ ok: false, value: null, note: 'not finite (-Infinity)' });
    const [pos] = evaluateBudgets([b('retries.amplification>1')], {
      'retries.amplification': Infinity,
    });
    expect(pos).toMatchObject({ ok: false, note: 'not finite (Infinity)' });
  });

  it('compares floats for equality within a small relative tolerance', () => {
    const sum = 0.1 + 0.2; // 0.30000000000000004
    expect(sum === 0.3).toBe(false);
    const [eq, le, lt, ne, ge, gt] = evaluateBudgets(
      [
        b('stock.sold_ratio==0.3'),
        b('stock.sold_ratio<=0.3'),
        b('stock.sold_ratio<0.3'),
        b('stock.sold_ratio!=0.3'),
        b('stock.sold_ratio>=0.3'),
        b('stock.sold_ratio>0.3'),
      ],
      { 'stock.sold_ratio': sum },
    );
    expect([eq, le, lt, ne, ge, gt].map((x) => x!.ok)).toEqual([
      true,
      true,
      false,
      false,
      true,
      false,
    ]);
    // Tolerance is relative: 1e-6 apart is a difference at 0.3 and at 1e9 it is not.
    expect(compare(0.300001, '==', 0.3)).toBe(false);
    expect(compare(1e9 + 0.5, '==', 1e9)).toBe(true);
    expect(compare(1e9 + 10, '==', 1e9)).toBe(false);
    // Noise around zero (0.3 - 0.1 - 0.2) equals 0; a real small value does not.
    expect(compare(0.3 - 0.1 - 0.2, '==', 0)).toBe(true);
    expect(compare(1e-9, '==', 0)).toBe(false);
    expect(compare(1e-9, '>', 0)).toBe(true);
  });
});

describe('relative budgets (run --baseline)', () => {
  const b = (expr: string): ParsedBudget => parseBudget(expr, 'cli');

  it('parse a factor or an offset of the baseline run, with units on offsets', () => {
    expect(b('pay.failure_rate<=baseline*1.1').relative).toEqual({ factor: 1.1, offset: 0 });
    expect(b('checkout.p99_ms < baseline + 100ms').relative).toEqual({ factor: 1, offset: 100 });
    expect(b('checkout.p99_ms<baseline+0.1s').relative).toEqual({ factor: 1, offset: 100 });
    expect(b('pay.failure_rate<=baseline+1%').relative).toEqual({ factor: 1, offset: 0.01 });
    expect(b('leaks.stock<=baseline-2').relative).toEqual({ factor: 1, offset: -2 });
    expect(b('leaks.stock<=baseline').relative).toEqual({ factor: 1, offset: 0 });
    expect(b('leaks.stock<=2').relative).toBeUndefined();
  });

  it('refuse what is not a factor or an offset, pointing at it', () => {
    expect(errorOf('pay.failure_rate<=baseline*').message).toContain(
      'expected a number after `baseline*`, found the end',
    );
    expect(errorOf('pay.failure_rate<=baseline%').message).toContain(
      'expected `*`, `+` or `-` and a number after `baseline`',
    );
    expect(errorOf('pay.failure_rate<=baseline*1.1%').message).toContain('a factor takes no unit');
    const e = errorOf('leaks.stock<=baseline+5ms');
    expect(e.message).toContain('`ms` does not apply to leaks.stock, a count');
    expect(caret(e)).toEqual({ at: 23, width: 2 });
    expect(errorOf('pay.failure_rate<=baselines').message).toContain(
      'expected a number after `<=`',
    );
  });

  it("judge against the baseline run's value, saying which it was", () => {
    const [slower, faster] = evaluateBudgets(
      [b('pay.failure_rate<=baseline*1.1'), b('checkout.p99_ms<baseline+100ms')],
      { 'pay.failure_rate': 0.12, 'checkout.p99_ms': 500 },
      { 'pay.failure_rate': 0.1, 'checkout.p99_ms': 450 },
    );
    expect(slower).toMatchObject({ ok: false, value: 0.12, threshold: 0.11 });
    expect(slower!.note).toBe('baseline 0.1 x 1.1');
    expect(faster).toMatchObject({ ok: true, value: 500, threshold: 550 });
    const [within] = evaluateBudgets(
      [b('pay.failure_rate<=baseline*1.1')],
      {
        'pay.failure_rate': 0.105,
      },
      { 'pay.failure_rate': 0.1 },
    );
    expect(within!.ok).toBe(true);
  });

  it('never pass without a baseline value: no --baseline, or no samples in it', () => {
    const rel = [b('pay.failure_rate<=baseline*1.1')];
    const m = { 'pay.failure_rate': 0 };
    expect(evaluateBudgets(rel, m)[0]).toMatchObject({
      ok: false,
      note: 'a relative budget needs a baseline run (--baseline DIR)',
    });
    expect(evaluateBudgets(rel, m, { 'pay.failure_rate': null })[0]).toMatchObject({
      ok: false,
      note: 'the baseline run has no samples of pay.failure_rate',
    });
    for (const r of evaluateBudgets(rel, m)) expect(budgetResultSchema.parse(r)).toEqual(r);
  });
});
