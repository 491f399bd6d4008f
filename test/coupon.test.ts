// The coupon mock over real HTTP on loopback: the coupon state machine, budget
// accounting under concurrency, campaign windows, per-user limits,
// idempotency, lock expiry, the statement, chaos declines and bad input.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCoupon } from '../mock-gateways/coupon/service.ts';
import { DECLINE_MESSAGES } from '../mock-gateways/coupon/schema.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { call, startMock, type JsonResponse } from './support/http.ts';

let svc: RunningService;
let base: string;

beforeAll(async () => {
  svc = await startMock(createCoupon());
  base = svc.url;
});
afterAll(async () => {
  await svc?.close();
});
beforeEach(async () => {
  expect((await call(base, 'POST', '/__reset')).status).toBe(200);
  expect((await call(base, 'DELETE', '/__chaos')).status).toBe(200);
});

const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
  call(base, 'POST', path, body, headers);
const get = (path: string) => call(base, 'GET', path);

let campaignN = 0;
async function campaign(over: Record<string, unknown> = {}): Promise<string> {
  campaignN += 1;
  const r = await post('/v1/campaigns', {
    id: `camp-${campaignN}`,
    name: 'Livestream 20:00',
    budget: 10,
    discount: { type: 'amount', value: 500 },
    ...over,
  });
  expect(r.status, r.text).toBe(201);
  return r.body.id as string;
}

async function issue(campaignId: string, userId: string): Promise<string> {
  const r = await post('/v1/coupons', { campaignId, userId });
  expect(r.status, r.text).toBe(201);
  expect(r.body.state).toBe('ISSUED');
  return r.body.code as string;
}

const lock = (code: string, body: Record<string, unknown>, headers?: Record<string, string>) =>
  post(`/v1/coupons/${code}/lock`, body, headers);
const consume = (code: string, orderId: string) => post(`/v1/coupons/${code}/consume`, { orderId });
const release = (code: string, orderId: string) => post(`/v1/coupons/${code}/release`, { orderId });
const state = async (code: string) => (await get(`/v1/coupons/${code}`)).body.state as string;

function expectDecline(r: JsonResponse, reason: string) {
  expect(r.status, r.text).toBe(402);
  expect(r.body).toMatchObject({ error: 'declined', reason });
  expect(typeof r.body.message).toBe('string');
}

function expectConflict(r: JsonResponse, reason: string) {
  expect(r.status, r.text).toBe(409);
  expect(r.body).toMatchObject({ error: reason, reason });
}

