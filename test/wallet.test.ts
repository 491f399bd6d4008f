// The wallet mock's trade state machine, ledger, refusals and input checks,
// over real HTTP on loopback. Notifications are covered in wallet-notify.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_FACTORIES } from '../mock-gateways/index.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { startMerchant, type Merchant } from '../mock-gateways/wallet/merchant.ts';
import { createWallet } from '../mock-gateways/wallet/service.ts';
import { call, startMock } from './support/http.ts';

let svc: RunningService;
let merchant: Merchant;
let seq = 0;

/** A fresh merchant order id, so tests sharing the service never collide. */
const out = (label: string) => `${label}-${++seq}`;

async function createTrade(
  base: string,
  fields: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  return call(
    base,
    'POST',
    '/v1/trades',
    {
      outTradeNo: out('order'),
      amount: 1234,
      notifyUrl: merchant.url,
      style: 'alipay',
      ...fields,
    },
    headers,
  );
}

async function paidTrade(base: string, fields: Record<string, unknown> = {}) {
  const t = await createTrade(base, fields);
  expect(t.status).toBe(201);
  const p = await call(base, 'POST', `/v1/trades/${t.body.tradeNo}/pay`, {});
  expect(p.status).toBe(200);
  return p.body;
}

beforeAll(async () => {
  merchant = await startMerchant();
  svc = await startMock(createWallet({ notifyTimeScale: 0.001 }), { seed: 1 });
});

afterAll(async () => {
  await svc?.close();
  await merchant?.close();
});

