// I10 as `flashcrowd run` decides it: the answers to identical order requests
// under one Idempotency-Key compared with each other (scenarios/lib/replays.ts),
// the decision from the shoppers' replays and the end-of-run probe
// (harness/audit/idempotency.ts, harness/run/probe.ts). The real checkout
// passes the probe; a checkout whose replays name another order (a proxy in
// front of the real one rewrites every replayed answer) fails it with the key
// and the order id, and a whole `flashcrowd run` against it fails I10 and
// `invariants.broken==0` from the shoppers' own double-submitted orders.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideIdempotency } from '../harness/audit/idempotency.ts';
import { probeIdempotency } from '../harness/run/probe.ts';
import { startStack, type Stack } from '../harness/stack.ts';
import type { RunSummary } from '../harness/summary.ts';
import type { JourneyAnswer } from '../scenarios/lib/journey.ts';
import { compareReplays } from '../scenarios/lib/replays.ts';
import { seedSale } from './support/checkout.ts';
import { HALF_CI, HALF_CI_TIME_SCALE, runCli } from './support/cli.ts';
import { startProxy, type Proxy } from './support/proxy.ts';

const answer = (status: number, body: object = {}): JourneyAnswer => ({
  status,
  body: JSON.stringify(body),
  durationMs: 1,
});
const order = (status: number, id: string, state = 'pending_payment') =>
  answer(status, { id, state });
const inFlight = () => answer(409, { reason: 'idempotency_key_in_use' });

describe('compareReplays: identical requests under one key', () => {
  it('the same order in the same state, and 409 in flight, agree whatever order they came back in', () => {
    for (const answers of [
      [order(201, 'o1'), order(200, 'o1'), inFlight()],
      [inFlight(), order(200, 'o1'), order(201, 'o1')],
    ]) {
      const c = compareReplays(answers);
      expect(c).toMatchObject({ replays: 2, mismatches: 0, problems: [], orderId: 'o1' });
      expect(answers[c.shown]!.status).toBeLessThan(300);
    }
  });

  it('a 2xx naming another order, or the same order in another state, is a mismatch naming both', () => {
    const c = compareReplays([order(201, 'o1'), order(200, 'o2'), order(200, 'o1', 'paid')]);
    expect(c.mismatches).toBe(2);
    expect(c.problems[0]).toMatch(
      /answer 1: 200 order o2 pending_payment, not 201 order o1 pending_payment/,
    );
    expect(c.problems[1]).toMatch(/answer 2: 200 order o1 paid, not 201 order o1 pending_payment/);
  });

  it('while the key holds an order any other answer mismatches; a 422 to an identical request always does', () => {
    expect(compareReplays([order(201, 'o1'), answer(409, { reason: 'sold_out' })]).mismatches).toBe(
      1,
    );
    const c = compareReplays([answer(409, { reason: 'sold_out' }), answer(422, { reason: 'x' })]);
    expect(c).toMatchObject({ replays: 1, mismatches: 1 });
    expect(c.problems[0]).toMatch(/422 x to an identical request/);
  });

  it('a refused key keeps its refusal: the same refusal twice holds, another refusal or a later order mismatches', () => {
    const same = compareReplays([
      answer(409, { reason: 'sold_out' }),
      answer(409, { reason: 'sold_out' }),
      answer(409, { reason: 'idempotency_key_in_use' }),
    ]);
    expect(same).toMatchObject({ replays: 2, mismatches: 0, shown: 0 });
    const other = compareReplays([
      answer(409, { reason: 'sold_out' }),
      answer(409, { reason: 'purchase_limit_exceeded' }),
    ]);
    expect(other).toMatchObject({ replays: 1, mismatches: 1 });
    expect(other.problems[0]).toMatch(/answer 1: 409 purchase_limit_exceeded, not 409 sold_out/);
    const refusedThenMade = compareReplays([answer(402, { reason: 'coupon_x' }), order(201, 'o1')]);
    expect(refusedThenMade.mismatches).toBe(1);
  });

  it('answers that never settled the key (0, 429, 5xx) are not compared', () => {
    const lost = compareReplays([order(201, 'o1'), answer(0), answer(429), answer(503)]);
    expect(lost).toMatchObject({ replays: 0, mismatches: 0, shown: 0 });
  });
});