/** Poll `fn` until it returns true; fails after `limitMs` (a safety net, not a timing claim). */
async function waitFor(fn: () => Promise<boolean>, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const isoIn = (ms: number) => new Date(Date.now() + ms).toISOString();

describe('coupon state machine', () => {
  it('issue, lock and consume move a coupon ISSUED -> LOCKED -> USED and record each step with the order', async () => {
    const c = await campaign();
    const code = await issue(c, 'u1');
    const l = await lock(code, { orderId: 'o1', userId: 'u1' });
    expect(l.status, l.text).toBe(200);
    expect(l.body).toMatchObject({ code, state: 'LOCKED', orderId: 'o1', userId: 'u1' });
    const u = await consume(code, 'o1');
    expect(u.status, u.text).toBe(200);
    expect(u.body).toMatchObject({ code, state: 'USED', orderId: 'o1' });
    expect(typeof u.body.usedAt).toBe('string');
    expect(
      u.body.history.map((h: { type: string; orderId?: string }) => [h.type, h.orderId]),
    ).toEqual([
      ['issued', undefined],
      ['locked', 'o1'],
      ['consumed', 'o1'],
    ]);
    expect(await state(code)).toBe('USED');
  });

  it('release by the locking order returns the coupon to ISSUED, after which another order may lock it', async () => {
    const code = await issue(await campaign(), 'u1');
    expect((await lock(code, { orderId: 'o1' })).status).toBe(200);
    const r = await release(code, 'o1');
    expect(r.status, r.text).toBe(200);
    expect(r.body.state).toBe('ISSUED');
    expect(r.body.orderId).toBeUndefined();
    expect(r.body.history.at(-1)).toMatchObject({ type: 'released', orderId: 'o1' });
    const l2 = await lock(code, { orderId: 'o2' });
    expect(l2.status, l2.text).toBe(200);
    expect(l2.body).toMatchObject({ state: 'LOCKED', orderId: 'o2' });
  });

  it('/metrics reports the coupons locked now (coupons_locked, read by the cascade timeline)', async () => {
    const locked = async () => {
      const text = (await get('/metrics')).text;
      const line = text
        .split('\n')
        .find((l) => l.startsWith('flashcrowd_mock_level{') && l.includes('coupons_locked'));
      return Number(line?.split(' ').pop());
    };
    const camp = await campaign();
    const a = await issue(camp, 'u1');
    const b = await issue(camp, 'u2');
    expect(await locked()).toBe(0);
    expect((await lock(a, { orderId: 'o1' })).status).toBe(200);
    expect((await lock(b, { orderId: 'o2' })).status).toBe(200);
    expect(await locked()).toBe(2);
    expect((await release(a, 'o1')).status).toBe(200);
    expect((await consume(b, 'o2')).status).toBe(200);
    expect(await locked()).toBe(0);
  });

  it('locking again by the same order succeeds without a new transition', async () => {
    const code = await issue(await campaign(), 'u1');
    const first = await lock(code, { orderId: 'o1' });
    const again = await lock(code, { orderId: 'o1' });
    expect(again.status, again.text).toBe(200);
    expect(again.body).toMatchObject({
      state: 'LOCKED',
      orderId: 'o1',
      lockedAt: first.body.lockedAt,
    });
    expect(again.body.history.filter((h: { type: string }) => h.type === 'locked')).toHaveLength(1);
  });

  it('lock by another order is declined 402 locked_by_other_order and the lock holder is kept', async () => {
    const code = await issue(await campaign(), 'u1');
    await lock(code, { orderId: 'o1' });
    const r = await lock(code, { orderId: 'o2' });
    expectDecline(r, 'locked_by_other_order');
    expect(r.body).toMatchObject({ code, orderId: 'o2' });
    const now = await get(`/v1/coupons/${code}`);
    expect(now.body).toMatchObject({ state: 'LOCKED', orderId: 'o1' });
  });

  it('lock of a USED coupon is declined 402 already_used, even for the order that used it', async () => {
    const code = await issue(await campaign(), 'u1');
    await lock(code, { orderId: 'o1' });
    await consume(code, 'o1');
    expectDecline(await lock(code, { orderId: 'o2' }), 'already_used');
    expectDecline(await lock(code, { orderId: 'o1' }), 'already_used');
    expect(await state(code)).toBe('USED');
  });

  it('lock naming another shopper is declined 402 not_owner and the coupon stays ISSUED', async () => {
    const code = await issue(await campaign(), 'u1');
    expectDecline(await lock(code, { orderId: 'o1', userId: 'u2' }), 'not_owner');
    expect(await state(code)).toBe('ISSUED');
  });

  it('consume of an ISSUED (never locked) coupon is refused 409 not_locked', async () => {
    const code = await issue(await campaign(), 'u1');
    expectConflict(await consume(code, 'o1'), 'not_locked');
    expect(await state(code)).toBe('ISSUED');
  });

  it('consume by an order that does not hold the lock is refused 409 locked_by_other_order', async () => {
    const code = await issue(await campaign(), 'u1');
    await lock(code, { orderId: 'o1' });
    const r = await consume(code, 'o2');
    expectConflict(r, 'locked_by_other_order');
    expect(r.body).toMatchObject({ code, state: 'LOCKED', orderId: 'o1' });
    expect(await state(code)).toBe('LOCKED');
  });

  it('consume twice by the same order succeeds both times with a single consumed transition', async () => {
    const code = await issue(await campaign(), 'u1');
    await lock(code, { orderId: 'o1' });
    const a = await consume(code, 'o1');
    const b = await consume(code, 'o1');
    expect(a.status).toBe(200);
    expect(b.status, b.text).toBe(200);
    expect(b.body).toMatchObject({ state: 'USED', orderId: 'o1', usedAt: a.body.usedAt });
    expect(b.body.history.filter((h: { type: string }) => h.type === 'consumed')).toHaveLength(1);
  });

  it('consume of a coupon used by another order is refused 409 already_used', async () => {
    const code = await issue(await campaign(), 'u1');
    await lock(code, { orderId: 'o1' });
    await consume(code, 'o1');
    expectConflict(await consume(code, 'o2'), 'already_used');
  });

  it('release by an order that does not hold the lock is refused 409 locked_by_other_order', async () => {
    const code = await issue(await campaign(), 'u1');
    await lock(code, { orderId: 'o1' });
    expectConflict(await release(code, 'o2'), 'locked_by_other_order');
    expect((await get(`/v1/coupons/${code}`)).body).toMatchObject({
      state: 'LOCKED',
      orderId: 'o1',
    });
  });

  it('release of a USED coupon is refused 409 already_used and the coupon stays USED', async () => {
    const code = await issue(await campaign(), 'u1');
    await lock(code, { orderId: 'o1' });
    await consume(code, 'o1');
    expectConflict(await release(code, 'o1'), 'already_used');
    expect(await state(code)).toBe('USED');
  });

  it('release of an ISSUED coupon is a successful no-op that records nothing', async () => {
    const code = await issue(await campaign(), 'u1');
    const r = await release(code, 'o9');
    expect(r.status, r.text).toBe(200);
    expect(r.body.state).toBe('ISSUED');
    expect(r.body.history).toHaveLength(1);
  });

  it('lock after the campaign has ended is declined 402 campaign_ended', async () => {
    const c = await campaign({ endsAt: isoIn(300) });
    const code = await issue(c, 'u1');
    await waitFor(async () => (await get(`/v1/campaigns/${c}`)).body.status === 'ended');
    expectDecline(await lock(code, { orderId: 'o1' }), 'campaign_ended');
    expect(await state(code)).toBe('ISSUED');
  });

  it('a minimum order amount needs orderAmount (400), declines below it (402 order_below_minimum) and prices the discount', async () => {
    const c = await campaign({ minOrderAmount: 10_000, discount: { type: 'percent', value: 15 } });
    const code = await issue(c, 'u1');
    const missing = await lock(code, { orderId: 'o1' });
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toEqual([expect.objectContaining({ field: 'orderAmount' })]);
    expectDecline(await lock(code, { orderId: 'o1', orderAmount: 9_999 }), 'order_below_minimum');
    const ok = await lock(code, { orderId: 'o1', orderAmount: 12_345 });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toMatchObject({ state: 'LOCKED', orderAmount: 12_345, discountAmount: 1_851 });
  });

  it('unknown coupon codes and campaign ids answer 404 naming the field', async () => {
    for (const r of [
      await get('/v1/coupons/cpn_nope'),
      await lock('cpn_nope', { orderId: 'o1' }),
      await consume('cpn_nope', 'o1'),
      await release('cpn_nope', 'o1'),
    ]) {
      expect(r.status, r.text).toBe(404);
      expect(r.body).toMatchObject({ reason: 'coupon_not_found', errors: [{ field: 'code' }] });
    }
    const camp = await get('/v1/campaigns/nope');
    expect(camp.status).toBe(404);
    expect(camp.body).toMatchObject({ reason: 'campaign_not_found', errors: [{ field: 'id' }] });
    const iss = await post('/v1/coupons', { campaignId: 'nope', userId: 'u1' });
    expect(iss.status).toBe(404);
    expect(iss.body).toMatchObject({
      reason: 'campaign_not_found',
      errors: [{ field: 'campaignId' }],
    });
  });
});

describe('issuing: budget, campaign window, per-user limit', () => {
  it('500 concurrent issue requests on a budget of 100 issue exactly 100 and decline 400 budget_exhausted; the statement agrees', async () => {
    const c = await campaign({ budget: 100 });
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        post('/v1/coupons', { campaignId: c, userId: `u${i}` }),
      ),
    );
    const issued = answers.filter((r) => r.status === 201);
    const declined = answers.filter((r) => r.status === 402);
    expect(issued).toHaveLength(100);
    expect(declined).toHaveLength(400);
    for (const r of declined) expect(r.body.reason).toBe('budget_exhausted');
    expect(new Set(issued.map((r) => r.body.code)).size).toBe(100);

    const camp = await get(`/v1/campaigns/${c}`);
    expect(camp.body).toMatchObject({ issued: 100, remaining: 0, coupons: { ISSUED: 100 } });
    const st = await get('/v1/statement');
    expect(st.status).toBe(200);
    expect(st.body.service).toBe('coupon');
    expect(st.body.coupons).toHaveLength(100);
    expect(st.body.totals).toMatchObject({ coupons: 100, ISSUED: 100, LOCKED: 0, USED: 0 });
    expect(st.body.campaigns).toEqual([{ id: c, budget: 100, issued: 100, remaining: 0 }]);
    expect(st.body.declines).toEqual({ budget_exhausted: 400 });
    expect(new Set(st.body.coupons.map((x: { code: string }) => x.code))).toEqual(
      new Set(issued.map((r) => r.body.code)),
    );
  });

  it('a campaign that has not started declines 402 campaign_not_started and issues nothing', async () => {
    const c = await campaign({ startsAt: isoIn(3_600_000) });
    expect((await get(`/v1/campaigns/${c}`)).body.status).toBe('scheduled');
    const r = await post('/v1/coupons', { campaignId: c, userId: 'u1' });
    expectDecline(r, 'campaign_not_started');
    expect(r.body.campaignId).toBe(c);
    expect((await get(`/v1/campaigns/${c}`)).body).toMatchObject({ issued: 0, remaining: 10 });
  });

  it('a campaign that has ended declines 402 campaign_ended and issues nothing', async () => {
    const c = await campaign({ startsAt: isoIn(-7_200_000), endsAt: isoIn(-3_600_000) });
    expect((await get(`/v1/campaigns/${c}`)).body.status).toBe('ended');
    expectDecline(await post('/v1/coupons', { campaignId: c, userId: 'u1' }), 'campaign_ended');
    expect((await get(`/v1/campaigns/${c}`)).body.issued).toBe(0);
  });

  it('a campaign inside its window issues coupons', async () => {
    const c = await campaign({ startsAt: isoIn(-60_000), endsAt: isoIn(3_600_000) });
    expect((await get(`/v1/campaigns/${c}`)).body.status).toBe('active');
    await issue(c, 'u1');
  });

  it('the per-user limit declines 402 frequency_limited beyond perUserLimit, counting used and released coupons, per campaign', async () => {
    const c = await campaign({ perUserLimit: 2 });
    const a = await issue(c, 'u1');
    await issue(c, 'u1');
    await lock(a, { orderId: 'o1' });
    await release(a, 'o1');
    const third = await post('/v1/coupons', { campaignId: c, userId: 'u1' });
    expectDecline(third, 'frequency_limited');
    expect(third.body).toMatchObject({ perUserLimit: 2, userId: 'u1' });
    await issue(c, 'u2');
    await issue(await campaign(), 'u1');
    expect((await get(`/v1/campaigns/${c}`)).body.issued).toBe(3);
  });

  it('a budget of 0 declines the first issue, and a duplicate campaign id is refused 409', async () => {
    const c = await campaign({ budget: 0 });
    expectDecline(await post('/v1/coupons', { campaignId: c, userId: 'u1' }), 'budget_exhausted');
    const dup = await post('/v1/campaigns', {
      id: c,
      name: 'again',
      budget: 1,
      discount: { type: 'amount', value: 1 },
    });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ reason: 'campaign_exists', errors: [{ field: 'id' }] });
  });

  it('campaigns created without an id get generated distinct ids', async () => {
    const body = { name: 'n', budget: 1, discount: { type: 'amount', value: 1 } };
    const a = await post('/v1/campaigns', body);
    const b = await post('/v1/campaigns', body);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(a.body.id).not.toBe(b.body.id);
    expect(a.body).toMatchObject({ perUserLimit: 1, issued: 0, remaining: 1 });
  });
});

