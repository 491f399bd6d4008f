// The scenario presets (scenarios/presets/*.json): every file parses, every
// chaos profile in it is accepted by the engine of the service it targets,
// the scaling does what docs/SCENARIOS.md says, and bad presets are refused
// with errors that name the field.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChaosEngine } from '../mock-gateways/chaos/engine.ts';
import { SERVICE_CATALOG } from '../mock-gateways/catalog.ts';
import { SERVICE_FACTORIES, SERVICE_NAMES } from '../mock-gateways/index.ts';
import {
  listPresetNames,
  loadPreset,
  parsePreset,
  PRESETS_DIR,
  resolvePreset,
  scaleChaosProfile,
  type Preset,
} from '../harness/preset.ts';
import { gracefulStopS, resolve, withDefaults } from '../scenarios/lib/preset.ts';
import {
  expectedArrivals,
  rateAt,
  scaleStages,
  stageIndexAt,
  stageLabels,
} from '../scenarios/lib/shape.ts';

const EXPECTED = [
  'ambiguous-capture',
  'bank-brownout',
  'callback-chaos',
  'capacity-knee',
  'checkout-crash',
  'coupon-contention',
  'flapping-channel',
  'gateway-outage',
  'ghost-stock',
  'livestream-spike',
  'network-partition',
  'redis-restart',
  'redis-slow',
  'retry-storm',
  'risk-control',
  'stock-lag',
  'top-of-hour',
];

const raw = (name: string) =>
  JSON.parse(readFileSync(join(PRESETS_DIR, `${name}.json`), 'utf8')) as Record<string, any>;

/** A preset with only the required fields. */
const minimal = () => ({
  name: 'tiny',
  description: 'the smallest valid preset',
  traffic: { startRate: 2, stages: [{ durationS: 60, target: 10 }] },
  sale: { skus: [{ id: 'sku1', price: 100, stock: 1000 }] },
});

