// The mocks' run-level time-scale (docs/MOCKS.md, "Time-scale"): every world
// duration of a domain (velocity windows, settlement, notification delay,
// retry schedule and reorder window, a profile's lock lifetime) is multiplied
// by it; its carriers (the start option, `flashcrowd mock --time-scale`,
// `POST /__reset?timeScale=`) and `/healthz`; a bad value refused naming the
// field and changing nothing; the keyed draws the same at every scale.
// No wall-clock upper bounds: each scaled duration here is at most 2.4 s and
// its unscaled one at least 15 s, and the polls give up at 10 s, between them
// (timers are late on a busy machine, never early).
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { createBank } from '../mock-gateways/bank/service.ts';
import { createCoupon } from '../mock-gateways/coupon/service.ts';
import type { RunningService, ServiceOptions } from '../mock-gateways/service.ts';
import { startMerchant, type MerchantResponder } from '../mock-gateways/wallet/merchant.ts';
import type { Notice } from '../mock-gateways/wallet/notify.ts';
import { createWallet, type WalletOptions } from '../mock-gateways/wallet/service.ts';
import { call, startMock } from './support/http.ts';

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const POLL_LIMIT_MS = 10_000;

async function started(p: Promise<RunningService>): Promise<RunningService> {
  const s = await p;
  opened.push(s);
  return s;
}
const bank = (opts: ServiceOptions = {}) => started(startMock(createBank(), opts));
const wallet = (opts: ServiceOptions = {}, w: WalletOptions = {}) =>
  started(startMock(createWallet({ secret: 's', ...w }), opts));
const coupon = (opts: ServiceOptions = {}) => started(startMock(createCoupon(), opts));

async function merchant(answer?: MerchantResponder) {
  const m = await startMerchant(answer);
  opened.push(m);
  return m;
}