describe('idempotency (Idempotency-Key header)', () => {
  it('the same key and body replay the first issued coupon; only one coupon exists', async () => {
    const c = await campaign({ perUserLimit: 5 });
    const h = { 'Idempotency-Key': 'req-1' };
    const a = await post('/v1/coupons', { campaignId: c, userId: 'u1' }, h);
    const b = await post('/v1/coupons', { campaignId: c, userId: 'u1' }, h);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(b.body).toEqual(a.body);
    expect((await get(`/v1/campaigns/${c}`)).body.issued).toBe(1);
  });

  it('the same key with a different body is refused 422 idempotency_key_reused', async () => {
    const c = await campaign({ perUserLimit: 5 });
    const h = { 'Idempotency-Key': 'req-2' };
    expect((await post('/v1/coupons', { campaignId: c, userId: 'u1' }, h)).status).toBe(201);
    const r = await post('/v1/coupons', { campaignId: c, userId: 'u2' }, h);
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe('idempotency_key_reused');
    expect((await get(`/v1/campaigns/${c}`)).body.issued).toBe(1);
  });

  it('a replayed lock answers the original LOCKED coupon even after the coupon was consumed', async () => {
    const code = await issue(await campaign(), 'u1');
    const h = { 'Idempotency-Key': 'lock-1' };
    const first = await lock(code, { orderId: 'o1' }, h);
    await consume(code, 'o1');
    const replay = await lock(code, { orderId: 'o1' }, h);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect(replay.body.state).toBe('LOCKED');
  });

  it('keys on coupon routes are scoped per coupon: one key on two coupons locks both', async () => {
    const c = await campaign({ perUserLimit: 2 });
    const a = await issue(c, 'u1');
    const b = await issue(c, 'u1');
    const h = { 'Idempotency-Key': 'same' };
    const la = await lock(a, { orderId: 'o1' }, h);
    const lb = await lock(b, { orderId: 'o1' }, h);
    expect(la.body).toMatchObject({ code: a, state: 'LOCKED' });
    expect(lb.body).toMatchObject({ code: b, state: 'LOCKED' });
    expect(lb.headers.get('idempotent-replayed')).toBeNull();
  });

  it('a declined issue is stored and replayed as the same decline', async () => {
    const c = await campaign({ budget: 0 });
    const h = { 'Idempotency-Key': 'req-3' };
    const a = await post('/v1/coupons', { campaignId: c, userId: 'u1' }, h);
    const b = await post('/v1/coupons', { campaignId: c, userId: 'u1' }, h);
    expectDecline(a, 'budget_exhausted');
    expect(b.status).toBe(402);
    expect(b.body).toEqual(a.body);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect((await get('/v1/statement')).body.declines).toEqual({ budget_exhausted: 1 });
  });

  it('an ambiguous reset on lock takes effect; a retry under the same key replays the LOCKED answer', async () => {
    const code = await issue(await campaign(), 'u1');
    const h = { 'Idempotency-Key': 'lock-amb' };
    await expect(
      lock(code, { orderId: 'o1' }, { ...h, 'x-fault-kind': 'reset', 'x-fault-ambiguous': 'true' }),
    ).rejects.toThrow();
    expect(await state(code)).toBe('LOCKED');
    const retry = await lock(code, { orderId: 'o1' }, h);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toMatchObject({ code, state: 'LOCKED', orderId: 'o1' });
  });

  it('a 400 under a key is not stored: the corrected request under the same key succeeds', async () => {
    const c = await campaign();
    const h = { 'Idempotency-Key': 'req-4' };
    expect((await post('/v1/coupons', { campaignId: c }, h)).status).toBe(400);
    expect((await post('/v1/coupons', { campaignId: c, userId: 'u1' }, h)).status).toBe(201);
  });
});