/** The message parsePreset throws for `p` (fails the test when it does not throw). */
function refusal(p: unknown): string {
  try {
    parsePreset(p, 'bad.json');
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the preset was accepted');
}

describe('the shipped presets', () => {
  it('are the eight of the verdicts issue, the five of the phenomena issue and the four of the faults issue, each named like its file', () => {
    expect(listPresetNames()).toEqual(EXPECTED);
    for (const name of EXPECTED) {
      const { preset, file } = loadPreset(name);
      expect(preset.name).toBe(name);
      expect(basename(file)).toBe(`${name}.json`);
    }
  });

  it("have chaos profiles the services' engines accept, at full scale and at the ci scale", () => {
    let profiles = 0;
    for (const name of EXPECTED) {
      const { preset } = loadPreset(name);
      for (const service of SERVICE_NAMES) {
        const profile = preset.chaos[service];
        if (!profile) continue;
        profiles += 1;
        const def = SERVICE_FACTORIES[service]!();
        for (const p of [profile, scaleChaosProfile(profile, preset.ci.timeScale)]) {
          const engine = new ChaosEngine({
            service,
            operations: def.operations,
            declineReasons: def.declineReasons,
            extraSchema: def.extraSchema,
            seed: 1,
          });
          expect(() => engine.setProfile(p), `${name} ${service}`).not.toThrow();
        }
      }
    }
    expect(profiles).toBeGreaterThanOrEqual(6);
  });

  it("validate against the services' own operations, decline reasons and extra schemas (the light catalog agrees)", () => {
    for (const service of SERVICE_NAMES) {
      const def = SERVICE_FACTORIES[service]!();
      expect(SERVICE_CATALOG[service].operations, service).toEqual(def.operations);
      expect(SERVICE_CATALOG[service].declineReasons, service).toEqual(def.declineReasons);
      expect(SERVICE_CATALOG[service].extraSchema, service).toBe(def.extraSchema);
    }
  });

  it('run about 20 s at their ci scales, peaking at 100-200 arrivals/s', () => {
    for (const name of EXPECTED) {
      const { preset } = loadPreset(name);
      const r = resolvePreset(preset, { seed: 1, ...preset.ci });
      expect(r.durationS, name).toBeGreaterThanOrEqual(18);
      expect(r.durationS, name).toBeLessThanOrEqual(22);
      const peak = Math.max(r.traffic.startRate, ...r.traffic.stages.map((s) => s.target));
      expect(peak, name).toBeGreaterThanOrEqual(100);
      expect(peak, name).toBeLessThanOrEqual(200);
      // At full scale a preset is a promotion of about 20 minutes, with a jump of tens of times the baseline.
      const full = preset.traffic;
      expect(
        full.stages.reduce((a, s) => a + s.durationS, 0),
        name,
      ).toBe(1200);
      const jump = full.stages.find((s) => s.durationS <= 1 && s.target >= 20 * full.startRate);
      expect(jump, `${name}: a stage of at most 1 s to 20x the start rate`).toBeDefined();
    }
  });

  it('each chaos preset targets what its name says', () => {
    const bank = (n: string) => loadPreset(n).preset.chaos.bank as Record<string, any>;
    expect(bank('bank-brownout').outages[0]).toMatchObject({ mode: 'brownout' });
    expect(bank('gateway-outage').outages[0]).toMatchObject({ mode: 'down', durationMs: 480_000 });
    expect(loadPreset('gateway-outage').preset.behaviour.allowFallback).toBeGreaterThan(0.5);
    const errors = bank('ambiguous-capture').operations['payments.create'].errors as {
      ambiguous?: boolean;
    }[];
    expect(errors.every((e) => e.ambiguous)).toBe(true);
    const notify = (loadPreset('callback-chaos').preset.chaos.wallet as Record<string, any>).extra
      .notify;
    expect(notify.lossRate).toBeGreaterThan(0);
    expect(notify.duplicateRate).toBeGreaterThan(0);
    expect(notify.reorder).toBeDefined();
    expect(notify.delay).toBeDefined();
    const cb = loadPreset('callback-chaos').preset.behaviour.channels;
    expect((cb.alipay ?? 0) + (cb.wechat ?? 0)).toBeGreaterThan(0.5);
    const storm = loadPreset('retry-storm').preset;
    expect(storm.variants?.map((v) => [v.name, v.checkout?.mode, v.expect])).toEqual([
      ['naive', 'naive', 'fail'],
      ['hardened', 'hardened', 'pass'],
    ]);
    const cc = loadPreset('coupon-contention').preset;
    const r = resolvePreset(cc, { seed: 1, ...cc.ci });
    const buyers =
      expectedArrivals(r.traffic.startRate, r.traffic.stages) * (1 - cc.behaviour.browseOnly);
    expect(r.sale.coupon!.budget).toBeLessThan(buyers * cc.behaviour.useCoupon * 0.5);
    const spike = loadPreset('livestream-spike').preset;
    // No faults: a healthy bank and wallet, with the latency healthy ones have (which also
    // makes a re-click overlap its first click, the naive double charge, every time).
    for (const svc of Object.values(spike.chaos))
      expect(Object.keys(svc ?? {})).toEqual(['latency']);
    expect(spike.budgets).toEqual(
      expect.arrayContaining([
        'pay.failure_rate<0.02',
        'leaks.stock==0',
        'leaks.coupon==0',
        'double_charges==0',
        'invariants.broken==0',
      ]),
    );
  });

  it('each have a naive variant that expects to fail and a hardened one that expects to pass (the phenomenon matrix runs both)', () => {
    for (const name of EXPECTED) {
      const { preset } = loadPreset(name);
      const by = new Map(preset.variants?.map((v) => [v.name, v]));
      expect([by.get('naive')?.checkout?.mode, by.get('naive')?.expect], name).toEqual([
        'naive',
        'fail',
      ]);
      expect([by.get('hardened')?.checkout?.mode, by.get('hardened')?.expect], name).toEqual([
        'hardened',
        'pass',
      ]);
    }
  });

  it('scale the same in the k6 script (raw JSON + defaults) as in the harness (zod)', () => {
    for (const p of [...EXPECTED.map(raw), minimal()]) {
      const o = { seed: 5, timeScale: 0.01, loadScale: 0.2 };
      expect(resolve(withDefaults(p), o), p.name).toEqual(
        resolvePreset(parsePreset(p, `${p.name}.json`), o),
      );
    }
  });
});

describe('resolvePreset', () => {
  const preset = parsePreset(
    {
      ...minimal(),
      traffic: {
        startRate: 10,
        stages: [
          { durationS: 100, target: 10, label: 'warm' },
          { durationS: 1, target: 400 },
          { durationS: 59, target: 400, label: 'peak' },
          { durationS: 40, target: 0 },
        ],
        preAllocatedVUs: 100,
        maxVUs: 300,
      },
      behaviour: { retryPauseS: [2, 10], payLaterS: [30, 300], pollPauseS: [1, 3] },
      sale: {
        skus: [
          { id: 'a', price: 100, stock: 10_000 },
          { id: 'b', price: 100, stock: 3, limit: 2 },
        ],
        coupon: { campaignId: 'c-1', budget: 5_000, discount: 10 },
      },
    },
    'scaled.json',
  );

  it('scales stages: whole seconds with rounded ends, at least 1 s each, every stage labelled', () => {
    const r = resolvePreset(preset, { seed: 1, timeScale: 0.1, loadScale: 0.5 });
    expect(r.traffic.stages).toEqual([
      { durationS: 10, target: 5, label: 'warm' },
      { durationS: 1, target: 200, label: 'stage2' },
      { durationS: 5, target: 200, label: 'peak' },
      { durationS: 4, target: 0, label: 'stage4' },
    ]);
    expect(r.durationS).toBe(20);
    expect(r.traffic.startRate).toBe(5);
    // Boundaries stay near the exact scaled times (10, 10.1, 16, 20): no drift from rounding each stage.
    const ends = scaleStages(preset.traffic.stages, 1 / 60, 1).reduce<number[]>(
      (a, s) => [...a, (a.at(-1) ?? 0) + s.durationS],
      [],
    );
    expect(ends).toEqual([2, 3, 4, 5]);
    // A rate above 0 never scales to 0.
    expect(
      resolvePreset(preset, { seed: 1, timeScale: 1, loadScale: 0.001 }).traffic.stages[0]!.target,
    ).toBe(1);
  });

  it('scales stock and coupons by time-scale x load-scale (at least 1), VUs by the load, pauses by the time', () => {
    const r = resolvePreset(preset, { seed: 7, timeScale: 0.1, loadScale: 0.5, variant: 'v' });
    expect(r).toMatchObject({
      name: 'tiny',
      variant: 'v',
      seed: 7,
      timeScale: 0.1,
      loadScale: 0.5,
    });
    expect(r.sale.skus).toEqual([
      { id: 'a', price: 100, stock: 500, limit: 1 },
      { id: 'b', price: 100, stock: 1, limit: 2 },
    ]);
    expect(r.sale.coupon).toEqual({ campaignId: 'c-1', budget: 250, discount: 10 });
    expect(r.traffic.preAllocatedVUs).toBe(50);
    expect(r.traffic.maxVUs).toBe(150);
    expect(r.behaviour.retryPauseS).toEqual([0.2, 1]);
    expect(r.behaviour.payLaterS).toEqual([3, 30]);
    expect(r.behaviour.pollPauseS).toEqual([0.1, 0.30000000000000004]);
    // A network timeout is not a human pause: it does not scale.
    expect(r.behaviour.requestTimeoutS).toBe(preset.behaviour.requestTimeoutS);
    expect(r.behaviour.browseOnly).toBe(preset.behaviour.browseOnly);
    // k6 waits for running shoppers long enough for their pauses and a timeout per request
    // (pay later 300 + 2 retries x 10 + 3 clicks x 3 polls x 3 + 5 timeouts x 10 + 1), at most 10 minutes.
    const full = resolvePreset(preset, { seed: 1, timeScale: 1, loadScale: 1 });
    expect(gracefulStopS(full)).toBe(300 + 20 + 27 + 50 + 1);
    expect(gracefulStopS({ ...full, behaviour: { ...full.behaviour, payLaterS: [0, 5000] } })).toBe(
      600,
    );
  });

  it('finds the stage in force and the rate at a time, and the arrivals over the shape', () => {
    const r = resolvePreset(preset, { seed: 1, timeScale: 0.1, loadScale: 0.5 });
    const s = r.traffic.stages;
    expect(stageLabels(s)).toEqual(['warm', 'stage2', 'peak', 'stage4']);
    expect([0, 9.99, 10, 10.5, 11, 15.9, 16, 19.9, 25].map((t) => stageIndexAt(s, t))).toEqual([
      0, 0, 1, 1, 2, 2, 3, 3, 3,
    ]);
    expect(rateAt(5, s, 10.5)).toBeCloseTo(102.5);
    expect(rateAt(5, s, 18)).toBeCloseTo(100);
    expect(expectedArrivals(5, s)).toBeCloseTo(5 * 10 + 102.5 + 200 * 5 + 100 * 4);
  });

  it('scales chaos offsets, keeps windows at least 1 ms and leaves latencies alone', () => {
    const p = {
      latency: { dist: 'fixed', ms: 300 },
      outages: [{ startMs: 240_000, durationMs: 20, mode: 'flapping', periodMs: 40 }],
      timeline: [
        { atMs: 600_000, profile: { errors: [{ rate: 0.1, kind: 'hang', hangMs: 5000 }] } },
      ],
    };
    expect(scaleChaosProfile(p, 0.01)).toEqual({
      latency: { dist: 'fixed', ms: 300 },
      outages: [{ startMs: 2_400, durationMs: 1, mode: 'flapping', periodMs: 1 }],
      timeline: [{ atMs: 6_000, profile: { errors: [{ rate: 0.1, kind: 'hang', hangMs: 5000 }] } }],
    });
  });
});

describe('bad presets', () => {
  const cases: [string, (p: Record<string, any>) => void, RegExp][] = [
    ['a negative rate', (p) => (p.traffic.stages[0].target = -1), /traffic\.stages\.0\.target: /],
    [
      'an unknown field',
      (p) => (p.behaviour = { colour: 'red' }),
      /behaviour\.colour: unknown field/,
    ],
    ['a share above 1', (p) => (p.behaviour = { browseOnly: 1.5 }), /behaviour\.browseOnly: /],
    [
      'a pause range upside down',
      (p) => (p.behaviour = { retryPauseS: [10, 2] }),
      /behaviour\.retryPauseS: the first number must not exceed the second/,
    ],
    [
      'abandon and pay later adding up above 1',
      (p) => (p.behaviour = { abandon: 0.6, payLater: 0.6 }),
      /behaviour\.payLater: abandon \+ payLater must be at most 1/,
    ],
    [
      'no channel weight',
      (p) => (p.behaviour = { channels: { card: 0 } }),
      /behaviour\.channels: at least one channel needs a weight/,
    ],
    [
      'a SKU id the checkout refuses',
      (p) => (p.sale.skus[0].id = 'x'.repeat(33)),
      /sale\.skus\.0\.id: /,
    ],
    [
      'two SKUs with one id',
      (p) => p.sale.skus.push({ ...p.sale.skus[0] }),
      /sale\.skus\.1\.id: duplicate SKU id sku1/,
    ],
    [
      'two stages with one label',
      (p) => p.traffic.stages.push({ durationS: 1, target: 1, label: 'stage1' }),
      /traffic\.stages\.1\.label: duplicate stage label "stage1"/,
    ],
    [
      'fewer max VUs than pre-allocated',
      (p) => Object.assign(p.traffic, { preAllocatedVUs: 10, maxVUs: 5 }),
      /traffic\.maxVUs: must be at least preAllocatedVUs \(10\)/,
    ],
    [
      'a chaos typo',
      (p) => (p.chaos = { bank: { outages: [{ startMs: 0, durationMs: 10, mode: 'donw' }] } }),
      /chaos\.bank\.outages\.0\.mode: /,
    ],
    [
      'an operation the service does not have',
      (p) => (p.chaos = { wallet: { operations: { 'payments.create': { errors: [] } } } }),
      /chaos\.wallet\.operations\.payments\.create: unknown operation/,
    ],
    [
      'a chaos profile for no service',
      (p) => (p.chaos = { checkout: {} }),
      /chaos\.checkout: unknown field/,
    ],
    [
      'a checkout setting that does not exist',
      (p) => (p.checkout = { mode: 'hardened', set: { retrys: 'none' } }),
      /checkout\.set\.retrys: unknown setting/,
    ],
    [
      'a bad checkout setting in a variant',
      (p) => (p.variants = [{ name: 'v', checkout: { set: { retries: 'sometimes' } } }]),
      /variants\.0\.checkout\.set\.retries: /,
    ],
    [
      'a budget on an unknown metric',
      (p) => (p.budgets = ['pay.failur_rate<0.1']),
      /budgets\.0: .*unknown metric `pay\.failur_rate`/,
    ],
    [
      'a budget on a stage the preset does not have',
      (p) => (p.budgets = ['pay.failure_rate{stage=peak}<0.1']),
      /budgets\.0: .*unknown stage `peak`/,
    ],
    [
      'two variants with one name',
      (p) => (p.variants = [{ name: 'v' }, { name: 'v' }]),
      /variants\.1\.name: duplicate variant name v/,
    ],
    ['a bad name', (p) => (p.name = 'Spike!'), /^ {2}name: /m],
  ];
  for (const [what, mutate, message] of cases)
    it(`refuses ${what}, naming the field`, () => {
      const p = minimal() as Record<string, any>;
      mutate(p);
      const m = refusal(p);
      expect(m).toMatch(/^invalid preset bad\.json:/);
      expect(m).toMatch(message);
    });

  it('accepts the minimal preset and fills in the defaults', () => {
    const p: Preset = parsePreset(minimal(), 'ok.json');
    expect(p.behaviour.browseOnly).toBe(0.3);
    expect(p.checkout).toEqual({ mode: 'hardened', set: {} });
    expect(p.sale.skus[0]!.limit).toBe(1);
  });

  it('says which presets exist for an unknown name, and what is wrong with a file that is not JSON', () => {
    expect(() => loadPreset('no-such-preset')).toThrow(/known presets: ambiguous-capture, /);
    const dir = mkdtempSync(join(tmpdir(), 'fc-preset-'));
    try {
      const f = join(dir, 'broken.json');
      writeFileSync(f, '{"name": ');
      expect(() => loadPreset(f)).toThrow(/broken\.json is not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