/** Poll `probe` (every 20 ms) until it returns something, or fail after POLL_LIMIT_MS. */
async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + POLL_LIMIT_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${POLL_LIMIT_MS} ms`);
    await sleep(20);
  }
}

let n = 0;
const payment = (userId: string, extra: Record<string, unknown> = {}) => ({
  orderId: `ts-${++n}`,
  amount: 100,
  currency: 'CNY',
  card: { number: '4242424242424242' },
  userId,
  ...extra,
});

async function trade(s: RunningService, notifyUrl: string, fields: Record<string, unknown> = {}) {
  const t = await call(s.url, 'POST', '/v1/trades', {
    outTradeNo: `T-${++n}`,
    amount: 500,
    notifyUrl,
    style: 'wechat',
    ...fields,
  });
  expect(t.status).toBe(201);
  return t.body as { tradeNo: string; outTradeNo: string };
}
const payTrade = (s: RunningService, tradeNo: string, buyerId = 'b-1') =>
  call(s.url, 'POST', `/v1/trades/${tradeNo}/pay`, { buyerId });
const noticesOf = async (s: RunningService, tradeNo?: string): Promise<Notice[]> =>
  (await call(s.url, 'GET', `/v1/notifications${tradeNo ? `?tradeNo=${tradeNo}` : ''}`)).body.data;

describe('velocity windows are world durations', () => {
  it('bank: a 60 s window at timeScale 0.01 lets the user pay again a second later; at 1 it still refuses', async () => {
    const profile = { extra: { velocity: { windowMs: 60_000, maxPerUser: 1 } } };
    const scaled = await bank({ profile, timeScale: 0.01 });
    const plain = await bank({ profile });
    for (const s of [scaled, plain]) {
      expect((await call(s.url, 'POST', '/v1/payments', payment('u-1'))).status).toBe(200);
      const again = await call(s.url, 'POST', '/v1/payments', payment('u-1'));
      expect(again.body.reason).toBe('card_velocity_exceeded');
    }
    // Attempts a second apart (a refused attempt counts too, so a tighter poll would keep the
    // window full): well past the scaled window (0.6 s), far inside the unscaled one (60 s).
    let ok: number | undefined;
    for (let i = 1; i <= 10 && ok === undefined; i++) {
      await sleep(1_000);
      const r = await call(scaled.url, 'POST', '/v1/payments', payment('u-1'));
      if (r.status === 200) ok = i;
    }
    expect(ok, 'the scaled window let the user pay again').toBeDefined();
    const unscaled = await call(plain.url, 'POST', '/v1/payments', payment('u-1'));
    expect(unscaled.body.reason).toBe('card_velocity_exceeded');
  });

  it('wallet: /__reset?timeScale=0.01 scales a 60 s window, so the buyer pays again a second later', async () => {
    const m = await merchant();
    const s = await wallet();
    expect((await call(s.url, 'POST', '/__reset?timeScale=0.01')).status).toBe(200);
    await call(s.url, 'PUT', '/__chaos', {
      extra: { velocity: { windowMs: 60_000, maxPerBuyer: 1 } },
    });
    const first = await trade(s, m.url);
    const second = await trade(s, m.url);
    expect((await payTrade(s, first.tradeNo)).status).toBe(200);
    const refused = await payTrade(s, second.tradeNo);
    expect(refused.body).toMatchObject({ status: 'PAYERROR', reason: 'risk_control_rejected' });
    let ok: number | undefined;
    for (let i = 1; i <= 10 && ok === undefined; i++) {
      await sleep(1_000);
      const r = await payTrade(s, second.tradeNo);
      if (r.status === 200) ok = i;
    }
    expect(ok, 'the scaled window let the buyer pay again').toBeDefined();
  });
});

describe('the wallet notification schedule, delay and reorder window', () => {
  it('at timeScale 0.01 the first WeChat retry is due 150 ms after the first attempt (15 s unscaled) and arrives', async () => {
    const m = await merchant((r) => (r.attempt === 1 ? { status: 500 } : { status: 200 }));
    const s = await wallet({ timeScale: 0.01 });
    const t = await trade(s, m.url);
    expect((await payTrade(s, t.tradeNo)).status).toBe(200);
    await m.waitFor((r) => r.length === 2, POLL_LIMIT_MS);
    const [notice] = await until('acked', async () => {
      const list = await noticesOf(s, t.tradeNo);
      return list[0]?.state === 'acked' ? list : undefined;
    });
    const gaps = notice!.attempts.map((a) => a.gapMs);
    expect(gaps).toEqual([0, 150]);
    expect(gaps[1]).toBeLessThanOrEqual(15_000 / 50); // about 100x sooner, with a margin
    const sent = notice!.attempts.map((a) => Date.parse(a.sentAt!));
    expect(sent[1]! - sent[0]!).toBeGreaterThanOrEqual(150 - 2);
  });

  it("the retry schedule's scale: the profile's extra.notify.timeScale, else the notifyTimeScale option, else the run's", async () => {
    const m = await merchant(() => ({ status: 500 }));
    const secondGap = async (s: RunningService) => {
      const t = await trade(s, m.url);
      await payTrade(s, t.tradeNo);
      const [notice] = await until('the retry scheduled', async () => {
        const list = await noticesOf(s, t.tradeNo);
        return (list[0]?.attempts.length ?? 0) >= 2 ? list : undefined;
      });
      return notice!.attempts[1]!.gapMs;
    };
    const notify = { extra: { notify: { timeScale: 0.001 } } };
    expect(await secondGap(await wallet({ timeScale: 0.01 }))).toBe(150);
    expect(await secondGap(await wallet({ timeScale: 0.01, profile: notify }))).toBe(15);
    expect(await secondGap(await wallet({ timeScale: 0.01 }, { notifyTimeScale: 0.002 }))).toBe(30);
    expect(
      await secondGap(
        await wallet({ timeScale: 0.01, profile: notify }, { notifyTimeScale: 0.002 }),
      ),
    ).toBe(15);
  });

  it('a 20 s notification delay is 200 ms at timeScale 0.01, whatever extra.notify.timeScale says', async () => {
    const m = await merchant();
    const s = await wallet({
      timeScale: 0.01,
      profile: { extra: { notify: { timeScale: 0.5, delay: { dist: 'fixed', ms: 20_000 } } } },
    });
    const t = await trade(s, m.url);
    await payTrade(s, t.tradeNo);
    await m.waitFor((r) => r.length === 1, POLL_LIMIT_MS);
    const [notice] = await noticesOf(s, t.tradeNo);
    expect(notice!.attempts[0]!.gapMs).toBe(200);
  });

  it('a 60 s reorder window is 0.6 s at timeScale 0.01: trades paid in order are notified in reverse', async () => {
    const m = await merchant();
    const s = await wallet({
      timeScale: 0.01,
      profile: { extra: { notify: { reorder: { windowMs: 60_000, order: 'reverse' } } } },
    });
    const paid: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await trade(s, m.url);
      expect((await payTrade(s, t.tradeNo)).status).toBe(200);
      paid.push(t.tradeNo);
    }
    await m.waitFor((r) => r.length === 3, POLL_LIMIT_MS);
    expect(m.received.map((r) => r.body?.transaction_id)).toEqual([...paid].reverse());
  });
});

describe('settlement and lock lifetimes', () => {
  it('bank: a payment that settles after 60 s settles within a second at timeScale 0.01', async () => {
    const s = await bank({
      timeScale: 0.01,
      profile: { extra: { processing: { rate: 1, settleMs: { dist: 'fixed', ms: 60_000 } } } },
    });
    const p = await call(s.url, 'POST', '/v1/payments', payment('u-9'));
    expect(p.status).toBe(202);
    const settled = await until('settled', async () => {
      const r = await call(s.url, 'GET', `/v1/payments/${p.body.id}`);
      return r.body.status === 'processing' ? undefined : r.body;
    });
    expect(settled).toMatchObject({ status: 'succeeded', captured: true });
  });

  it("coupon: the profile's 60 s lock lifetime is 0.6 s at timeScale 0.01; a request's own lockTtlMs is kept", async () => {
    const s = await coupon({ timeScale: 0.01, profile: { extra: { lockTtlMs: 60_000 } } });
    await call(s.url, 'POST', '/v1/campaigns', {
      id: 'c1',
      name: 'c',
      budget: 10,
      discount: { type: 'amount', value: 100 },
      perUserLimit: 5,
    });
    const issue = async () =>
      (await call(s.url, 'POST', '/v1/coupons', { campaignId: 'c1', userId: 'u' })).body.code;
    const [a, b] = [await issue(), await issue()];
    const span = (c: { lockedAt: string; lockExpiresAt: string }) =>
      Date.parse(c.lockExpiresAt) - Date.parse(c.lockedAt);
    const la = await call(s.url, 'POST', `/v1/coupons/${a}/lock`, { orderId: 'o-a' });
    expect(span(la.body)).toBeGreaterThanOrEqual(600);
    expect(span(la.body)).toBeLessThan(6_000);
    const lb = await call(s.url, 'POST', `/v1/coupons/${b}/lock`, {
      orderId: 'o-b',
      lockTtlMs: 60_000,
    });
    expect(span(lb.body)).toBeGreaterThanOrEqual(60_000);
    const expired = await until('the lock expired', async () => {
      const c = await call(s.url, 'GET', `/v1/coupons/${a}`);
      return c.body.state === 'ISSUED' ? c.body : undefined;
    });
    expect(expired.history.map((h: { type: string }) => h.type)).toContain('expired');
    expect((await call(s.url, 'GET', `/v1/coupons/${b}`)).body.state).toBe('LOCKED');
  });
});

describe('what is not scaled', () => {
  it("a request's latency and the wallet's pay delay (the pay call's latency) stay real milliseconds at timeScale 0.01", async () => {
    const m = await merchant();
    const s = await wallet({
      timeScale: 0.01,
      profile: {
        operations: { 'trades.get': { latency: { dist: 'fixed', ms: 200 } } },
        extra: { payDelayMs: { dist: 'fixed', ms: 200 } },
      },
    });
    const t = await trade(s, m.url);
    let started = performance.now();
    expect((await call(s.url, 'GET', `/v1/trades/${t.tradeNo}`)).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200 - 5);
    started = performance.now();
    expect((await payTrade(s, t.tradeNo)).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200 - 5);
  });
});

describe('carriers and validation', () => {
  it('/healthz and GET /__chaos report the time-scale: 1 by default, else the start option', async () => {
    const plain = await bank();
    const scaled = await wallet({ timeScale: 0.25 });
    expect((await call(plain.url, 'GET', '/healthz')).body).toMatchObject({ timeScale: 1 });
    expect((await call(scaled.url, 'GET', '/healthz')).body).toMatchObject({
      service: 'wallet',
      timeScale: 0.25,
    });
    expect((await call(scaled.url, 'GET', '/__chaos')).body.timeScale).toBe(0.25);
  });

  it('POST /__reset?timeScale=X sets it with the reset; a reset without it keeps it', async () => {
    const s = await coupon();
    const r = await call(s.url, 'POST', '/__reset?seed=4&timeScale=0.02');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'reset', service: 'coupon', seed: 4, timeScale: 0.02 });
    expect((await call(s.url, 'GET', '/healthz')).body).toMatchObject({ seed: 4, timeScale: 0.02 });
    expect((await call(s.url, 'POST', '/__reset?seed=5')).body.timeScale).toBe(0.02);
    expect((await call(s.url, 'POST', '/__reset?timeScale=1')).body).toMatchObject({
      seed: 5,
      timeScale: 1,
    });
  });

  it('a bad timeScale is 400 naming timeScale and the reason, and resets nothing', async () => {
    const s = await bank({ seed: 3, timeScale: 0.5 });
    const p = await call(s.url, 'POST', '/v1/payments', payment('u-2'));
    expect(p.status).toBe(200);
    for (const q of [
      'timeScale=2',
      'timeScale=abc',
      'timeScale=0',
      'timeScale=-0.5',
      'timeScale=',
      'timeScale=Infinity',
      'timeScale=0.5&timeScale=0.5',
      'seed=9&timeScale=1.5',
    ]) {
      const r = await call(s.url, 'POST', `/__reset?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body, q).toMatchObject({
        error: 'validation_failed',
        errors: [{ field: 'timeScale', reason: 'must be a number above 0 and at most 1' }],
      });
    }
    expect((await call(s.url, 'GET', '/healthz')).body).toMatchObject({ seed: 3, timeScale: 0.5 });
    expect((await call(s.url, 'GET', `/v1/payments/${p.body.id}`)).status).toBe(200);
  });

  it('a bad start option is refused', async () => {
    await expect(startMock(createBank(), { timeScale: 0 })).rejects.toThrow(/timeScale/);
    await expect(startMock(createBank(), { timeScale: 1.5 })).rejects.toThrow(/timeScale/);
  });

  it('flashcrowd mock all --time-scale X starts every service with it; a bad value is exit 2 naming the option', async () => {
    const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
    const bad = spawnSync(process.execPath, [BIN, 'mock', 'bank', '--time-scale', '2'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--time-scale must be a number above 0 and at most 1/);

    const child = spawn(
      process.execPath,
      [BIN, 'mock', 'all', '--time-scale', '0.02', '--json', '--exit-with-stdin'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const exited = new Promise((r) => child.once('exit', r));
    opened.push({
      close: async () => {
        child.stdin.end();
        await exited;
      },
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`flashcrowd mock exited ${code}`)));
    });
    const urls = JSON.parse(line) as Record<string, string>;
    expect(Object.keys(urls).sort()).toEqual(['bank', 'coupon', 'wallet']);
    for (const url of Object.values(urls))
      expect((await call(url, 'GET', '/healthz')).body.timeScale).toBe(0.02);
  });
});