describe('lock expiry', () => {
  it('lockTtlMs returns a LOCKED coupon to ISSUED by itself; a late consume gets 409 lock_expired; the statement counts it', async () => {
    const code = await issue(await campaign(), 'u1');
    const l = await lock(code, { orderId: 'o1', lockTtlMs: 50 });
    expect(l.body.state).toBe('LOCKED');
    expect(typeof l.body.lockExpiresAt).toBe('string');
    await waitFor(async () => (await state(code)) === 'ISSUED');
    const c = (await get(`/v1/coupons/${code}`)).body;
    expect(c.orderId).toBeUndefined();
    expect(c.history.at(-1)).toMatchObject({ type: 'expired', orderId: 'o1' });
    expectConflict(await consume(code, 'o1'), 'lock_expired');
    const st = (await get('/v1/statement')).body;
    expect(st.totals).toMatchObject({ ISSUED: 1, LOCKED: 0, locks: 1, expiredLocks: 1 });
    expect((await lock(code, { orderId: 'o2' })).body.state).toBe('LOCKED');
  });

  it("the profile's extra.lockTtlMs applies to locks that give no lockTtlMs", async () => {
    const put = await call(base, 'PUT', '/__chaos', { extra: { lockTtlMs: 50 } });
    expect(put.status, put.text).toBe(200);
    const code = await issue(await campaign(), 'u1');
    expect((await lock(code, { orderId: 'o1' })).body.lockExpiresAt).toEqual(expect.any(String));
    await waitFor(async () => (await state(code)) === 'ISSUED');
  });

  it('without any TTL a lock is held until released (the leak the audit looks for)', async () => {
    const code = await issue(await campaign(), 'u1');
    const l = await lock(code, { orderId: 'o1' });
    expect(l.body.lockExpiresAt).toBeUndefined();
    // A sentinel lock with a TTL expires; the coupon without one is still held afterwards.
    const sentinel = await issue(await campaign(), 'u2');
    await lock(sentinel, { orderId: 'o2', lockTtlMs: 30 });
    await waitFor(async () => (await state(sentinel)) === 'ISSUED');
    expect(await state(code)).toBe('LOCKED');
    expect((await get('/v1/statement?state=LOCKED')).body.coupons).toEqual([
      expect.objectContaining({ code, orderId: 'o1' }),
    ]);
  });

  it('consume and release before the TTL cancel the expiry', async () => {
    const c = await campaign({ perUserLimit: 3 });
    const used = await issue(c, 'u1');
    const released = await issue(c, 'u1');
    await lock(used, { orderId: 'o1', lockTtlMs: 40 });
    await lock(released, { orderId: 'o2', lockTtlMs: 40 });
    await consume(used, 'o1');
    await release(released, 'o2');
    // The same order locks again without a TTL: a stale timer would expire this lock.
    const relocked = await lock(released, { orderId: 'o2' });
    expect(relocked.body.state).toBe('LOCKED');
    expect(relocked.body.lockExpiresAt).toBeUndefined();
    // A sentinel with a longer TTL expires after both earlier timers would have fired.
    const sentinel = await issue(c, 'u1');
    await lock(sentinel, { orderId: 'o4', lockTtlMs: 80 });
    await waitFor(async () => (await state(sentinel)) === 'ISSUED');
    expect(await state(used)).toBe('USED');
    expect((await get(`/v1/coupons/${released}`)).body).toMatchObject({
      state: 'LOCKED',
      orderId: 'o2',
    });
    expect((await get('/v1/statement')).body.totals.expiredLocks).toBe(1);
  });

  it('reset cancels pending expiries: a code reused after the reset keeps its own lock lifetime', async () => {
    const old = await issue(await campaign(), 'u1');
    await lock(old, { orderId: 'o1', lockTtlMs: 40 });
    expect((await call(base, 'POST', '/__reset')).status).toBe(200);
    const code = await issue(await campaign(), 'u1');
    expect(code).toBe(old); // codes restart after a reset
    await lock(code, { orderId: 'o2', lockTtlMs: 120 });
    await waitFor(async () => (await state(code)) === 'ISSUED');
    const st = (await get('/v1/statement')).body;
    expect(st.totals).toMatchObject({ locks: 1, expiredLocks: 1 });
    expect(st.coupons[0].history.at(-1)).toMatchObject({ type: 'expired', orderId: 'o2' });
  });
});

