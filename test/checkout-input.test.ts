// Bad input on every checkout route, over real HTTP: a 4xx whose JSON body
// names each bad field (`errors: [{field, reason}]`) and a machine-readable
// reason; nothing reserved, locked or charged (the stock snapshot, the coupon
// and the ledgers are unchanged); and the service answers the next request.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { signBody } from '../mock-gateways/wallet/notify.ts';
import { call, rawRequest } from './support/http.ts';
import {
  createOrder,
  expectAuditOk,
  issueCoupon,
  seedSale,
  startAllMocks,
  startStack,
  STEADY,
  type Mocks,
  type Stack,
} from './support/checkout.ts';

const PREFIX = 'tco-input';
let redis: RedisHandle;
let mocks: Mocks;
let s: Stack;
let order: string;
let coupon: string;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(5);
  s = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'hardened',
    prefix: PREFIX,
    set: [...STEADY, 'timeScale=0.01', 'paymentTtlMs=6000000'],
  });
});
afterAll(async () => {
  await s?.close();
  await mocks?.close();
  await redis?.close();
});
beforeEach(async () => {
  await mocks.reset();
  await seedSale(s.url, [{ id: 'lip', stock: 10 }], {
    campaignId: 'live',
    budget: 10,
    discount: 500,
  });
  coupon = await issueCoupon(mocks.urls.coupon, 'live', 'alice');
  const o = await createOrder(s.url, { user: 'alice', sku: 'lip' });
  expect(o.status).toBe(201);
  order = o.body.id;
});

interface Case {
  what: string;
  method: string;
  path: () => string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  /** Fields the answer must name (each in `errors`). */
  fields: string[];
  reason?: string;
}

