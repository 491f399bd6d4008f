// The audit's proof: each class of bug it claims to catch, planted in a copy of
// the checkout (test/support/mutant.ts: one exact string replacement, which
// must match once), is caught by the named invariant with the order's id, and
// the total a budget reads is non-zero. Each test drives the mutant's real
// checkout (hardened, on real Redis, against the real mocks) with a few HTTP
// requests, then runs the real audit of this tree over its Redis keys and the
// mocks' ledgers. The control runs every script against an unmutated copy and
// finds nothing broken, so each failure is the mutation's.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningCheckout } from '../checkout/service.ts';
import { connectRedis, Store, type RedisClient } from '../checkout/store.ts';
import { audit, formatAudit, type AuditReport, type InvariantId } from '../harness/audit.ts';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { call } from './support/http.ts';
import {
  createOrder,
  expectAuditOk,
  getOrder,
  issueCoupon,
  payOrder,
  seedSale,
  startAllMocks,
  STEADY,
  waitFor,
  sleep,
  type Mocks,
  type SaleSku,
} from './support/checkout.ts';
import {
  ambiguousProxy,
  copyCheckout,
  type AmbiguousProxy,
  type Mutation,
} from './support/mutant.ts';

const PRICE = 9_900;
const DECLINED_CARD = '4000000000009995'; // insufficient_funds
const COUPON = { campaignId: 'mut', budget: 10, discount: 100 };

let redis: RedisHandle;
let client: RedisClient;
let mocks: Mocks;
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
  client = connectRedis(redis.url);
  mocks = await startAllMocks(11);
});
afterAll(async () => {
  client?.disconnect();
  await mocks?.close();
  await redis?.close();
});
beforeEach(async () => {
  await mocks.reset();
});

/** A started checkout of a copy, and what a script needs to drive it. */
interface Drive {
  url: string;
  prefix: string;
}

interface Script {
  /** What the test verifies. */
  name: string;
  mutation: Mutation;
  /** The invariants the mutation must break, each naming the script's order. */
  breaks: InvariantId[];
  /** Checkout settings on top of the hardened build and STEADY. */
  set?: string[];
  sale?: SaleSku[];
  coupon?: boolean;
  /** Put a proxy in front of the bank that fakes a 503 for the first payment it forwards. */
  ambiguousFirstPayment?: boolean;
  /** Drive the checkout; returns the order the breaks must name. */
  run(d: Drive): Promise<string>;
  /** What else the report must say (the totals a budget reads). */
  totals(r: AuditReport, order: string): void;
}

const SKU = 'mut';
const EXPIRY = ['paymentTtlMs=300'];

async function order(d: Drive, user: string, extra: Record<string, unknown> = {}) {
  const r = await createOrder(d.url, { user, sku: SKU, ...extra });
  expect(r.status, r.text).toBe(201);
  return r.body.id as string;
}

/** Sweep until the order has expired (the deadline is paymentTtlMs away). */
async function expire(d: Drive, id: string) {
  await waitFor(`order ${id} to expire`, async () => {
    await call(d.url, 'POST', '/admin/sweep');
    return (await getOrder(d.url, id)).state === 'expired';
  });
}

/** Wait until the wallet's notification of `tradeNo` is acknowledged and the checkout consumed it. */
async function notified(d: Drive, tradeNo: string) {
  await waitFor(`the notification of ${tradeNo} to be acknowledged`, async () => {
    const r = await call(mocks.urls.wallet, 'GET', `/v1/notifications?tradeNo=${tradeNo}`);
    return (r.body.data as { state: string }[]).some((n) => n.state === 'acked');
  });
  const stream = `${d.prefix}:payments`;
  await waitFor('the payment stream to be consumed', async () => {
    const last = (await client.xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0];
    const groups = (await client.xinfo('GROUPS', stream)) as unknown[][];
    const g = Object.fromEntries(
      (groups[0] ?? []).flatMap((v, i, a) => (i % 2 ? [] : [[String(v), a[i + 1]]])),
    ) as Record<string, unknown>;
    return last !== undefined && g['last-delivered-id'] === last && Number(g.pending) === 0;
  });
}