describe('statement and queries', () => {
  it('statement totals by state match the coupons listed, and histories record every transition', async () => {
    const c = await campaign({ budget: 5 });
    const codes = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((u) => issue(c, u)));
    const [a, b, d] = codes as [string, string, string];
    await lock(a, { orderId: 'oa' });
    await lock(b, { orderId: 'ob' });
    await lock(d, { orderId: 'od' });
    await consume(a, 'oa');
    await release(b, 'ob');
    const other = await campaign();
    await issue(other, 'z');

    const st = (await get('/v1/statement')).body;
    const count = (s: string) => st.coupons.filter((x: { state: string }) => x.state === s).length;
    expect(st.totals).toMatchObject({
      coupons: 6,
      ISSUED: 4,
      LOCKED: 1,
      USED: 1,
      locks: 3,
      consumes: 1,
      releases: 1,
      expiredLocks: 0,
    });
    for (const s of ['ISSUED', 'LOCKED', 'USED']) expect(count(s)).toBe(st.totals[s]);
    const byCode = new Map(st.coupons.map((x: { code: string }) => [x.code, x]));
    expect(byCode.get(b)).toMatchObject({
      state: 'ISSUED',
      history: [
        { type: 'issued' },
        { type: 'locked', orderId: 'ob' },
        { type: 'released', orderId: 'ob' },
      ],
    });
    for (const x of st.coupons)
      for (const h of x.history) expect(Number.isNaN(Date.parse(h.at))).toBe(false);

    const scoped = (await get(`/v1/statement?campaignId=${c}&state=LOCKED`)).body;
    expect(scoped.totals).toMatchObject({ coupons: 5, ISSUED: 3, LOCKED: 1, USED: 1 });
    expect(scoped.coupons.map((x: { code: string }) => x.code)).toEqual([d]);
    expect(scoped.campaigns).toEqual([{ id: c, budget: 5, issued: 5, remaining: 0 }]);
  });

  it('pages the statement: limit and cursor give every coupon once, in issue order, whatever the filters', async () => {
    const c = await campaign({ budget: 7 });
    const codes = [];
    for (const u of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) codes.push(await issue(c, u));
    for (const i of [1, 4, 5]) await lock(codes[i]!, { orderId: `o${i}` });
    const other = await campaign();
    await issue(other, 'z');
    for (const q of [`campaignId=${c}`, `campaignId=${c}&state=ISSUED`, 'state=LOCKED', '']) {
      const whole = (await get(`/v1/statement?${q}`)).body;
      expect(whole.next).toBeUndefined();
      const paged: unknown[] = [];
      let cursor: number | undefined = 0;
      while (cursor !== undefined) {
        const r = await get(`/v1/statement?${q}&limit=2&cursor=${cursor}`);
        expect(r.status, r.text).toBe(200);
        expect(r.body.coupons.length).toBeLessThanOrEqual(2);
        expect(r.body.totals).toEqual(whole.totals);
        paged.push(...r.body.coupons);
        cursor = r.body.next;
      }
      expect(paged, q).toEqual(whole.coupons);
    }
  });

  it('lists coupons by user, by order (current holder) and by campaign and state', async () => {
    const c = await campaign({ perUserLimit: 3 });
    const a = await issue(c, 'u1');
    const b = await issue(c, 'u1');
    await issue(c, 'u2');
    await lock(a, { orderId: 'o1' });
    const codes = (r: JsonResponse) => r.body.data.map((x: { code: string }) => x.code);
    const byUser = await get('/v1/coupons?userId=u1');
    expect(byUser.body.object).toBe('list');
    expect(codes(byUser)).toEqual([a, b]);
    expect(codes(await get('/v1/coupons?orderId=o1'))).toEqual([a]);
    expect(codes(await get(`/v1/coupons?campaignId=${c}&state=ISSUED`))).toHaveLength(2);
    await release(a, 'o1');
    expect(codes(await get('/v1/coupons?orderId=o1'))).toEqual([]);
    expect(codes(await get('/v1/coupons?userId=nobody'))).toEqual([]);
  });

  it('POST /__reset forgets campaigns, coupons and declines', async () => {
    const c = await campaign({ budget: 0 });
    await post('/v1/coupons', { campaignId: c, userId: 'u1' });
    expect((await call(base, 'POST', '/__reset')).status).toBe(200);
    const st = (await get('/v1/statement')).body;
    expect(st).toMatchObject({ coupons: [], campaigns: [], declines: {}, totals: { coupons: 0 } });
    expect((await get(`/v1/campaigns/${c}`)).status).toBe(404);
  });
});