const longKey = 'k'.repeat(256);
const cases: Case[] = [
  // POST /v1/orders
  {
    what: 'no body',
    method: 'POST',
    path: () => '/v1/orders',
    status: 400,
    fields: ['user', 'sku'],
  },
  {
    what: 'every field wrong',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: '', sku: 'bad sku!', quantity: 0, coupon: '', channel: 'paypal' },
    status: 400,
    fields: ['user', 'sku', 'quantity', 'coupon', 'channel'],
  },
  {
    what: 'a fractional quantity',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip', quantity: 1.5 },
    status: 400,
    fields: ['quantity'],
  },
  {
    what: 'quantity as a string',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip', quantity: '2' },
    status: 400,
    fields: ['quantity'],
  },
  {
    what: 'quantity over 100',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip', quantity: 101 },
    status: 400,
    fields: ['quantity'],
  },
  {
    what: 'an unknown field',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip', colour: 'red' },
    status: 400,
    fields: ['colour'],
  },
  {
    what: 'a user id over 64 characters',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'u'.repeat(65), sku: 'lip' },
    status: 400,
    fields: ['user'],
  },
  {
    what: 'a JSON array',
    method: 'POST',
    path: () => '/v1/orders',
    body: [{ user: 'bob', sku: 'lip' }],
    status: 400,
    fields: ['(body)'],
  },
  {
    what: 'JSON that does not parse',
    method: 'POST',
    path: () => '/v1/orders',
    body: '{"user": "bob", "sku": ',
    status: 400,
    fields: ['(body)'],
    reason: 'invalid_json',
  },
  {
    what: 'an empty Idempotency-Key',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip' },
    headers: { 'idempotency-key': '' },
    status: 400,
    fields: ['Idempotency-Key'],
  },
  {
    what: 'an Idempotency-Key over 255 characters',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip' },
    headers: { 'idempotency-key': longKey },
    status: 400,
    fields: ['Idempotency-Key'],
  },
  {
    what: 'a deadline that is not a number',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip' },
    headers: { 'x-request-deadline-ms': 'soon' },
    status: 400,
    fields: ['x-request-deadline-ms'],
  },
  {
    what: 'a zero deadline',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'lip' },
    headers: { 'x-request-deadline-ms': '0' },
    status: 400,
    fields: ['x-request-deadline-ms'],
  },
  {
    what: 'a SKU not in the sale',
    method: 'POST',
    path: () => '/v1/orders',
    body: { user: 'bob', sku: 'nope' },
    status: 404,
    fields: ['sku'],
    reason: 'unknown_sku',
  },
  // GET /v1/orders
  { what: 'no user', method: 'GET', path: () => '/v1/orders', status: 400, fields: ['user'] },
  {
    what: 'an unknown query parameter',
    method: 'GET',
    path: () => '/v1/orders?user=alice&sort=desc',
    status: 400,
    fields: ['sort'],
  },
  {
    what: 'a repeated user',
    method: 'GET',
    path: () => '/v1/orders?user=alice&user=bob',
    status: 400,
    fields: ['user'],
  },
  // GET /v1/orders/:id
  {
    what: 'an unknown order',
    method: 'GET',
    path: () => '/v1/orders/lip.doesnotexist',
    status: 404,
    fields: ['id'],
    reason: 'order_not_found',
  },
  {
    what: 'a malformed order id',
    method: 'GET',
    path: () => '/v1/orders/%20%20',
    status: 404,
    fields: ['id'],
    reason: 'order_not_found',
  },
  // POST /v1/orders/:id/pay
  {
    what: 'pay: every field wrong',
    method: 'POST',
    path: () => `/v1/orders/${order}/pay`,
    body: { channel: 'paypal', card: '42', fallbackChannels: ['card', 'cash'] },
    status: 400,
    fields: ['channel', 'card', 'fallbackChannels.1'],
  },
  {
    what: 'pay: a card number that fails the Luhn check',
    method: 'POST',
    path: () => `/v1/orders/${order}/pay`,
    body: { card: '4242424242424241' },
    status: 400,
    fields: ['card'],
  },
  {
    what: 'pay: an unknown field',
    method: 'POST',
    path: () => `/v1/orders/${order}/pay`,
    body: { cvv: '123' },
    status: 400,
    fields: ['cvv'],
  },
  {
    what: 'pay: too many fallback channels',
    method: 'POST',
    path: () => `/v1/orders/${order}/pay`,
    body: { fallbackChannels: ['card', 'alipay', 'wechat', 'card'] },
    status: 400,
    fields: ['fallbackChannels'],
  },
  {
    what: 'pay: JSON that does not parse',
    method: 'POST',
    path: () => `/v1/orders/${order}/pay`,
    body: '{',
    status: 400,
    fields: ['(body)'],
    reason: 'invalid_json',
  },
  {
    what: 'pay: a bad deadline',
    method: 'POST',
    path: () => `/v1/orders/${order}/pay`,
    body: {},
    headers: { 'x-request-deadline-ms': '600001' },
    status: 400,
    fields: ['x-request-deadline-ms'],
  },
  {
    what: 'pay: an unknown order',
    method: 'POST',
    path: () => '/v1/orders/lip.doesnotexist/pay',
    body: {},
    status: 404,
    fields: ['id'],
    reason: 'order_not_found',
  },
  // POST /v1/orders/:id/cancel
  {
    what: 'cancel: an unknown order',
    method: 'POST',
    path: () => '/v1/orders/lip.doesnotexist/cancel',
    status: 404,
    fields: ['id'],
    reason: 'order_not_found',
  },
  {
    what: 'cancel: an unknown field',
    method: 'POST',
    path: () => `/v1/orders/${order}/cancel`,
    body: { reason: 'changed my mind' },
    status: 400,
    fields: ['reason'],
  },
  // POST /v1/notify/:style
  {
    what: 'notify: an unknown style',
    method: 'POST',
    path: () => '/v1/notify/paypal',
    body: { out_trade_no: 'x' },
    status: 400,
    fields: ['style'],
  },
  {
    what: 'notify: no signature',
    method: 'POST',
    path: () => '/v1/notify/alipay',
    body: { out_trade_no: 'x', trade_no: 'tr_1', trade_status: 'TRADE_SUCCESS' },
    status: 401,
    fields: ['x-flashcrowd-signature'],
    reason: 'bad_signature',
  },
  {
    what: 'notify: a forged signature',
    method: 'POST',
    path: () => '/v1/notify/wechat',
    body: { out_trade_no: 'x', transaction_id: 'tr_1', trade_state: 'SUCCESS' },
    headers: { 'x-flashcrowd-signature': `sha256=${'0'.repeat(64)}` },
    status: 401,
    fields: ['x-flashcrowd-signature'],
    reason: 'bad_signature',
  },
  // POST /admin/sale
  {
    what: 'sale: every field wrong',
    method: 'POST',
    path: () => '/admin/sale',
    body: {
      skus: [
        { id: 'ok', price: 0, stock: -1, limit: 1 },
        { id: 'ok', price: 1, stock: 1 },
      ],
      coupon: { campaignId: '', budget: -1, discount: 0 },
    },
    status: 400,
    fields: [
      'skus.0.price',
      'skus.0.stock',
      'skus.1.id',
      'coupon.campaignId',
      'coupon.budget',
      'coupon.discount',
    ],
  },
  {
    what: 'sale: no SKUs',
    method: 'POST',
    path: () => '/admin/sale',
    body: { skus: [] },
    status: 400,
    fields: ['skus'],
  },
];