const SCRIPTS: Script[] = [
  {
    name: 'stock kept after a payment failure (release skipped): I3 names the failed order',
    mutation: {
      name: 'release skipped after a payment failure',
      file: 'checkout/checkout.ts',
      find: "await this.store.release(order.id, 'payment_failed', reason, now, ['paying']);",
      replace: "await this.store.transition(order.id, 'payment_failed', reason, now, ['paying']);",
    },
    breaks: ['I3'],
    async run(d) {
      const id = await order(d, 'fails');
      const p = await payOrder(d.url, id, { card: DECLINED_CARD });
      expect(p.status, p.text).toBe(402);
      return id;
    },
    totals(r) {
      expect(r.totals).toMatchObject({ stockLeakOrdersEnded: 1, stockLeakUnits: 1 });
      expect(r.totals.stockLeaks).toBeGreaterThan(0);
    },
  },
  {
    name: 'release.lua giving no stock back (the order ended, its shopper still counted): I3 names the order from `bought`',
    mutation: {
      name: 'release.lua keeps the stock and the shopper count',
      file: 'checkout/lua/release.lua',
      find: "redis.call('HINCRBY', KEYS[1], 'reserved', -qty)\nredis.call('HINCRBY', KEYS[1], 'available', qty)\nif redis.call('HINCRBY', KEYS[2], o[3], -qty) <= 0 then redis.call('HDEL', KEYS[2], o[3]) end\n",
      replace: '',
    },
    breaks: ['I3'],
    async run(d) {
      const id = await order(d, 'unreleased');
      const p = await payOrder(d.url, id, { card: DECLINED_CARD });
      expect(p.status, p.text).toBe(402);
      return id;
    },
    totals(r) {
      expect(r.totals).toMatchObject({
        stockLeakOrdersEnded: 1,
        stockLeakUnits: 1,
        stockLeakUnitsUnknown: 0,
      });
    },
  },
  {
    name: 'a skipped availability check (oversell): I2 names the order beyond the stock',
    mutation: {
      name: 'availability check skipped',
      file: 'checkout/lua/reserve.lua',
      find: "if available < qty then return {'sold_out', '', ''} end\n",
      replace: '',
    },
    breaks: ['I2'],
    sale: [{ id: SKU, stock: 1 }],
    async run(d) {
      const first = await order(d, 'first');
      expect((await payOrder(d.url, first)).status).toBe(200);
      await sleep(5); // the second order is created later: it is the one beyond the stock
      const r = await createOrder(d.url, { user: 'second', sku: SKU });
      if (r.status !== 201) {
        expect(r.body.reason, r.text).toBe('sold_out');
        return first; // the control: nothing to name
      }
      expect((await payOrder(d.url, r.body.id)).status).toBe(200);
      return r.body.id as string;
    },
    totals(r) {
      expect(r.totals.oversoldUnits).toBe(1);
    },
  },
  {
    name: 'a lost idempotency key on payment (a retry captures again): I5 names the double-charged order',
    mutation: {
      name: 'idempotency key lost on the card payment',
      file: 'checkout/checkout.ts',
      find: 'idempotencyKey: key,\n            safeToRetry: key !== undefined,',
      replace: 'idempotencyKey: undefined,\n            safeToRetry: key !== undefined,',
    },
    breaks: ['I5'],
    ambiguousFirstPayment: true,
    async run(d) {
      const id = await order(d, 'retried');
      const p = await payOrder(d.url, id);
      expect(p.status, p.text).toBe(200);
      return id;
    },
    totals(r) {
      expect(r.totals.doubleCharges).toBe(1);
    },
  },
  {
    name: 'a revived expired order (a late capture sets it paid): I9 names it',
    mutation: {
      name: 'late capture pays an ended order',
      file: 'checkout/lua/confirm.lua',
      find: "if st == 'pending_payment' or st == 'paying' then",
      replace: 'if true then -- mutant: any state is paid',
    },
    breaks: ['I9'],
    set: EXPIRY,
    async run(d) {
      const id = await order(d, 'late', { channel: 'wechat' });
      await expire(d, id);
      // The shopper pays in the wallet app after the order expired.
      const t = await call(mocks.urls.wallet, 'POST', '/v1/trades', {
        outTradeNo: id,
        amount: PRICE,
        notifyUrl: `${d.url}/v1/notify/wechat`,
        style: 'wechat',
      });
      expect(t.status, t.text).toBe(201);
      const p = await call(mocks.urls.wallet, 'POST', `/v1/trades/${t.body.tradeNo}/pay`, {});
      expect(p.status, p.text).toBe(200);
      await notified(d, t.body.tradeNo);
      expect((await getOrder(d.url, id)).state).toBe('paid');
      return id;
    },
    totals(r) {
      expect(r.totals.latePaymentsRevived).toBe(1);
      expect(r.totals.latePayments).toBeGreaterThan(0);
    },
  },
  {
    name: 'a coupon never returned after a payment failure: I8 names the failed order',
    mutation: {
      name: 'coupon release skipped after a payment failure',
      file: 'checkout/checkout.ts',
      find: '      if (order.coupon) await this.releaseCouponOfEnded(order.coupon, order.id);\n',
      replace: '',
    },
    breaks: ['I8'],
    coupon: true,
    async run(d) {
      const code = await issueCoupon(mocks.urls.coupon, COUPON.campaignId, 'coupon');
      const id = await order(d, 'coupon', { coupon: code });
      const p = await payOrder(d.url, id, { card: DECLINED_CARD });
      expect(p.status, p.text).toBe(402);
      return id;
    },
    totals(r) {
      expect(r.totals.couponLeaks).toBe(1);
    },
  },
  {
    name: 'a duplicate notification applied twice (taken for a second capture, the only payment refunded): I7 and I11 name the order',
    mutation: {
      name: 'duplicate payment result not recognised',
      file: 'checkout/lua/confirm.lua',
      find: "  if o[4] == ARGV[1] then return answer('duplicate', st) end\n",
      replace: '',
    },
    breaks: ['I7', 'I11'],
    async run(d) {
      const id = await order(d, 'notified', { channel: 'wechat' });
      const p = await payOrder(d.url, id);
      expect(p.status, p.text).toBe(200);
      // The wallet also notifies the payment the pay call answered: a duplicate result.
      await notified(d, p.body.paymentRef);
      expect((await getOrder(d.url, id)).state).toBe('paid');
      return id;
    },
    totals(r) {
      expect(r.totals).toMatchObject({ paidWithoutCapture: 1, shortage: 1, shortageAmount: PRICE });
    },
  },
  {
    name: 'a wrong amount charged: I11 names the order and sums the difference',
    mutation: {
      name: 'card charged one fen more than the order',
      file: 'checkout/checkout.ts',
      find: "amount: order.amount,\n            currency: 'CNY',",
      replace: "amount: order.amount + 1,\n            currency: 'CNY',",
    },
    breaks: ['I11'],
    async run(d) {
      const id = await order(d, 'overcharged');
      const p = await payOrder(d.url, id);
      expect(p.status, p.text).toBe(200);
      return id;
    },
    totals(r) {
      expect(r.totals).toMatchObject({ amountMismatches: 1, amountMismatchAmount: 1 });
      expect(r.byId.I11.note).toMatch(/amount mismatches: 1 paid orders/);
    },
  },
  {
    name: 'a lost release on expiry: I3 names the expired order holding its stock',
    mutation: {
      name: 'expiry without release',
      file: 'checkout/checkout.ts',
      find: "const r = await this.store.release(id, 'expired', 'payment_deadline_passed', now);",
      replace:
        "const r = await this.store.transition(id, 'expired', 'payment_deadline_passed', now, ['pending_payment', 'paying']);",
    },
    breaks: ['I3'],
    set: EXPIRY,
    async run(d) {
      const id = await order(d, 'expires');
      await expire(d, id);
      return id;
    },
    totals(r) {
      expect(r.totals).toMatchObject({ stockLeakOrdersEnded: 1, stockLeakUnits: 1 });
      expect(r.totals.stockLeaks).toBeGreaterThan(0);
    },
  },
];