describe('chaos', () => {
  it('x-fault-kind: decline with x-fault-reason: budget_exhausted answers in the coupon decline format and issues nothing', async () => {
    const c = await campaign();
    const r = await post(
      '/v1/coupons',
      { campaignId: c, userId: 'u1' },
      { 'x-fault-kind': 'decline', 'x-fault-reason': 'budget_exhausted' },
    );
    expectDecline(r, 'budget_exhausted');
    expect(r.body).toMatchObject({
      message: DECLINE_MESSAGES.budget_exhausted,
      campaignId: c,
      userId: 'u1',
    });
    // The real decline has the same shape.
    const real = await post('/v1/coupons', {
      campaignId: await campaign({ budget: 0 }),
      userId: 'u1',
    });
    expect(Object.keys(real.body)).toEqual(expect.arrayContaining(Object.keys(r.body)));
    expect((await get(`/v1/campaigns/${c}`)).body.issued).toBe(0);
    const st = (await get('/v1/statement')).body;
    expect(st.injectedDeclines).toEqual({ budget_exhausted: 1 });
    expect(st.declines).toEqual({ budget_exhausted: 1 });
  });

  it('a profile decline fault on coupons.lock answers 402 with the coupon code and leaves the coupon ISSUED', async () => {
    const code = await issue(await campaign(), 'u1');
    const put = await call(base, 'PUT', '/__chaos', {
      operations: {
        'coupons.lock': { errors: [{ rate: 1, kind: 'decline', reason: 'locked_by_other_order' }] },
      },
    });
    expect(put.status, put.text).toBe(200);
    const r = await lock(code, { orderId: 'o1' });
    expectDecline(r, 'locked_by_other_order');
    expect(r.body).toMatchObject({ code, orderId: 'o1' });
    expect(await state(code)).toBe('ISSUED');
  });

  it('the profile accepts only coupon decline reasons and a strict extra', async () => {
    const bad = await call(base, 'PUT', '/__chaos', {
      errors: [{ rate: 0.1, kind: 'decline', reason: 'insufficient_funds' }],
      extra: { lockTtlMs: 0, nope: true },
    });
    expect(bad.status).toBe(400);
    const fields = bad.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['errors.0.reason', 'extra.lockTtlMs']));
    expect(fields.some((f: string) => f.startsWith('extra'))).toBe(true);
  });

  it('an unknown decline reason in x-fault-reason is 400 naming the header', async () => {
    const c = await campaign();
    const r = await post(
      '/v1/coupons',
      { campaignId: c, userId: 'u1' },
      { 'x-fault-kind': 'decline', 'x-fault-reason': 'insufficient_funds' },
    );
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([expect.objectContaining({ field: 'x-fault-reason' })]);
  });
});

