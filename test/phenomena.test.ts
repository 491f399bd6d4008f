// The phenomenon matrix, run as a user runs it (`flashcrowd phenomena`, every
// row of docs/PHENOMENA.md at seed 1 and half the presets' ci time-scale, the
// embedded stack): per row,
// the naive build shows the brief's failure by its metric and the hardened
// build passes its budgets and shows its part. The rows' shape and the rule
// that judges them are in test/phenomena-matrix.test.ts. The matrix's runs
// are also the evidence for what some presets' descriptions promise (the
// others' in test/presets-promise.test.ts), read from the same run folders
// rather than run twice. Same-seed repeats are test/reproducibility.test.ts's:
// retry-storm's naive run here, run again alone at this scale, differed by one
// in exact counts (57 against 58 ambiguous resets, one more double charge;
// fresh clone, 06:50), so it is no longer compared (docs/REPRODUCIBILITY.md).
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PHENOMENA, runName, type RowResult } from '../harness/phenomena.ts';
import type { RunSummary } from '../harness/summary.ts';
import { HALF_CI_TIME_SCALE, runCli } from './support/cli.ts';
import { event, failures } from './support/summary.ts';

/**
 * Half of the presets' ci time-scale (0.0166667): 10 s of traffic a run, the
 * matrix in about 6 minutes instead of 11. Every row held at both scales
 * (docs/PHENOMENA.md has the --ci figures).
 */
const TIME_SCALE = HALF_CI_TIME_SCALE;
const out = mkdtempSync(join(tmpdir(), 'flashcrowd-phenomena-'));
let code: number | null = null;
let log = '';
let results: RowResult[] = [];

const summaryOf = (preset: string, variant: string) =>
  JSON.parse(
    readFileSync(join(out, runName(preset, variant), 'summary.json'), 'utf8'),
  ) as RunSummary;

/** Why a row did not hold: each check that failed, and the hardened run's failed budgets. */
function why(r: RowResult): string {
  const bad = [...r.naive.shows, ...r.hardened.shows].filter((b) => !b.ok);
  const hardened = summaryOf(r.row.preset, r.row.hardened);
  const budgets = hardened.budgets.filter((b) => !b.ok);
  return JSON.stringify({ checks: bad, hardenedVerdict: r.hardened.verdict, budgets });
}

beforeAll(async () => {
  ({ code, log } = await runCli(
    ['phenomena', '--time-scale', String(TIME_SCALE), '--out', out, '--progress', 'none'],
    { timeoutMs: 1_500_000 },
  ));
  const file = join(out, 'phenomena.json');
  if (!existsSync(file))
    throw new Error(
      `flashcrowd phenomena exited ${code} without phenomena.json:\n${log.slice(-4_000)}`,
    );
  results = JSON.parse(readFileSync(file, 'utf8')) as RowResult[];
}, 1_600_000);

describe(`the phenomenon matrix at time-scale ${TIME_SCALE}, seed 1`, () => {
  it.each(PHENOMENA.map((r) => [r.n, r.phenomenon, r] as const))(
    'row %i (%s): the naive build shows it, the hardened build passes',
    (n, _p, row) => {
      const r = results.find((x) => x.row.n === n);
      expect(r, log.slice(-3_000)).toBeDefined();
      expect(r!.row.preset).toBe(row.preset);
      expect(r!.ok, why(r!)).toBe(true);
    },
  );

  it('exits 0 and writes the table with every row', () => {
    expect(code, log.slice(-3_000)).toBe(0);
    const md = readFileSync(join(out, 'phenomena.md'), 'utf8');
    for (const r of PHENOMENA) expect(md).toMatch(new RegExp(`^\\| ${r.n} \\| `, 'm'));
  });

  it("retry-storm's naive run: the cascade timeline names the bank's latency first, and nothing left its baseline before it", () => {
    const c = summaryOf('retry-storm', 'naive').cascade;
    const first = c?.onsets[0];
    expect([first?.signal, first?.dependency], JSON.stringify(c)).toEqual(['dep.p99_ms', 'bank']);
    expect(c!.onsets.filter((o) => o.atS < first!.atS)).toEqual([]);
    expect(c!.story).toMatch(/^bank p99 x[\d.]+ at \d+ s -> /);
  });
});