/** Run `script` on a started copy of the checkout; returns the audit and the order it names. */
async function drive(
  start: (bank: string, set: string[]) => Promise<RunningCheckout>,
  script: Script,
): Promise<{ report: AuditReport; order: string; faked?: number }> {
  const prefix = `mut${process.pid}-${(prefixes += 1)}`;
  let proxy: AmbiguousProxy | undefined;
  let co: RunningCheckout | undefined;
  const store = new Store(client, prefix);
  try {
    if (script.ambiguousFirstPayment)
      proxy = await ambiguousProxy(mocks.urls.bank, 'POST', '/v1/payments');
    co = await start(proxy?.url ?? mocks.urls.bank, [
      `keyPrefix=${prefix}`,
      ...STEADY,
      ...(script.set ?? []),
    ]);
    await seedSale(
      co.url,
      script.sale ?? [{ id: SKU, stock: 5 }],
      script.coupon ? COUPON : undefined,
    );
    const id = await script.run({ url: co.url, prefix });
    const report = await audit({ store, ...mocks.urls });
    return { report, order: id, ...(proxy ? { faked: proxy.faked } : {}) };
  } finally {
    await co?.close();
    await proxy?.close();
    await store.clear();
  }
}

describe('the audit catches each planted bug, naming the order', () => {
  for (const script of SCRIPTS)
    it(script.name, async () => {
      const copy = copyCheckout(script.mutation);
      try {
        const {
          report: r,
          order: id,
          faked,
        } = await drive(
          (bank, set) =>
            copy.startCheckout({ redisUrl: redis.url, ...mocks.urls, bank, mode: 'hardened', set }),
          script,
        );
        const why = `${script.mutation.name}\n${formatAudit(r)}`;
        if (script.ambiguousFirstPayment) expect(faked, why).toBe(1);
        expect(r.quiescent, why).toBe(true);
        for (const inv of script.breaks) {
          expect(r.byId[inv].ok, `${inv}: ${why}`).toBe(false);
          expect(r.byId[inv].examples, `${inv}: ${why}`).toContain(id);
          expect(r.byId[inv].count, `${inv}: ${why}`).toBeGreaterThanOrEqual(1);
        }
        script.totals(r, id);
      } finally {
        copy.remove();
      }
    });

  it('the unmutated copy passes every script with no broken invariant (the control)', async () => {
    const copy = copyCheckout();
    try {
      for (const script of SCRIPTS) {
        await mocks.reset();
        const { report: r, faked } = await drive(
          (bank, set) =>
            copy.startCheckout({ redisUrl: redis.url, ...mocks.urls, bank, mode: 'hardened', set }),
          script,
        );
        if (script.ambiguousFirstPayment) expect(faked, script.name).toBe(1);
        expectAuditOk(r);
        expect(r.totals, script.name).toMatchObject({
          stockLeaks: 0,
          stockLeakUnits: 0,
          oversoldUnits: 0,
          doubleCharges: 0,
          couponLeaks: 0,
          latePaymentsRevived: 0,
          paidWithoutCapture: 0,
          amountMismatches: 0,
        });
      }
    } finally {
      copy.remove();
    }
  });

  it('refuses a mutation whose string is not in the file exactly once', () => {
    const gone: Mutation = {
      name: 'a string the checkout no longer has',
      file: 'checkout/checkout.ts',
      find: 'this string is not in the checkout',
      replace: '',
    };
    expect(() => copyCheckout(gone)).toThrow(
      /mutation "a string the checkout no longer has".* 0 times/,
    );
    const twice: Mutation = {
      ...gone,
      name: 'an ambiguous string',
      find: 'await this.store.release(',
    };
    expect(() => copyCheckout(twice)).toThrow(/mutation "an ambiguous string".* [2-9] times/);
  });
});
