// The wallet's asynchronous notifications over real HTTP: signatures, acks,
// the real retry schedules (time-scaled), giving up, chaos (loss, duplicates,
// reordering, delivery before the pay answer), determinism per seed, and
// timers stopping on reset and close. The schedule is checked exactly as the
// wallet records it; the real send times only from below (never an upper bound
// on wall-clock time).
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningService } from '../mock-gateways/service.ts';
import {
  ACK_SUCCESS,
  startMerchant,
  type Merchant,
  type MerchantResponder,
} from '../mock-gateways/wallet/merchant.ts';
import { verifySignature, type Notice } from '../mock-gateways/wallet/notify.ts';
import { createWallet, type WalletOptions } from '../mock-gateways/wallet/service.ts';
import { call, startMock } from './support/http.ts';

const SECRET = 'test-secret-4f1c';
const FINAL = new Set(['acked', 'gave_up', 'lost']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

async function merchantWith(answer: MerchantResponder = ACK_SUCCESS): Promise<Merchant> {
  const m = await startMerchant(answer);
  opened.push(m);
  return m;
}

async function wallet(
  notify: Record<string, unknown> = {},
  opts: { seed?: number; extra?: Record<string, unknown>; wallet?: WalletOptions } = {},
): Promise<RunningService> {
  const s = await startMock(createWallet({ secret: SECRET, ...opts.wallet }), {
    seed: opts.seed ?? 1,
    profile: { extra: { notify, ...opts.extra } },
  });
  opened.push(s);
  return s;
}

let n = 0;
async function payTrade(
  s: RunningService,
  m: Merchant,
  fields: Record<string, unknown> = {},
): Promise<{ tradeNo: string; outTradeNo: string; status: number }> {
  const outTradeNo = `N-${++n}`;
  const t = await call(s.url, 'POST', '/v1/trades', {
    outTradeNo,
    amount: 1234,
    notifyUrl: m.url,
    style: 'alipay',
    ...fields,
  });
  expect(t.status).toBe(201);
  const p = await call(s.url, 'POST', `/v1/trades/${t.body.tradeNo}/pay`, { buyerId: 'b-1' });
  return { tradeNo: t.body.tradeNo, outTradeNo, status: p.status };
}

async function notices(s: RunningService, tradeNo?: string): Promise<Notice[]> {
  const q = tradeNo ? `?tradeNo=${tradeNo}` : '';
  return (await call(s.url, 'GET', `/v1/notifications${q}`)).body.data;
}

/** Poll the notification log until every notice is acked or given up. */
async function settled(s: RunningService, count: number, timeoutMs = 15_000): Promise<Notice[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const list = await notices(s);
    if (list.length >= count && list.every((x) => FINAL.has(x.state))) return list;
    if (performance.now() > deadline)
      throw new Error(`notices not settled: ${JSON.stringify(list.map((x) => x.state))}`);
    await sleep(5);
  }
}