describe('bad input on every checkout route', () => {
  it.each(cases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const stockBefore = await s.store.snapshot('lip');
    const ordersBefore = (await s.store.allOrders('lip')).map((o) => [o.id, o.state]).sort();
    const r = await call(s.url, c.method, c.path(), c.body, c.headers);
    expect(r.status, r.text).toBe(c.status);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    expect(typeof r.body.reason, r.text).toBe('string');
    if (c.reason) expect(r.body.reason).toBe(c.reason);
    expect(Array.isArray(r.body.errors), r.text).toBe(true);
    const named = (r.body.errors as { field: string; reason: string }[]).map((e) => e.field);
    for (const f of c.fields) expect(named, r.text).toContain(f);
    for (const e of r.body.errors) expect(typeof e.reason).toBe('string');

    // Nothing reserved, nothing changed, nothing charged.
    expect(await s.store.snapshot('lip')).toEqual(stockBefore);
    expect((await s.store.allOrders('lip')).map((o) => [o.id, o.state]).sort()).toEqual(
      ordersBefore,
    );
    expect((await call(mocks.urls.bank, 'GET', '/v1/statement')).body.totals.captures).toBe(0);
    expect((await call(mocks.urls.coupon, 'GET', `/v1/coupons/${coupon}`)).body.state).toBe(
      'ISSUED',
    );
    // And the next request is served.
    const next = await createOrder(s.url, { user: 'next-shopper', sku: 'lip' });
    expect(next.status, next.text).toBe(201);
  });

  it('refuses a body over 256 kB with 413 naming the body, and serves the next request', async () => {
    const before = await s.store.snapshot('lip');
    const r = await call(s.url, 'POST', '/v1/orders', {
      user: 'bob',
      sku: 'lip',
      pad: 'x'.repeat(300_000),
    });
    expect(r.status).toBe(413);
    expect(r.body.errors).toEqual([{ field: '(body)', reason: 'larger than 256 kB' }]);
    expect(await s.store.snapshot('lip')).toEqual(before);
    expect((await call(s.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('survives a connection that sends half a request and goes away', async () => {
    const before = await s.store.snapshot('lip');
    const out = await rawRequest(`${s.url}/v1/orders`, {
      method: 'POST',
      body: { user: 'bob', sku: 'lip' },
      headers: { 'content-length': '1000' },
      timeoutMs: 200,
    });
    expect(out.kind).toBe('timeout');
    expect(await s.store.snapshot('lip')).toEqual(before);
    expect((await createOrder(s.url, { user: 'carol', sku: 'lip' })).status).toBe(201);
  });

  it('answers a signed notification without an order id 400, naming the field', async () => {
    const raw = JSON.stringify({
      trade_no: 'tr_1',
      trade_status: 'TRADE_SUCCESS',
      total_amount: '1.00',
    });
    const r = await call(s.url, 'POST', '/v1/notify/alipay', raw, {
      'x-flashcrowd-signature': signBody(raw, s.co.config.params.walletSecret),
    });
    expect(r.status, r.text).toBe(400);
    expect(r.body.errors.map((e: { field: string }) => e.field)).toContain('out_trade_no');
    expectAuditOk(await s.audit());
  });
});