describe("presets do what their descriptions say (the matrix's hardened runs)", () => {
  it('gateway-outage: the card gateway refuses connections, the breaker opens and shoppers fail over to the wallet; nothing leaks', () => {
    const s = summaryOf('gateway-outage', 'hardened');
    expect(failures(s, 'circuit_open') + failures(s, 'connection_refused')).toBeGreaterThan(0);
    expect(failures(s, 'circuit_open')).toBeGreaterThan(0);
    expect(event(s, 'failover')).toBeGreaterThan(0);
    expect(s.metrics['leaks.stock']).toBe(0);
    expect(s.metrics.double_charges).toBe(0);
  });

  it('ambiguous-capture: card payments take effect and their answers are lost, and the hardened checkout reconciles them: no double charge, no capture without a paid order', () => {
    const s = summaryOf('ambiguous-capture', 'hardened');
    const ambiguous = s.chaos.injected
      .filter((f) => f.service === 'bank' && /ambiguous/.test(f.kind))
      .reduce((n, f) => n + f.count, 0);
    expect(ambiguous, JSON.stringify(s.chaos.injected)).toBeGreaterThan(0);
    expect(event(s, 'paid_by_reconciler') + event(s, 'double_capture_refunded')).toBeGreaterThan(0);
    expect(s.metrics.double_charges).toBe(0);
    expect(s.metrics.captures_without_paid_order).toBe(0);
    expect(s.metrics.paid_without_capture).toBe(0);
  });

  it('coupon-contention: the campaign runs out and refuses coupons, the coupon service drops lock calls, and every coupon comes back or is used once', () => {
    const s = summaryOf('coupon-contention', 'hardened');
    const refused = s
      .events!.declines.filter((d) => d.service === 'coupon')
      .reduce((n, d) => n + d.count, 0);
    expect(refused, JSON.stringify(s.events!.declines)).toBeGreaterThan(0);
    expect(
      s.chaos.injected.some((f) => f.service === 'coupon' && f.count > 0),
      JSON.stringify(s.chaos.injected),
    ).toBe(true);
    expect(s.metrics['leaks.coupon']).toBe(0);
    expect(s.invariants.find((i) => i.id === 'I8')!.ok).toBe(true);
  });
});

describe('faults beyond the mocks (the matrix runs of rows 15-18)', () => {
  const played = (s: RunSummary) => s.chaos.timeline ?? [];

  it("redis-slow's naive run: the cascade timeline starts at Redis's latency, inside the fault's band", () => {
    const s = summaryOf('redis-slow', 'naive');
    const c = s.cascade!;
    const redis = c.onsets.find((o) => o.signal === 'redis.p99_ms');
    expect(redis, JSON.stringify(c)).toBeDefined();
    expect(
      c.onsets.filter((o) => o.atS < redis!.atS),
      c.story,
    ).toEqual([]);
    const band = s.chaos.bands.find((b) => b.service === 'redis');
    expect(band, JSON.stringify(s.chaos.bands)).toBeDefined();
    expect(redis!.lagS).toBeGreaterThanOrEqual(0);
    expect(played(s).map((p) => [p.target, p.error ?? null])).toEqual([['link:redis', null]]);
  });

  it('every fault step of every faults preset took effect, in both builds', () => {
    for (const preset of ['redis-slow', 'checkout-crash', 'redis-restart', 'network-partition'])
      for (const variant of ['naive', 'hardened']) {
        const s = summaryOf(preset, variant);
        const steps = played(s);
        expect(steps.length, `${preset}/${variant}`).toBeGreaterThan(0);
        for (const p of steps)
          expect(p.fromS, `${preset}/${variant} ${JSON.stringify(p)}`).not.toBeNull();
        expect(s.metrics['faults.failed'] ?? 0).toBe(0);
      }
  });

  it("checkout-crash's hardened run: the killed instance was restarted, its shoppers saw resets, and the survivors left nothing pending", () => {
    const s = summaryOf('checkout-crash', 'hardened');
    const kill = played(s).find((p) => p.action === 'kill')!;
    expect(kill.toS, JSON.stringify(kill)).not.toBeNull();
    expect(s.metrics['checkout.instances']).toBe(3);
    expect(s.metrics['leaks.stream_pending']).toBe(0);
    expect(s.metrics['invariants.broken']).toBe(0);
  });

  it("network-partition's hardened run: the bank's calls timed out (a black hole), none was refused", () => {
    const s = summaryOf('network-partition', 'hardened');
    expect(s.metrics['dep.timeouts{dependency=bank}']).toBeGreaterThan(0);
    expect(s.metrics['dep.refused{dependency=bank}']).toBe(0);
  });
});