describe('the keyed draws at every time-scale', () => {
  it('the same seed draws the same settlement and notification plans at 1 and at 0.01, only scaled', async () => {
    const bankProfile = {
      extra: { processing: { rate: 0.5, settleMs: { dist: 'uniform', minMs: 0, maxMs: 100_000 } } },
    };
    const walletProfile = {
      extra: { notify: { delay: { dist: 'uniform', minMs: 0, maxMs: 100_000 } } },
    };
    const m = await merchant();
    const run = async (timeScale: number) => {
      const b = await bank({ seed: 8, profile: bankProfile, timeScale });
      const w = await wallet({ seed: 8, profile: walletProfile, timeScale });
      const statuses: number[] = [];
      const delays: number[] = [];
      for (let i = 0; i < 8; i++) {
        const p = await call(b.url, 'POST', '/v1/payments', {
          ...payment(`k-${i}`),
          orderId: `K-${i}`,
        });
        statuses.push(p.status);
        const t = await trade(w, m.url, { outTradeNo: `K-${i}` });
        await payTrade(w, t.tradeNo, `k-${i}`);
        delays.push((await noticesOf(w, t.tradeNo))[0]!.attempts[0]!.gapMs);
      }
      return { statuses, delays };
    };
    const full = await run(1);
    const short = await run(0.01);
    expect(short.statuses).toEqual(full.statuses);
    expect(new Set(full.statuses)).toEqual(new Set([200, 202]));
    short.delays.forEach((d, i) => expect(d).toBeCloseTo(full.delays[i]! * 0.01, 6));
    expect(new Set(full.delays).size).toBe(8);
  });
});
