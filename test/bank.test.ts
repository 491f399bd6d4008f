// The mock bank over real HTTP: test-card declines, idempotency keys,
// velocity risk control, asynchronous settlement, refunds, the statement,
// and bad input on every route.
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_CARDS } from '../mock-gateways/bank/cards.ts';
import { createBank } from '../mock-gateways/bank/service.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { call, rawRequest, startMock, type JsonResponse } from './support/http.ts';

const running: RunningService[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});
async function bank(profile?: unknown) {
  const s = await startMock(createBank(), { profile });
  running.push(s);
  return s;
}
let n = 0;
const pay = (card = '4242424242424242', extra: Record<string, unknown> = {}) => ({
  orderId: `ord-${++n}`,
  amount: 2599,
  currency: 'CNY',
  card: { number: card },
  ...extra,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('test cards', () => {
  it('every card in the table answers as documented', async () => {
    const s = await bank({ extra: { velocity: false } });
    for (const [number, card] of Object.entries(TEST_CARDS)) {
      const r = await call(s.url, 'POST', '/v1/payments', pay(number));
      const b = card.behaviour;
      if (b.outcome === 'success')
        expect(r, number).toMatchObject({
          status: 200,
          body: { status: 'succeeded', captured: true },
        });
      if (b.outcome === 'processing')
        expect(r, number).toMatchObject({
          status: 202,
          body: { status: 'processing', captured: false },
        });
      if (b.outcome === 'decline') {
        expect(r.status, number).toBe(402);
        expect(r.body, number).toMatchObject({
          status: 'declined',
          reason: b.reason,
          captured: false,
        });
        expect(r.body.message.length).toBeGreaterThan(10);
      }
    }
  });

  it('any other Luhn-valid number succeeds; the brand and last four are reported', async () => {
    const s = await bank();
    const r = await call(s.url, 'POST', '/v1/payments', pay('5105105105105100'));
    expect(r.body).toMatchObject({
      status: 'succeeded',
      card: { brand: 'mastercard', last4: '5100' },
    });
  });

  it('an amount over the limit is declined amount_too_large', async () => {
    const s = await bank({ extra: { amountLimit: 10_000 } });
    const r = await call(s.url, 'POST', '/v1/payments', { ...pay(), amount: 10_001 });
    expect(r).toMatchObject({ status: 402, body: { reason: 'amount_too_large' } });
    expect((await call(s.url, 'POST', '/v1/payments', { ...pay(), amount: 10_000 })).status).toBe(
      200,
    );
  });
});

describe('idempotency keys', () => {
  it('the same key and body replay the first answer, with one capture in the ledger', async () => {
    const s = await bank();
    const body = pay();
    const a = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-1' });
    const b = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-1' });
    expect(b.status).toBe(a.status);
    expect(b.body).toEqual(a.body);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect((await call(s.url, 'GET', '/v1/statement')).body.totals.captures).toBe(1);
  });

  it('the same key with another body is 422 idempotency_key_reused', async () => {
    const s = await bank();
    const body = pay();
    await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-2' });
    const r = await call(
      s.url,
      'POST',
      '/v1/payments',
      { ...body, amount: 1 },
      { 'idempotency-key': 'k-2' },
    );
    expect(r).toMatchObject({ status: 422, body: { reason: 'idempotency_key_reused' } });
  });

  it('a key whose first request is still running is 409 idempotency_key_in_use', async () => {
    const s = await bank({ latency: { dist: 'fixed', ms: 300 } });
    const body = pay();
    const first = call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-3' });
    await sleep(50);
    const second = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-3' });
    expect(second).toMatchObject({ status: 409, body: { reason: 'idempotency_key_in_use' } });
    expect((await first).status).toBe(200);
    expect(
      (await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-3' })).headers.get(
        'idempotent-replayed',
      ),
    ).toBe('true');
  });

  it('a caller that times out while the bank is slow does not free the key: the charge still happens once and a retry replays it (I5)', async () => {
    const s = await bank({ latency: { dist: 'fixed', ms: 400 }, extra: { velocity: false } });
    const body = pay();
    // The caller gives up after 100 ms, as a checkout's timeout does; the bank keeps going.
    const first = await rawRequest(`${s.url}/v1/payments`, {
      body,
      headers: { 'idempotency-key': 'k-slow' },
      timeoutMs: 100,
    });
    expect(first.kind).toBe('timeout');
    // Retried with the same key while the first is still under way: 409, never a second charge.
    const during = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-slow' });
    expect(during).toMatchObject({ status: 409, body: { reason: 'idempotency_key_in_use' } });
    await sleep(500);
    const after = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-slow' });
    expect(after).toMatchObject({ status: 200, body: { status: 'succeeded' } });
    expect(after.headers.get('idempotent-replayed')).toBe('true');
    const st = (await call(s.url, 'GET', '/v1/statement')).body;
    expect(st.entries.filter((e: { orderId: string }) => e.orderId === body.orderId)).toHaveLength(
      1,
    );
  });

  it('a request refused by a fault before the operation runs frees its key for the retry', async () => {
    const s = await bank({ extra: { velocity: false } });
    const body = pay();
    const r1 = await rawRequest(`${s.url}/v1/payments`, {
      body,
      headers: { 'idempotency-key': 'k-reset', 'x-fault-kind': 'reset' },
    });
    expect(r1.kind).toBe('reset');
    const r2 = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-reset' });
    expect(r2).toMatchObject({ status: 200, body: { status: 'succeeded' } });
    expect(r2.headers.get('idempotent-replayed')).toBeNull();
  });

  it('after an ambiguous reset, a retry with the same key gets the success, not a second charge (I5)', async () => {
    const s = await bank();
    const body = pay();
    const r1 = await rawRequest(`${s.url}/v1/payments`, {
      body,
      headers: { 'idempotency-key': 'k-4', 'x-fault-kind': 'reset', 'x-fault-ambiguous': 'true' },
    });
    expect(r1.kind).toBe('reset');
    const r2 = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-4' });
    expect(r2).toMatchObject({ status: 200, body: { status: 'succeeded' } });
    const st = (await call(s.url, 'GET', '/v1/statement')).body;
    expect(st.entries.filter((e: { orderId: string }) => e.orderId === body.orderId)).toHaveLength(
      1,
    );
  });

  it('without a key, a retry after an ambiguous reset charges twice (what the naive checkout does)', async () => {
    const s = await bank();
    const body = pay();
    await rawRequest(`${s.url}/v1/payments`, {
      body,
      headers: { 'x-fault-kind': 'reset', 'x-fault-ambiguous': 'true' },
    });
    await call(s.url, 'POST', '/v1/payments', body);
    const st = (await call(s.url, 'GET', '/v1/statement')).body;
    expect(st.entries.filter((e: { orderId: string }) => e.orderId === body.orderId)).toHaveLength(
      2,
    );
  });

  it('an injected 503 before the bank acted releases the key, so a retry is processed', async () => {
    const s = await bank();
    const body = pay();
    expect(
      (
        await call(s.url, 'POST', '/v1/payments', body, {
          'idempotency-key': 'k-5',
          'x-fault-abort': '503',
        })
      ).status,
    ).toBe(503);
    const r = await call(s.url, 'POST', '/v1/payments', body, { 'idempotency-key': 'k-5' });
    expect(r.status).toBe(200);
    expect(r.headers.get('idempotent-replayed')).toBeNull();
  });
});

describe('velocity risk control', () => {
  it('declines attempts past maxPerUser in the window (frantic re-clicks)', async () => {
    const s = await bank({ extra: { velocity: { windowMs: 60_000, maxPerUser: 3 } } });
    const statuses: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(
        s.url,
        'POST',
        '/v1/payments',
        pay('4242424242424242', { userId: 'u-busy' }),
      );
      statuses.push(r.body.reason ?? r.body.status);
    }
    expect(statuses).toEqual([
      'succeeded',
      'succeeded',
      'succeeded',
      'card_velocity_exceeded',
      'card_velocity_exceeded',
    ]);
    expect(
      (await call(s.url, 'POST', '/v1/payments', pay('4242424242424242', { userId: 'u-calm' })))
        .status,
    ).toBe(200);
  });

  it('declines attempts past maxPerCard, across users', async () => {
    const s = await bank({ extra: { velocity: { windowMs: 60_000, maxPerCard: 2 } } });
    const reasons = [];
    for (let i = 0; i < 3; i++)
      reasons.push(
        (await call(s.url, 'POST', '/v1/payments', pay('5555555555554444', { userId: `u${i}` })))
          .body.reason ?? 'ok',
      );
    expect(reasons).toEqual(['ok', 'ok', 'card_velocity_exceeded']);
  });

  it('the window slides: attempts older than windowMs no longer count', async () => {
    const s = await bank({ extra: { velocity: { windowMs: 200, maxPerUser: 1 } } });
    expect(
      (await call(s.url, 'POST', '/v1/payments', pay('4242424242424242', { userId: 'u-w' })))
        .status,
    ).toBe(200);
    expect(
      (await call(s.url, 'POST', '/v1/payments', pay('4242424242424242', { userId: 'u-w' })))
        .status,
    ).toBe(402);
    await sleep(250);
    expect(
      (await call(s.url, 'POST', '/v1/payments', pay('4242424242424242', { userId: 'u-w' })))
        .status,
    ).toBe(200);
  });
});

describe('asynchronous settlement', () => {
  it('processing payments settle later as succeeded and only then enter the statement', async () => {
    const s = await bank({
      extra: { processing: { rate: 1, settleMs: { dist: 'fixed', ms: 150 } } },
    });
    const r = await call(s.url, 'POST', '/v1/payments', pay());
    expect(r).toMatchObject({ status: 202, body: { status: 'processing' } });
    expect((await call(s.url, 'GET', '/v1/statement')).body.totals.captures).toBe(0);
    await sleep(250);
    expect((await call(s.url, 'GET', `/v1/payments/${r.body.id}`)).body).toMatchObject({
      status: 'succeeded',
      captured: true,
    });
    expect((await call(s.url, 'GET', '/v1/statement')).body.totals.captures).toBe(1);
  });

  it('failRate settles processing payments as failed with processing_error, never captured', async () => {
    const s = await bank({
      extra: { processing: { rate: 1, failRate: 1, settleMs: { dist: 'fixed', ms: 50 } } },
    });
    const r = await call(s.url, 'POST', '/v1/payments', pay());
    await sleep(150);
    expect((await call(s.url, 'GET', `/v1/payments/${r.body.id}`)).body).toMatchObject({
      status: 'failed',
      reason: 'processing_error',
      captured: false,
    });
    expect((await call(s.url, 'GET', '/v1/statement')).body.totals.captures).toBe(0);
  });
});

describe('refunds and the statement', () => {
  it('partial then full refunds, each in the statement; totals add up', async () => {
    const s = await bank();
    const p = (await call(s.url, 'POST', '/v1/payments', pay())).body;
    expect(
      (await call(s.url, 'POST', '/v1/refunds', { paymentId: p.id, amount: 599 })).body,
    ).toMatchObject({ amount: 599, status: 'succeeded' });
    expect((await call(s.url, 'POST', '/v1/refunds', { paymentId: p.id })).body.amount).toBe(2000);
    expect((await call(s.url, 'POST', '/v1/refunds', { paymentId: p.id })).body.reason).toBe(
      'already_refunded',
    );
    const st = (await call(s.url, 'GET', '/v1/statement')).body;
    expect(st.totals).toEqual({ captures: 1, captured: 2599, refunds: 2, refunded: 2599, net: 0 });
    expect((await call(s.url, 'GET', `/v1/payments/${p.id}`)).body.amountRefunded).toBe(2599);
  });

  it('pages the statement: limit and cursor give every entry once, in order, with whole-range totals on each page', async () => {
    const s = await bank();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(
        (await call(s.url, 'POST', '/v1/payments', pay(undefined, { orderId: `o-${i}` }))).body.id,
      );
    await call(s.url, 'POST', '/v1/refunds', { paymentId: ids[1] });
    const whole = (await call(s.url, 'GET', '/v1/statement')).body;
    expect(whole.entries).toHaveLength(6);
    expect(whole.next).toBeUndefined();
    const paged: unknown[] = [];
    let cursor: number | undefined = 0;
    let pages = 0;
    while (cursor !== undefined) {
      const r: JsonResponse = await call(s.url, 'GET', `/v1/statement?limit=4&cursor=${cursor}`);
      expect(r.status, r.text).toBe(200);
      expect(r.body.entries.length).toBeLessThanOrEqual(4);
      expect(r.body.totals).toEqual(whole.totals);
      paged.push(...r.body.entries);
      cursor = r.body.next;
      pages += 1;
    }
    expect(pages).toBe(2);
    expect(paged).toEqual(whole.entries);
    // A cursor past the end is an empty last page, not an error.
    const end = (await call(s.url, 'GET', '/v1/statement?limit=4&cursor=99')).body;
    expect(end.entries).toEqual([]);
    expect(end.next).toBeUndefined();
  });

  it('refunding more than was captured names the amount field; refunding a declined payment is 409', async () => {
    const s = await bank();
    const p = (await call(s.url, 'POST', '/v1/payments', pay())).body;
    const over = await call(s.url, 'POST', '/v1/refunds', { paymentId: p.id, amount: 999_999 });
    expect(over.status).toBe(400);
    expect(over.body.errors[0].field).toBe('amount');
    const d = (await call(s.url, 'POST', '/v1/payments', pay('4000000000009995'))).body;
    expect(await call(s.url, 'POST', '/v1/refunds', { paymentId: d.id })).toMatchObject({
      status: 409,
      body: { reason: 'payment_not_captured' },
    });
  });

  it('refund idempotency keys replay the refund instead of refunding twice', async () => {
    const s = await bank();
    const p = (await call(s.url, 'POST', '/v1/payments', pay())).body;
    const a = await call(
      s.url,
      'POST',
      '/v1/refunds',
      { paymentId: p.id, amount: 100 },
      { 'idempotency-key': 'rf-1' },
    );
    const b = await call(
      s.url,
      'POST',
      '/v1/refunds',
      { paymentId: p.id, amount: 100 },
      { 'idempotency-key': 'rf-1' },
    );
    expect(b.body.id).toBe(a.body.id);
    expect((await call(s.url, 'GET', '/v1/statement')).body.totals.refunds).toBe(1);
  });

  it('payments are listed by order, declined attempts included', async () => {
    const s = await bank();
    const body = pay('4000000000009995');
    await call(s.url, 'POST', '/v1/payments', body);
    await call(s.url, 'POST', '/v1/payments', { ...body, card: { number: '4242424242424242' } });
    const list = await call(s.url, 'GET', `/v1/payments?orderId=${body.orderId}`);
    expect(list.body.data.map((p: { status: string }) => p.status)).toEqual([
      'declined',
      'succeeded',
    ]);
  });

  it('POST /__reset empties the ledger', async () => {
    const s = await bank();
    await call(s.url, 'POST', '/v1/payments', pay());
    await call(s.url, 'POST', '/__reset');
    expect((await call(s.url, 'GET', '/v1/statement')).body.totals.captures).toBe(0);
  });
});

describe('bad input on every route', () => {
  const cases: [string, string, unknown, string][] = [
    ['POST', '/v1/payments', { ...pay(), amount: 0 }, 'amount'],
    ['POST', '/v1/payments', { ...pay(), amount: 10.5 }, 'amount'],
    ['POST', '/v1/payments', { ...pay(), amount: '100' }, 'amount'],
    ['POST', '/v1/payments', { ...pay(), currency: 'yuan' }, 'currency'],
    ['POST', '/v1/payments', { ...pay(), orderId: '' }, 'orderId'],
    [
      'POST',
      '/v1/payments',
      { amount: 1, currency: 'CNY', card: { number: '4242424242424242' } },
      'orderId',
    ],
    ['POST', '/v1/payments', { ...pay(), card: { number: '4242424242424241' } }, 'card.number'],
    ['POST', '/v1/payments', { ...pay(), card: { number: '42' } }, 'card.number'],
    [
      'POST',
      '/v1/payments',
      { ...pay(), card: { number: '4242424242424242', cvc: 'abc' } },
      'card.cvc',
    ],
    ['POST', '/v1/payments', { ...pay(), colour: 'red' }, 'colour'],
    ['POST', '/v1/payments', '{"orderId": "x",', '(body)'],
    ['POST', '/v1/payments', '[1,2]', '(body)'],
    ['POST', '/v1/refunds', { amount: 5 }, 'paymentId'],
    ['POST', '/v1/refunds', { paymentId: 'pay_1', amount: -5 }, 'amount'],
    ['GET', '/v1/payments', undefined, 'orderId'],
    ['GET', '/v1/payments?orderId=a&x=1', undefined, 'x'],
    ['GET', '/v1/statement?since=yesterday', undefined, 'since'],
    ['GET', '/v1/statement?limit=0', undefined, 'limit'],
    ['GET', '/v1/statement?limit=2.5', undefined, 'limit'],
    ['GET', '/v1/statement?limit=2&cursor=-1', undefined, 'cursor'],
    ['GET', '/v1/statement?cursor=x', undefined, 'cursor'],
  ];
  it.each(cases)(
    '%s %s (%j) is a 400 naming %s, and the next request is served',
    async (method, path, body, field) => {
      const s = await bank();
      const r = await call(s.url, method, path, body);
      expect(r.status).toBe(400);
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(r.body.message).toBeTruthy();
      expect((await call(s.url, 'POST', '/v1/payments', pay())).status).toBe(200);
      expect((await call(s.url, 'GET', '/v1/statement')).body.totals.captures).toBe(1);
    },
  );

  it('unknown payment ids and routes are 404 with a reason', async () => {
    const s = await bank();
    expect(await call(s.url, 'GET', '/v1/payments/pay_nope')).toMatchObject({
      status: 404,
      body: { reason: 'payment_not_found' },
    });
    expect(await call(s.url, 'POST', '/v1/refunds', { paymentId: 'pay_nope' })).toMatchObject({
      status: 404,
      body: { reason: 'payment_not_found' },
    });
    expect(await call(s.url, 'GET', '/v2/anything')).toMatchObject({
      status: 404,
      body: { reason: 'no_such_route' },
    });
  });

  it('an over-long idempotency key names the header', async () => {
    const s = await bank();
    const r = await call(s.url, 'POST', '/v1/payments', pay(), {
      'idempotency-key': 'k'.repeat(300),
    });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].field).toBe('Idempotency-Key');
  });
});