describe('bad input', () => {
  // Each case: a request with bad input, the field the answer must name.
  const cases: [string, string, string, unknown, string, Record<string, string>?][] = [
    [
      'campaign create: budget',
      'POST',
      '/v1/campaigns',
      { name: 'n', budget: 1.5, discount: { type: 'amount', value: 1 } },
      'budget',
    ],
    [
      'campaign create: discount type',
      'POST',
      '/v1/campaigns',
      { name: 'n', budget: 1, discount: { type: 'free', value: 1 } },
      'discount.type',
    ],
    [
      'campaign create: window',
      'POST',
      '/v1/campaigns',
      {
        name: 'n',
        budget: 1,
        discount: { type: 'percent', value: 5 },
        startsAt: '2030-01-02T00:00:00Z',
        endsAt: '2030-01-01T00:00:00Z',
      },
      'endsAt',
    ],
    [
      'campaign create: date format',
      'POST',
      '/v1/campaigns',
      { name: 'n', budget: 1, discount: { type: 'percent', value: 5 }, startsAt: 'tomorrow' },
      'startsAt',
    ],
    [
      'campaign create: unknown field',
      'POST',
      '/v1/campaigns',
      { name: 'n', budget: 1, discount: { type: 'amount', value: 1 }, color: 'red' },
      'color',
    ],
    ['campaign create: not JSON', 'POST', '/v1/campaigns', '{"name":', '(body)'],
    ['campaign create: not an object', 'POST', '/v1/campaigns', '[1,2]', '(body)'],
    ['campaign get: id', 'GET', '/v1/campaigns/bad%20id!', undefined, 'id'],
    ['issue: userId missing', 'POST', '/v1/coupons', { campaignId: 'x' }, 'userId'],
    ['issue: campaignId type', 'POST', '/v1/coupons', { campaignId: 7, userId: 'u' }, 'campaignId'],
    [
      'issue: Idempotency-Key too long',
      'POST',
      '/v1/coupons',
      { campaignId: 'x', userId: 'u' },
      'Idempotency-Key',
      { 'Idempotency-Key': 'k'.repeat(256) },
    ],
    ['list: no filter', 'GET', '/v1/coupons', undefined, '(query)'],
    ['list: state', 'GET', '/v1/coupons?userId=u&state=GONE', undefined, 'state'],
    ['list: repeated userId', 'GET', '/v1/coupons?userId=a&userId=b', undefined, 'userId'],
    ['get: code', 'GET', '/v1/coupons/bad.code', undefined, 'code'],
    ['lock: orderId type', 'POST', '/v1/coupons/cpn_1/lock', { orderId: 5 }, 'orderId'],
    [
      'lock: lockTtlMs',
      'POST',
      '/v1/coupons/cpn_1/lock',
      { orderId: 'o', lockTtlMs: -1 },
      'lockTtlMs',
    ],
    ['lock: code', 'POST', '/v1/coupons/bad.code/lock', { orderId: 'o' }, 'code'],
    ['consume: orderId missing', 'POST', '/v1/coupons/cpn_1/consume', {}, 'orderId'],
    ['consume: no body', 'POST', '/v1/coupons/cpn_1/consume', undefined, 'orderId'],
    [
      'release: unknown field',
      'POST',
      '/v1/coupons/cpn_1/release',
      { orderId: 'o', force: true },
      'force',
    ],
    ['release: empty orderId', 'POST', '/v1/coupons/cpn_1/release', { orderId: '' }, 'orderId'],
    ['statement: state', 'GET', '/v1/statement?state=nope', undefined, 'state'],
    ['statement: unknown param', 'GET', '/v1/statement?since=yesterday', undefined, 'since'],
    ['statement: limit', 'GET', '/v1/statement?limit=100001', undefined, 'limit'],
    ['statement: cursor', 'GET', '/v1/statement?limit=5&cursor=-3', undefined, 'cursor'],
    [
      'fault header',
      'GET',
      '/v1/statement',
      undefined,
      'x-fault-kind',
      { 'x-fault-kind': 'explode' },
    ],
  ];

  it.each(cases)(
    '%s: 4xx naming the field, and the next request is served',
    async (_name, method, path, body, fieldName, headers) => {
      const r = await call(base, method, path, body, headers ?? {});
      expect(r.status, r.text).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
      expect(Array.isArray(r.body.errors)).toBe(true);
      for (const e of r.body.errors) {
        expect(typeof e.field).toBe('string');
        expect(typeof e.reason).toBe('string');
      }
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain(fieldName);
      const next = await post('/v1/campaigns', {
        name: 'n',
        budget: 1,
        discount: { type: 'amount', value: 1 },
      });
      expect(next.status, next.text).toBe(201);
      await issue(next.body.id, 'after-bad-input');
    },
  );
});