async function metric(s: RunningService, event: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('flashcrowd_mock_notifications_total{') && l.includes(`"${event}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Arrival gaps divided by the expected gaps, each relative to the overall fit. */
/**
 * The real timers keep the schedule: each attempt is sent at least its
 * scheduled gap after the one before was (the wallet's own `sentAt`, to the
 * millisecond, less 2 ms for timer and clock rounding). Only a lower bound: a
 * busy machine makes timers late, never early, so an upper bound would test
 * the machine's load; and the wallet's send times, not the merchant's arrival
 * times, whose delivery delays differ from one attempt to the next.
 */
function expectSentAtLeastGapsApart(attempts: { sentAt?: string; gapMs: number }[]) {
  const sent = attempts.map((a) => Date.parse(a.sentAt!));
  for (let i = 1; i < sent.length; i++)
    expect(sent[i]! - sent[i - 1]!, `attempt ${i + 1}`).toBeGreaterThanOrEqual(
      attempts[i]!.gapMs - 2,
    );
}

/** The wallet's `notify_backlog` level on /metrics (read by the cascade timeline). */
async function backlog(s: RunningService): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('flashcrowd_mock_level{') && l.includes('notify_backlog'));
  return Number(line?.split(' ').pop());
}

describe('the notification backlog', () => {
  it('counts notices on their way: one the merchant keeps refusing stays, an acknowledged one leaves', async () => {
    const refusing = await merchantWith(() => ({ status: 500, body: 'busy' }));
    const s = await wallet();
    expect(await backlog(s)).toBe(0);
    await payTrade(s, refusing);
    await payTrade(s, refusing);
    // Both are retried on the alipay schedule (minutes at scale 1): still on their way.
    expect(await backlog(s)).toBe(2);
    const acking = await merchantWith();
    const s2 = await wallet();
    await payTrade(s2, acking);
    await settled(s2, 1);
    expect(await backlog(s2)).toBe(0);
  });
});

describe('wallet notifications', () => {
  it('notifies a paid trade once, signed with HMAC-SHA256 of the raw body: the secret verifies it, another does not', async () => {
    const m = await merchantWith();
    const s = await wallet();
    const { tradeNo, outTradeNo } = await payTrade(s, m, { subject: 'lipstick' });
    await m.waitFor((r) => r.length === 1);
    const got = m.received[0]!;
    expect(got.method).toBe('POST');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.body).toMatchObject({
      out_trade_no: outTradeNo,
      trade_no: tradeNo,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '12.34',
      notify_id: expect.any(String),
      notify_time: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      buyer_id: 'b-1',
    });
    const expected = `sha256=${createHmac('sha256', SECRET).update(got.raw).digest('hex')}`;
    expect(got.signature).toBe(expected);
    expect(verifySignature(got.raw, got.signature, SECRET)).toBe(true);
    expect(verifySignature(got.raw, got.signature, 'wrong-secret')).toBe(false);
    expect(verifySignature(got.raw.replace('12.34', '99.99'), got.signature, SECRET)).toBe(false);
    const [notice] = await settled(s, 1);
    expect(notice).toMatchObject({ tradeNo, state: 'acked', body: got.raw });
    expect(notice!.attempts).toMatchObject([{ attempt: 1, result: 'acked', status: 200 }]);
    await sleep(30);
    expect(m.received).toHaveLength(1);
  });

  it('signs with $FLASHCROWD_WALLET_SECRET when no secret option is given', async () => {
    const before = process.env.FLASHCROWD_WALLET_SECRET;
    process.env.FLASHCROWD_WALLET_SECRET = 'from-env-77';
    try {
      const def = createWallet();
      expect(def.secret).toBe('from-env-77');
    } finally {
      if (before === undefined) delete process.env.FLASHCROWD_WALLET_SECRET;
      else process.env.FLASHCROWD_WALLET_SECRET = before;
    }
  });

  it('sends WeChat-style bodies and takes any 2xx as an ack', async () => {
    const m = await merchantWith(() => ({ status: 204 }));
    const s = await wallet({ timeScale: 0.001 });
    const { tradeNo, outTradeNo } = await payTrade(s, m, { style: 'wechat', currency: 'cny' });
    await m.waitFor((r) => r.length === 1);
    expect(m.received[0]!.body).toMatchObject({
      id: expect.any(String),
      out_trade_no: outTradeNo,
      transaction_id: tradeNo,
      trade_state: 'SUCCESS',
      amount: { total: 1234, currency: 'CNY' },
    });
    const [notice] = await settled(s, 1);
    expect(notice!.state).toBe('acked');
    expect(notice!.attempts).toHaveLength(1);
  });

  it('keeps retrying an Alipay-style merchant that answers 200 "ok" through all 8 attempts, then gives up', async () => {
    const m = await merchantWith(() => ({ status: 200, body: 'ok' }));
    const s = await wallet({ timeScale: 0.000005 });
    const { tradeNo } = await payTrade(s, m);
    const [notice] = await settled(s, 1);
    expect(notice!.state).toBe('gave_up');
    expect(m.received.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(m.received.map((r) => r.raw)).size).toBe(1);
    expect(notice!.attempts.map((a) => a.result)).toEqual(Array(8).fill('failed'));
    expect(await metric(s, 'gave_up')).toBe(1);
    expect(await metric(s, 'retried')).toBe(7);
    await sleep(50);
    expect(m.received).toHaveLength(8);

    // The same merchant answering "success" is done after one attempt.
    const m2 = await merchantWith(ACK_SUCCESS);
    const s2 = await wallet({ timeScale: 0.000005 });
    await payTrade(s2, m2);
    const [ok] = await settled(s2, 1);
    expect(ok!.state).toBe('acked');
    expect(m2.received).toHaveLength(1);
    expect(tradeNo).toBe('tr_00000001');
  });

  it('follows the WeChat retry gaps 15s, 15s, 30s, 3m scaled by timeScale (scheduled exactly, kept by the timers)', async () => {
    const m = await merchantWith((r) =>
      (r.attempt ?? 0) < 5 ? { status: 500, body: 'FAIL' } : { status: 200 },
    );
    const s = await wallet({ timeScale: 0.004 });
    await payTrade(s, m, { style: 'wechat' });
    const [notice] = await settled(s, 1);
    expect(notice!.state).toBe('acked');
    expect(m.received.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(notice!.attempts.map((a) => a.gapMs)).toEqual([0, 60, 60, 120, 720]);
    expectSentAtLeastGapsApart(notice!.attempts);
  });

  it('follows the Alipay retry gaps 4m, 10m, 10m scaled by timeScale (scheduled exactly, kept by the timers)', async () => {
    const m = await merchantWith((r) =>
      (r.attempt ?? 0) < 4 ? { status: 200, body: 'fail' } : { status: 200, body: 'success' },
    );
    const s = await wallet({ timeScale: 0.0004 });
    await payTrade(s, m);
    const [notice] = await settled(s, 1);
    expect(notice!.state).toBe('acked');
    expect(m.received.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    expect(notice!.attempts.map((a) => a.gapMs)).toEqual([0, 96, 240, 240]);
    expectSentAtLeastGapsApart(notice!.attempts);
  });

  it('gives up a WeChat notice after its 16 attempts and counts every event', async () => {
    const m = await merchantWith(() => ({ status: 503 }));
    const s = await wallet({ timeScale: 0.000005 });
    await payTrade(s, m, { style: 'wechat' });
    const [notice] = await settled(s, 1);
    expect(notice!.state).toBe('gave_up');
    expect(notice!.maxAttempts).toBe(16);
    expect(m.received.map((r) => r.attempt)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(await metric(s, 'sent')).toBe(16);
    expect(await metric(s, 'failed')).toBe(16);
    expect(await metric(s, 'retried')).toBe(15);
    expect(await metric(s, 'gave_up')).toBe(1);
    expect(await metric(s, 'acked')).toBe(0);
  });

  it('times out a merchant that does not answer and retries', async () => {
    const m = await merchantWith((r) =>
      r.attempt === 1 ? { status: 200, body: 'success', delayMs: 3_000 } : ACK_SUCCESS(r),
    );
    const s = await wallet({ timeScale: 0.0001, timeoutMs: 100 });
    await payTrade(s, m);
    const [notice] = await settled(s, 1);
    expect(notice!.attempts).toMatchObject([
      { attempt: 1, result: 'failed', error: expect.stringContaining('timeout') },
      { attempt: 2, result: 'acked' },
    ]);
  });

  it('loses attempts at lossRate: the merchant never sees dropped ones and the schedule goes on', async () => {
    const m = await merchantWith();
    const s = await wallet({ timeScale: 0.00001, lossRate: 0.5 }, { seed: 11 });
    const paid = [];
    for (let i = 0; i < 6; i++) paid.push(await payTrade(s, m, { style: 'wechat' }));
    const list = await settled(s, 6);
    let dropped = 0;
    for (const x of list) {
      const d = x.attempts.filter((a) => a.result === 'dropped').length;
      dropped += d;
      const seen = m.received.filter((r) => r.body?.transaction_id === x.tradeNo);
      if (x.state === 'acked') {
        expect(seen.map((r) => r.attempt)).toEqual([d + 1]);
        expect(x.attempts.slice(0, d).every((a) => a.result === 'dropped')).toBe(true);
      } else expect(seen).toEqual([]);
    }
    expect(dropped).toBeGreaterThan(0);
    expect(await metric(s, 'dropped')).toBe(dropped);
    expect(paid.every((p) => p.status === 200)).toBe(true);
  });

  it('loses notifications for good at lostRate: no attempt reaches the merchant, ever, and the paid trade is still found by a query', async () => {
    const m = await merchantWith();
    const s = await wallet({ timeScale: 0.00001, lostRate: 0.5 }, { seed: 5 });
    for (let i = 0; i < 10; i++) await payTrade(s, m, { style: 'wechat', outTradeNo: `lost-${i}` });
    const list = await settled(s, 10);
    const lost = list.filter((x) => x.state === 'lost');
    // 10 keyed draws at 0.5 (seed 5: 4 lost): some lost, some delivered.
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.length).toBeLessThan(10);
    for (const x of lost) {
      expect(x.attempts.map((a) => a.result)).toEqual(['dropped']);
      expect(m.received.filter((r) => r.body?.transaction_id === x.tradeNo)).toEqual([]);
      const q = await (await fetch(`${s.url}/v1/trades/${x.tradeNo}`)).json();
      expect(q.state ?? q.tradeState ?? q.status, JSON.stringify(q)).toMatch(/paid|success/i);
    }
    for (const x of list.filter((y) => y.state !== 'lost')) expect(x.state).toBe('acked');
    expect(await metric(s, 'lost')).toBe(lost.length);
  });

  it('delivers identical duplicates at duplicateRate 1', async () => {
    const m = await merchantWith();
    const s = await wallet({ duplicateRate: 1 });
    const { tradeNo } = await payTrade(s, m);
    await m.waitFor((r) => r.length === 2);
    const [a, b] = m.received;
    expect(b!.raw).toBe(a!.raw);
    expect(b!.signature).toBe(a!.signature);
    expect(b!.attempt).toBe(a!.attempt);
    const [notice] = await settled(s, 1);
    expect(notice!.tradeNo).toBe(tradeNo);
    expect(notice!.attempts.map((x) => [x.attempt, x.duplicate, x.result])).toEqual([
      [1, false, 'acked'],
      [1, true, 'duplicate'],
    ]);
    expect(await metric(s, 'duplicated')).toBe(1);
  });

  it('reorders notifications held in the window: trades paid in order are notified in reverse', async () => {
    const m = await merchantWith();
    const s = await wallet({ reorder: { windowMs: 400, order: 'reverse' } });
    const paid = [];
    for (let i = 0; i < 4; i++) paid.push((await payTrade(s, m)).tradeNo);
    await m.waitFor((r) => r.length === 4);
    expect(m.received.map((r) => r.body?.trade_no)).toEqual([...paid].reverse());
  });

  it('delivers the notification before the pay call answers at notifyBeforeResponseRate 1, after it at 0', async () => {
    for (const rate of [1, 0]) {
      let answered = false;
      const answeredAtArrival: boolean[] = [];
      const m = await merchantWith((r) => {
        answeredAtArrival.push(answered);
        return ACK_SUCCESS(r);
      });
      const s = await wallet({
        notifyBeforeResponseRate: rate,
        delay: { dist: 'fixed', ms: 40 },
      });
      const t = await call(s.url, 'POST', '/v1/trades', {
        outTradeNo: `B-${rate}`,
        amount: 100,
        notifyUrl: m.url,
        style: 'wechat',
      });
      const p = await call(s.url, 'POST', `/v1/trades/${t.body.tradeNo}/pay`);
      answered = true;
      expect(p.status).toBe(200);
      await m.waitFor((r) => r.length === 1);
      expect(answeredAtArrival, `rate ${rate}`).toEqual([rate === 0]);
      const [notice] = await settled(s, 1);
      expect(notice!.beforeResponse).toBe(rate === 1);
      expect(notice!.attempts[0]!.gapMs).toBe(40);
    }
  });

  it('repeats the same notification chaos for the same seed and another for another seed', async () => {
    const run = async (seed: number) => {
      const m = await merchantWith();
      const s = await wallet(
        {
          timeScale: 0.000002,
          lossRate: 0.4,
          duplicateRate: 0.4,
          notifyBeforeResponseRate: 0.5,
          delay: { dist: 'uniform', minMs: 0, maxMs: 5 },
          reorder: { windowMs: 100, order: 'shuffle' },
        },
        { seed },
      );
      // The same out-trade numbers each run: a trade's notification chaos is keyed by its own.
      for (let i = 0; i < 8; i++)
        await payTrade(s, m, { style: 'wechat', outTradeNo: `same-${i}` });
      const list = await settled(s, 8);
      // The order first attempts reached the merchant (retries may interleave by timing).
      const firstArrivals = [
        ...new Set(m.received.filter((r) => r.attempt === 1).map((r) => r.notifyId)),
      ];
      return {
        firstArrivals,
        notices: list.map((x) => ({
          tradeNo: x.tradeNo,
          state: x.state,
          beforeResponse: x.beforeResponse,
          attempts: x.attempts.map((a) => ({
            attempt: a.attempt,
            duplicate: a.duplicate,
            result: a.result,
            gapMs: a.gapMs,
          })),
        })),
      };
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    expect(b).toEqual(a);
    expect(c.notices).not.toEqual(a.notices);
    const results = a.notices.flatMap((x) => x.attempts.map((y) => y.result));
    expect(results).toContain('dropped');
    expect(results).toContain('duplicate');
  });

  it('stops every timer on /__reset and on close: nothing is delivered afterwards, and a pending pay answers 503', async () => {
    const m = await merchantWith(() => ({ status: 500 }));
    const s = await wallet(
      { timeScale: 0.002 },
      { extra: { payDelayMs: { dist: 'fixed', ms: 0 } } },
    );
    await payTrade(s, m, { style: 'wechat' });
    await m.waitFor((r) => r.length === 1);
    expect((await call(s.url, 'POST', '/__reset')).status).toBe(200);
    expect(await notices(s)).toEqual([]);
    await sleep(150); // five scaled WeChat gaps (30, 30, 60 ms...) would have passed
    expect(m.received).toHaveLength(1);

    const m2 = await merchantWith(() => ({ status: 500 }));
    const s2 = await startMock(createWallet({ secret: SECRET }), {
      profile: {
        extra: { notify: { timeScale: 0.002 }, payDelayMs: { dist: 'fixed', ms: 30_000 } },
      },
    });
    opened.push(s2);
    const t = await call(s2.url, 'POST', '/v1/trades', {
      outTradeNo: 'P-1',
      amount: 5,
      notifyUrl: m2.url,
      style: 'wechat',
    });
    const pending = call(s2.url, 'POST', `/v1/trades/${t.body.tradeNo}/pay`);
    for (let i = 0; i < 100; i++) {
      if ((await call(s2.url, 'GET', `/v1/trades/${t.body.tradeNo}`)).body.status === 'USERPAYING')
        break;
      await sleep(2);
    }
    await call(s2.url, 'POST', '/__reset');
    const answered = await pending;
    expect(answered.status).toBe(503);
    expect(answered.body.reason).toBe('wallet_reset');

    const m3 = await merchantWith(() => ({ status: 500 }));
    const s3 = await startMock(createWallet({ secret: SECRET }), {
      profile: { extra: { notify: { timeScale: 0.002 } } },
    });
    await payTrade(s3, m3, { style: 'wechat' });
    await m3.waitFor((r) => r.length === 1);
    await s3.close();
    await sleep(150);
    expect(m3.received).toHaveLength(1);
  });

  it('validates the notify knobs of the profile, naming the field', async () => {
    const s = await wallet();
    const bad = await call(s.url, 'PUT', '/__chaos', {
      extra: { notify: { lossRate: 2, reorder: { windowMs: 0 }, bogus: 1 } },
    });
    expect(bad.status).toBe(400);
    const fields = bad.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining(['extra.notify.lossRate', 'extra.notify.reorder.windowMs']),
    );
    const good = await call(s.url, 'PATCH', '/__chaos', { extra: { notify: { lossRate: 0.2 } } });
    expect(good.status).toBe(200);
    expect(good.body.profile.extra.notify.lossRate).toBe(0.2);
  });
});