describe('decideIdempotency: I10 from the engine and the probe', () => {
  const probeOk = { checked: ['create', 'replay'], failures: [] };
  it('holds when a source ran and nothing mismatched', () => {
    const r = decideIdempotency({ engine: { replays: 40, mismatches: 0 }, probe: probeOk });
    expect(r).toMatchObject({ id: 'I10', ok: true, count: 0 });
    expect(r.note).toMatch(/40 answers compared, 0 mismatched; probe: create; replay; 0 failed/);
  });

  it("breaks on the engine's mismatches and on every probe failure, counting both, with the key and order id", () => {
    const r = decideIdempotency({
      engine: { replays: 40, mismatches: 3 },
      probe: {
        checked: ['replay'],
        failures: [{ check: 'replay', key: 'k1', orderId: 'o9', detail: 'answered 200 order o8' }],
      },
    });
    expect(r).toMatchObject({ ok: false, count: 4 });
    expect(r.examples[0]).toBe('replay: key k1 order o9: answered 200 order o8');
    expect(r.examples[1]).toMatch(/^3 of 40 double-submitted order answers mismatched/);
  });

  it('is undecided only when neither source could run, and says why', () => {
    const r = decideIdempotency({ probeSkipped: 'the run was interrupted' });
    expect(r).toMatchObject({ ok: null, count: 0 });
    expect(r.note).toMatch(/none compared.*probe: not run \(the run was interrupted\)/);
    expect(decideIdempotency({ probe: { ...probeOk, error: 'no SKU' } }).ok).toBeNull();
  });
});

/** A proxy in front of the real checkout that rewrites the order id of every replayed answer. */
const tamperingProxy = (upstream: string) =>
  startProxy(upstream, {
    rewrite: (a) => {
      if (a.headers.get('idempotent-replayed') !== 'true') return a.body;
      const b = JSON.parse(a.body) as { id?: string };
      return b.id ? JSON.stringify({ ...b, id: `${b.id}-replayed` }) : a.body;
    },
  });

describe('the probe and the run against a real checkout', () => {
  let stack: Stack;
  let proxy: Proxy;
  const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-i10-'));

  beforeAll(async () => {
    // The run's time-scale (half of livestream-spike's --ci one), so the checkout's deadlines match the run's.
    stack = await startStack({
      seed: 5,
      mode: 'hardened',
      set: [`timeScale=${HALF_CI_TIME_SCALE}`],
      logDir: tmp,
    });
    proxy = await tamperingProxy(stack.urls.checkout);
  }, 120_000);
  afterAll(async () => {
    proxy?.close();
    await stack?.stop();
  });

  it('the probe passes against the real checkout and fails against the tampering proxy, naming the key and the order', async () => {
    await seedSale(stack.urls.checkout, [{ id: 'probe-sku', stock: 10 }]);
    const real = await probeIdempotency(stack.urls.checkout, 'real');
    expect(real.error).toBeUndefined();
    expect(real.failures, real.checked.join('\n')).toEqual([]);
    expect(real.checked.join('\n')).toMatch(/replay: 200 order/);
    const bad = await probeIdempotency(proxy.url, 'tampered');
    expect(bad.error).toBeUndefined();
    const replay = bad.failures.find((f) => f.check === 'replay')!;
    expect(replay.key).toBe('fc-probe-tampered-replay');
    expect(replay.detail).toMatch(new RegExp(`200 order ${replay.orderId}-replayed`));
  });

  it('a `flashcrowd run` against a checkout whose replays name another order fails I10 and invariants.broken==0 from its shoppers’ double-submitted orders', async () => {
    const out = join(tmp, 'run');
    const args = [
      ...[
        'run',
        'livestream-spike',
        '--variant',
        'hardened',
        ...HALF_CI,
        '--seed',
        '3',
        '--progress',
        'plain',
      ],
      ...['--out', out, '--target', proxy.url, '--redis', stack.urls.redis],
      ...['--bank', stack.urls.bank, '--wallet', stack.urls.wallet, '--coupon', stack.urls.coupon],
    ];
    const { code, log } = await runCli(args, { timeoutMs: 200_000 });
    expect(code, log.slice(-4_000)).toBe(1);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    const i10 = s.invariants.find((i) => i.id === 'I10')!;
    expect(i10.ok, i10.note).toBe(false);
    expect(i10.count).toBeGreaterThan(1);
    expect(i10.note).toMatch(/double-submitted orders: \d+ answers compared, [1-9]\d* mismatched/);
    expect(i10.examples.join('\n')).toMatch(
      /replay: key fc-probe-\S+ order \S+: answered 200 order \S+-replayed/,
    );
    expect(i10.examples.join('\n')).toMatch(
      /double-submitted order answers mismatched \(fc_idem_mismatch\)/,
    );
    expect(s.metrics['invariants.I10']).toBe(0);
    expect(s.budgets.find((b) => b.expr === 'invariants.broken==0')).toMatchObject({ ok: false });
    expect(s.verdict).toBe('fail');
    expect(log).toMatch(/FAIL I10/);
  }, 240_000);
});