describe('wallet trades', () => {
  it('is registered as the "wallet" service factory', () => {
    const def = SERVICE_FACTORIES.wallet?.();
    expect(def?.name).toBe('wallet');
    expect(def?.operations).toContain('trades.pay');
  });

  it('creates a WAIT_BUYER_PAY trade with a counter tradeNo and CNY by default, found by tradeNo and by outTradeNo', async () => {
    const fresh = await startMock(createWallet(), { seed: 9 });
    try {
      const a = await createTrade(fresh.url, { outTradeNo: 'A-1', subject: 'lipstick' });
      const b = await createTrade(fresh.url, { outTradeNo: 'A-2', currency: 'usd' });
      expect(a.status).toBe(201);
      expect(a.body).toMatchObject({
        tradeNo: 'tr_00000001',
        outTradeNo: 'A-1',
        status: 'WAIT_BUYER_PAY',
        amount: 1234,
        currency: 'CNY',
        subject: 'lipstick',
        amountRefunded: 0,
        style: 'alipay',
      });
      expect(a.body.payUrl).toBe(`${fresh.url}/v1/trades/tr_00000001/pay`);
      expect(b.body).toMatchObject({ tradeNo: 'tr_00000002', currency: 'USD' });

      const got = await call(fresh.url, 'GET', '/v1/trades/tr_00000001');
      expect(got.status).toBe(200);
      expect(got.body).toEqual(a.body);
      const listed = await call(fresh.url, 'GET', '/v1/trades?outTradeNo=A-2');
      expect(listed.body).toEqual({ object: 'list', data: [b.body] });
      const none = await call(fresh.url, 'GET', '/v1/trades?outTradeNo=nope');
      expect(none.body.data).toEqual([]);
      const missing = await call(fresh.url, 'GET', '/v1/trades/tr_99999999');
      expect(missing.status).toBe(404);
      expect(missing.body.reason).toBe('trade_not_found');
    } finally {
      await fresh.close();
    }
  });

  it('re-creating an outTradeNo with the same fields returns the same trade; other fields are refused 409 out_trade_no_conflict', async () => {
    const id = out('dup');
    const first = await createTrade(svc.url, { outTradeNo: id });
    const again = await createTrade(svc.url, { outTradeNo: id });
    expect(again.status).toBe(200);
    expect(again.body.tradeNo).toBe(first.body.tradeNo);

    const other = await createTrade(svc.url, { outTradeNo: id, amount: 999 });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({
      reason: 'out_trade_no_conflict',
      tradeNo: first.body.tradeNo,
      fields: ['amount'],
      subCode: 'ACQ.CONTEXT_INCONSISTENT',
    });
  });

  it('replays the first answer for the same Idempotency-Key and refuses it with another body (422)', async () => {
    const key = { 'Idempotency-Key': out('key') };
    const id = out('idem');
    const a = await createTrade(svc.url, { outTradeNo: id }, key);
    const b = await createTrade(svc.url, { outTradeNo: id }, key);
    expect(b.status).toBe(201);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(b.body).toEqual(a.body);
    const c = await createTrade(svc.url, { outTradeNo: id, amount: 1 }, key);
    expect(c.status).toBe(422);
    expect(c.body.reason).toBe('idempotency_key_reused');
  });

  it('paying captures once: SUCCESS with one ledger capture, and a second pay is refused 409 trade_already_paid', async () => {
    const t = await createTrade(svc.url);
    const tradeNo = t.body.tradeNo as string;
    const p = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/pay`, { buyerId: 'buyer-1' });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ status: 'SUCCESS', buyerId: 'buyer-1' });
    expect(p.body.paidAt).toEqual(expect.any(String));

    const again = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/pay`);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      reason: 'trade_already_paid',
      status: 'SUCCESS',
      subCode: 'ACQ.TRADE_HAS_SUCCESS',
    });
    const st = await call(svc.url, 'GET', '/v1/statement');
    const captures = st.body.entries.filter(
      (e: { type: string; tradeNo: string }) => e.type === 'capture' && e.tradeNo === tradeNo,
    );
    expect(captures).toHaveLength(1);
    expect(captures[0]).toMatchObject({ amount: 1234, currency: 'CNY', id: tradeNo });
  });

  it('a payerror outcome leaves the trade PAYERROR with a reason and the upstream code; the buyer may pay again', async () => {
    const t = await createTrade(svc.url, { style: 'wechat' });
    const tradeNo = t.body.tradeNo as string;
    const e = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/pay`, { outcome: 'payerror' });
    expect(e.status).toBe(402);
    expect(e.body).toMatchObject({
      status: 'PAYERROR',
      reason: 'balance_insufficient',
      subCode: 'NOTENOUGH',
    });
    const e2 = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/pay`, {
      outcome: 'payerror',
      reason: 'bank_error',
    });
    expect(e2.body).toMatchObject({ status: 'PAYERROR', reason: 'bank_error' });
    const ok = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/pay`);
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('SUCCESS');
    expect(ok.body.reason).toBeUndefined();
  });

  it('closes an unpaid or failed trade (closing again answers the same); a closed trade refuses pay and refund', async () => {
    const t = await createTrade(svc.url);
    const tradeNo = t.body.tradeNo as string;
    const c = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/close`);
    expect(c.status).toBe(200);
    expect(c.body.status).toBe('CLOSED');
    const c2 = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/close`, {});
    expect(c2.status).toBe(200);
    expect(c2.body.closedAt).toBe(c.body.closedAt);

    const p = await call(svc.url, 'POST', `/v1/trades/${tradeNo}/pay`);
    expect(p.status).toBe(409);
    expect(p.body).toMatchObject({ reason: 'trade_closed', subCode: 'ACQ.TRADE_HAS_CLOSE' });
    const r = await call(svc.url, 'POST', '/v1/refunds', { tradeNo });
    expect(r.status).toBe(409);
    expect(r.body.reason).toBe('trade_closed');

    const failed = await createTrade(svc.url);
    await call(svc.url, 'POST', `/v1/trades/${failed.body.tradeNo}/pay`, { outcome: 'payerror' });
    const cf = await call(svc.url, 'POST', `/v1/trades/${failed.body.tradeNo}/close`);
    expect(cf.body.status).toBe('CLOSED');
  });

  it('refuses to close a paid trade with 409 trade_already_paid', async () => {
    const paid = await paidTrade(svc.url);
    const c = await call(svc.url, 'POST', `/v1/trades/${paid.tradeNo}/close`);
    expect(c.status).toBe(409);
    expect(c.body).toMatchObject({ reason: 'trade_already_paid', status: 'SUCCESS' });
    const got = await call(svc.url, 'GET', `/v1/trades/${paid.tradeNo}`);
    expect(got.body.status).toBe('SUCCESS');
  });

  it('keeps the trade USERPAYING during payDelayMs, refusing close and a second pay with 409 trade_paying', async () => {
    const slow = await startMock(createWallet(), {
      seed: 2,
      profile: { extra: { payDelayMs: { dist: 'fixed', ms: 400 } } },
    });
    try {
      const t = await createTrade(slow.url);
      const tradeNo = t.body.tradeNo as string;
      const paying = call(slow.url, 'POST', `/v1/trades/${tradeNo}/pay`);
      let status = '';
      for (let i = 0; i < 100 && status !== 'USERPAYING'; i++) {
        status = (await call(slow.url, 'GET', `/v1/trades/${tradeNo}`)).body.status;
        if (status !== 'USERPAYING') await new Promise((r) => setTimeout(r, 2));
      }
      expect(status).toBe('USERPAYING');
      const close = await call(slow.url, 'POST', `/v1/trades/${tradeNo}/close`);
      expect(close.status).toBe(409);
      expect(close.body.reason).toBe('trade_paying');
      const second = await call(slow.url, 'POST', `/v1/trades/${tradeNo}/pay`);
      expect(second.status).toBe(409);
      expect(second.body.reason).toBe('trade_paying');
      const done = await paying;
      expect(done.status).toBe(200);
      expect(done.body.status).toBe('SUCCESS');
      const st = await call(slow.url, 'GET', '/v1/statement');
      expect(st.body.totals.captures).toBe(1);
    } finally {
      await slow.close();
    }
  });

  it('refunds partly then fully (trade REFUND), refusing over-refunds (400 amount), a third refund and unpaid trades', async () => {
    const paid = await paidTrade(svc.url, { amount: 1000 });
    const r1 = await call(svc.url, 'POST', '/v1/refunds', { tradeNo: paid.tradeNo, amount: 300 });
    expect(r1.status).toBe(200);
    expect(r1.body).toMatchObject({ amount: 300, status: 'SUCCESS', tradeNo: paid.tradeNo });
    const mid = await call(svc.url, 'GET', `/v1/trades/${paid.tradeNo}`);
    expect(mid.body).toMatchObject({ status: 'REFUND', amountRefunded: 300 });

    const over = await call(svc.url, 'POST', '/v1/refunds', { tradeNo: paid.tradeNo, amount: 701 });
    expect(over.status).toBe(400);
    expect(over.body.errors).toEqual([{ field: 'amount', reason: expect.stringContaining('700') }]);
    const rest = await call(svc.url, 'POST', '/v1/refunds', { tradeNo: paid.tradeNo });
    expect(rest.body.amount).toBe(700);
    const third = await call(svc.url, 'POST', '/v1/refunds', { tradeNo: paid.tradeNo, amount: 1 });
    expect(third.status).toBe(409);
    expect(third.body.reason).toBe('already_refunded');

    const unpaid = await createTrade(svc.url);
    const u = await call(svc.url, 'POST', '/v1/refunds', { tradeNo: unpaid.body.tradeNo });
    expect(u.status).toBe(409);
    expect(u.body.reason).toBe('trade_not_paid');
    const ghost = await call(svc.url, 'POST', '/v1/refunds', { tradeNo: 'tr_77777777' });
    expect(ghost.status).toBe(404);
  });

  it('replays a refund for the same Idempotency-Key instead of refunding twice', async () => {
    const paid = await paidTrade(svc.url, { amount: 500 });
    const key = { 'Idempotency-Key': out('refund-key') };
    const body = { tradeNo: paid.tradeNo, amount: 100 };
    const a = await call(svc.url, 'POST', '/v1/refunds', body, key);
    const b = await call(svc.url, 'POST', '/v1/refunds', body, key);
    expect(b.body).toEqual(a.body);
    const t = await call(svc.url, 'GET', `/v1/trades/${paid.tradeNo}`);
    expect(t.body.amountRefunded).toBe(100);
  });

  it("answers a statement in the bank's shape: capture and refund entries with totals and net", async () => {
    const fresh = await startMock(createWallet(), { seed: 3 });
    try {
      const p1 = await paidTrade(fresh.url, { amount: 1000, outTradeNo: 'S-1' });
      await paidTrade(fresh.url, { amount: 250, outTradeNo: 'S-2' });
      const unpaid = await createTrade(fresh.url, { outTradeNo: 'S-3' });
      await call(fresh.url, 'POST', `/v1/trades/${unpaid.body.tradeNo}/close`);
      await call(fresh.url, 'POST', '/v1/refunds', { tradeNo: p1.tradeNo, amount: 400 });
      const st = await call(fresh.url, 'GET', '/v1/statement');
      expect(st.status).toBe(200);
      expect(st.body.service).toBe('wallet');
      expect(
        st.body.entries.map((e: Record<string, unknown>) => [
          e.type,
          e.id,
          e.tradeNo,
          e.outTradeNo,
          e.amount,
          e.currency,
        ]),
      ).toEqual([
        ['capture', 'tr_00000001', 'tr_00000001', 'S-1', 1000, 'CNY'],
        ['capture', 'tr_00000002', 'tr_00000002', 'S-2', 250, 'CNY'],
        ['refund', 'rf_00000001', 'tr_00000001', 'S-1', 400, 'CNY'],
      ]);
      for (const e of st.body.entries) expect(Number.isNaN(Date.parse(e.at))).toBe(false);
      expect(st.body.totals).toEqual({
        captures: 2,
        captured: 1250,
        refunds: 1,
        refunded: 400,
        net: 850,
      });
      const later = await call(
        fresh.url,
        'GET',
        `/v1/statement?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
      );
      expect(later.body.entries).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it('risk control rejects a buyer over the velocity limit with PAYERROR risk_control_rejected; velocity false turns it off', async () => {
    const strict = await startMock(createWallet(), {
      seed: 4,
      profile: { extra: { velocity: { windowMs: 60_000, maxPerBuyer: 2 } } },
    });
    const lax = await startMock(createWallet(), {
      seed: 4,
      profile: { extra: { velocity: false } },
    });
    try {
      const outcomes = async (base: string) => {
        const res: string[] = [];
        for (let i = 0; i < 3; i++) {
          const t = await createTrade(base);
          const p = await call(base, 'POST', `/v1/trades/${t.body.tradeNo}/pay`, {
            buyerId: 'clicky',
          });
          res.push(p.body.reason ?? p.body.status);
        }
        return res;
      };
      expect(await outcomes(strict.url)).toEqual(['SUCCESS', 'SUCCESS', 'risk_control_rejected']);
      expect(await outcomes(lax.url)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
    } finally {
      await strict.close();
      await lax.close();
    }
  });

  it('an injected decline on trades.pay leaves the trade PAYERROR with that reason; on trades.create it makes no trade', async () => {
    const t = await createTrade(svc.url, { style: 'wechat' });
    const fault = { 'x-fault-kind': 'decline', 'x-fault-reason': 'risk_control_rejected' };
    const p = await call(svc.url, 'POST', `/v1/trades/${t.body.tradeNo}/pay`, {}, fault);
    expect(p.status).toBe(402);
    expect(p.body).toMatchObject({
      tradeNo: t.body.tradeNo,
      status: 'PAYERROR',
      reason: 'risk_control_rejected',
      subCode: 'TRADE_ERROR',
    });
    const id = out('declined');
    const c = await createTrade(svc.url, { outTradeNo: id }, fault);
    expect(c.status).toBe(402);
    expect(c.body.reason).toBe('risk_control_rejected');
    const listed = await call(svc.url, 'GET', `/v1/trades?outTradeNo=${id}`);
    expect(listed.body.data).toEqual([]);
    const unknown = await createTrade(svc.url, {}, { ...fault, 'x-fault-reason': 'nope' });
    expect(unknown.status).toBe(400);
  });

  it('refuses a non-loopback notifyUrl with 400 naming notifyUrl, accepts loopback forms, and allowRemoteNotify lifts the rule', async () => {
    for (const url of [
      'http://example.com/notify',
      'http://10.0.0.8/notify',
      'http://128.0.0.1/n',
      'http://localhost.evil.com/n',
      'ftp://127.0.0.1/n',
      'not a url',
    ]) {
      const r = await createTrade(svc.url, { notifyUrl: url });
      expect(r.status, url).toBe(400);
      expect(r.body.errors, url).toEqual([{ field: 'notifyUrl', reason: expect.any(String) }]);
    }
    for (const url of [
      'http://127.0.0.1:9/n',
      'http://127.1.2.3/n',
      'http://localhost:8080/n',
      'http://[::1]:8080/n',
    ]) {
      const r = await createTrade(svc.url, { notifyUrl: url });
      expect(r.status, url).toBe(201);
    }
    const open = await startMock(createWallet({ allowRemoteNotify: true }));
    try {
      const r = await createTrade(open.url, { notifyUrl: 'http://example.com/notify' });
      expect(r.status).toBe(201);
    } finally {
      await open.close();
    }
  });

  it('answers bad input on every route with 4xx JSON naming the field, then serves the next request', async () => {
    const paid = await paidTrade(svc.url);
    const long = 'k'.repeat(256);
    const cases: [string, string, unknown, string[], Record<string, string>?][] = [
      ['POST', '/v1/trades', {}, ['outTradeNo', 'amount', 'notifyUrl', 'style']],
      [
        'POST',
        '/v1/trades',
        { outTradeNo: 'x', amount: 1.5, notifyUrl: merchant.url, style: 'alipay' },
        ['amount'],
      ],
      [
        'POST',
        '/v1/trades',
        { outTradeNo: 'x', amount: 5, currency: 'RMBX', notifyUrl: merchant.url, style: 'paypal' },
        ['currency', 'style'],
      ],
      ['POST', '/v1/trades', '{"outTradeNo":', ['(body)']],
      [
        'POST',
        '/v1/trades',
        { outTradeNo: 'x', amount: 5, notifyUrl: merchant.url, style: 'alipay', colour: 'red' },
        ['colour'],
      ],
      [
        'POST',
        '/v1/trades',
        { outTradeNo: 'x', amount: 5, notifyUrl: merchant.url, style: 'alipay' },
        ['Idempotency-Key'],
        { 'Idempotency-Key': long },
      ],
      ['GET', '/v1/trades', undefined, ['outTradeNo']],
      ['GET', '/v1/trades/bad%20id', undefined, ['tradeNo']],
      ['POST', '/v1/trades/bad!id/pay', {}, ['tradeNo']],
      ['POST', `/v1/trades/${paid.tradeNo}/pay`, { outcome: 'maybe' }, ['outcome']],
      ['POST', `/v1/trades/${paid.tradeNo}/pay`, { reason: 'bank_error' }, ['reason']],
      ['POST', `/v1/trades/${paid.tradeNo}/pay`, { buyerId: 7 }, ['buyerId']],
      ['POST', `/v1/trades/${paid.tradeNo}/pay`, [], ['(body)']],
      ['POST', '/v1/trades/bad!id/close', undefined, ['tradeNo']],
      ['POST', `/v1/trades/${paid.tradeNo}/close`, { force: true }, ['force']],
      ['POST', '/v1/refunds', {}, ['tradeNo']],
      ['POST', '/v1/refunds', { tradeNo: paid.tradeNo, amount: 0 }, ['amount']],
      ['GET', '/v1/statement?since=yesterday', undefined, ['since']],
      ['GET', '/v1/statement?sinse=2026-01-01T00:00:00Z', undefined, ['sinse']],
      ['GET', '/v1/notifications?tradeNo=%24%24', undefined, ['tradeNo']],
    ];
    for (const [method, path, body, fields, headers] of cases) {
      const label = `${method} ${path} ${JSON.stringify(body)}`;
      const r = await call(svc.url, method, path, body, headers);
      expect(r.status, label).toBeGreaterThanOrEqual(400);
      expect(r.status, label).toBeLessThan(500);
      expect(r.body.reason, label).toEqual(expect.any(String));
      expect(r.body.errors.map((e: { field: string }) => e.field).sort(), label).toEqual(
        [...fields].sort(),
      );
      for (const e of r.body.errors) expect(e.reason, label).toEqual(expect.any(String));
      const next = await createTrade(svc.url);
      expect(next.status, `after ${label}`).toBe(201);
    }
  });

  it('forgets trades, ledger and counters on /__reset', async () => {
    const fresh = await startMock(createWallet(), { seed: 5 });
    try {
      await paidTrade(fresh.url, { outTradeNo: 'R-1' });
      const reset = await call(fresh.url, 'POST', '/__reset');
      expect(reset.status).toBe(200);
      expect((await call(fresh.url, 'GET', '/v1/trades?outTradeNo=R-1')).body.data).toEqual([]);
      expect((await call(fresh.url, 'GET', '/v1/statement')).body.totals.captures).toBe(0);
      const again = await createTrade(fresh.url, { outTradeNo: 'R-1' });
      expect(again.body.tradeNo).toBe('tr_00000001');
    } finally {
      await fresh.close();
    }
  });
});
