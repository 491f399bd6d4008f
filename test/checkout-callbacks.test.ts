// Wallet notifications into the checkout over real HTTP, real Redis and the
// real wallet mock: a lost notification is recovered by the hardened
// reconciler (the order still ends paid, "paid but processing" of seed 003),
// and duplicated, reordered and early notifications change nothing: one paid
// order, one capture (I5, I7).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Mode } from '../checkout/config.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { call } from './support/http.ts';
import {
  createOrder,
  expectAuditOk,
  ledgerOf,
  payOrder,
  quiesce,
  seedSale,
  startAllMocks,
  startStack,
  STEADY,
  waitFor,
  waitForState,
  type Mocks,
  type Stack,
} from './support/checkout.ts';

const PREFIX = 'tco-callbacks';
let redis: RedisHandle;
let mocks: Mocks;
const stacks: Partial<Record<Mode, Stack>> = {};

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(31);
  for (const mode of ['naive', 'hardened'] as const)
    stacks[mode] = await startStack({
      redisUrl: redis.url,
      mocks,
      mode,
      prefix: `${PREFIX}-${mode}`,
      // 60 s to pay (no expiry here); paying orders are queried after 50 ms.
      set: [...STEADY, 'timeScale=0.01', 'paymentTtlMs=6000000'],
    });
});
afterAll(async () => {
  for (const s of Object.values(stacks)) await s?.close();
  await mocks?.close();
  await redis?.close();
});
beforeEach(async () => {
  await mocks.reset();
});

interface Notice {
  outTradeNo: string;
  state: string;
  attempts: { result: string; duplicate: boolean }[];
}
const notices = async (): Promise<Notice[]> =>
  (await call(mocks.urls.wallet, 'GET', '/v1/notifications')).body.data;

async function walletProfile(extra: Record<string, unknown>) {
  const r = await call(mocks.urls.wallet, 'PUT', '/__chaos', { extra });
  expect(r.status, r.text).toBe(200);
}

async function orderEvents(s: Stack): Promise<Record<string, number>> {
  const text = (await call(s.url, 'GET', '/metrics')).text;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(
    /^flashcrowd_checkout_order_events_total\{event="([^"]+)"[^}]*\} (\S+)$/gm,
  ))
    out[m[1]!] = Number(m[2]);
  return out;
}

describe('a lost notification (hardened)', () => {
  it('is recovered by the reconciler: the order still ends paid, with one capture', async () => {
    const s = stacks.hardened!;
    await seedSale(s.url, [{ id: 'lip', stock: 5 }]);
    // The buyer takes 400 ms to pay in the app; the shopper's request gives up
    // at 150 ms; every notification attempt is lost (the whole schedule in ~1 s).
    await walletProfile({
      payDelayMs: { dist: 'fixed', ms: 400 },
      notify: { lossRate: 1, timeScale: 0.00001 },
    });
    const before = (await orderEvents(s)).paid_by_reconciler ?? 0;
    const ids: string[] = [];
    for (const [user, channel] of [
      ['alice', 'alipay'],
      ['bob', 'wechat'],
    ]) {
      const o = await createOrder(s.url, { user, sku: 'lip', channel });
      const p = await payOrder(s.url, o.body.id, {}, { 'x-request-deadline-ms': '150' });
      expect(p.status, p.text).toBe(202);
      expect(p.body).toMatchObject({ state: 'paying', reason: 'payment_pending_confirmation' });
      ids.push(o.body.id);
    }
    for (const id of ids) {
      const o = await waitForState(s.url, id, ['paid']);
      const { captures, refunds } = await ledgerOf(mocks, id);
      expect(captures).toHaveLength(1);
      expect(refunds).toHaveLength(0);
      expect(o.paymentRef).toBe(captures[0]!.tradeNo);
    }
    expect((await orderEvents(s)).paid_by_reconciler).toBe(before + 2);
    // Every notification attempt was lost: the wallet gave up on both notices.
    const log = await waitFor('the wallet to give up notifying', async () => {
      const l = (await notices()).filter((n) => ids.includes(n.outTradeNo));
      return l.length === 2 && l.every((n) => n.state === 'gave_up') ? l : undefined;
    });
    for (const n of log)
      expect(new Set(n.attempts.map((a) => a.result))).toEqual(new Set(['dropped']));
    expect(await s.store.snapshot('lip')).toMatchObject({ available: 3, reserved: 0, sold: 2 });
    expectAuditOk(await quiesce(s));
  });
});

describe('a lost notification after failover to the wallet (hardened)', () => {
  it('is found at the wallet though the order began on the card', async () => {
    const s = stacks.hardened!;
    await seedSale(s.url, [{ id: 'lip', stock: 5 }]);
    await walletProfile({
      payDelayMs: { dist: 'fixed', ms: 400 },
      notify: { lossRate: 1, timeScale: 0.00001 },
    });
    const o = await createOrder(s.url, { user: 'carol', sku: 'lip' });
    expect(o.body.channel).toBe('card');
    // The card is refused (do_not_honor: the channel, not the shopper), the
    // checkout fails over to alipay, and gives up waiting for the buyer.
    const p = await payOrder(
      s.url,
      o.body.id,
      { card: '4000000000000002', fallbackChannels: ['alipay'] },
      { 'x-request-deadline-ms': '150' },
    );
    expect(p.status, p.text).toBe(202);
    const paid = await waitForState(s.url, o.body.id, ['paid']);
    const { captures, refunds } = await ledgerOf(mocks, o.body.id);
    expect(captures).toHaveLength(1);
    expect(refunds).toHaveLength(0);
    expect(paid.paymentRef).toBe(captures[0]!.tradeNo);
    expectAuditOk(await quiesce(s));
  });
});

describe.each(['naive', 'hardened'] as const)(
  'duplicated, reordered and early notifications (%s)',
  (mode) => {
    it('change nothing: one paid order and one capture each', async () => {
      const s = stacks[mode]!;
      const ORDERS = 10;
      await seedSale(s.url, [{ id: 'lip', stock: ORDERS }]);
      // Every attempt delivered twice, first attempts held 100 ms then sent newest
      // first, and the pay answer waits until the notification went out.
      await walletProfile({
        notify: {
          duplicateRate: 1,
          reorder: { windowMs: 100, order: 'reverse' },
          notifyBeforeResponseRate: 1,
          timeScale: 0.001,
        },
      });
      const before = (await orderEvents(s)).notify_received ?? 0;
      const created = await Promise.all(
        Array.from({ length: ORDERS }, (_, i) =>
          createOrder(s.url, {
            user: `u${i}`,
            sku: 'lip',
            channel: i % 2 ? 'wechat' : 'alipay',
          }),
        ),
      );
      const ids = created.map((r) => r.body.id as string);
      const paid = await Promise.all(ids.map((id) => payOrder(s.url, id)));
      for (const p of paid) {
        expect(p.status, p.text).toBe(200);
        expect(p.body.state).toBe('paid');
      }
      const log = await waitFor('every notice acked', async () => {
        const l = (await notices()).filter((n) => ids.includes(n.outTradeNo));
        return l.length === ORDERS && l.every((n) => n.state === 'acked') ? l : undefined;
      });
      // The chaos happened: each notice was delivered twice.
      for (const n of log) expect(n.attempts.some((a) => a.duplicate)).toBe(true);
      await waitFor(
        'the checkout to take every delivery',
        async () => ((await orderEvents(s)).notify_received ?? 0) - before >= 2 * ORDERS,
      );
      await quiesce(s);
      for (const id of ids) {
        const { captures, refunds } = await ledgerOf(mocks, id);
        expect(captures).toHaveLength(1);
        expect(refunds).toHaveLength(0);
        expect((await s.store.get(id))!).toMatchObject({
          state: 'paid',
          paymentRef: captures[0]!.tradeNo,
        });
      }
      expect(await s.store.counters('lip')).toEqual({});
      expect(await s.store.snapshot('lip')).toMatchObject({
        available: 0,
        reserved: 0,
        sold: ORDERS,
      });
      expectAuditOk(await s.audit());
    });
  },
);
