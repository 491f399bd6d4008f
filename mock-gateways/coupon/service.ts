// Coupon HTTP routes: thin handlers that validate, call the domain, and answer.
import type { Request, RequestHandler } from 'express';
import type { IdentitySource } from '../chaos/engine.ts';
import { bodyField, paramField, queryField, tagged } from '../chaos/identity.ts';
import { parseInput } from '../errors.ts';
import { IdempotencyStore } from '../idempotency.ts';
import type { ServiceDefinition } from '../service.ts';
import { couponApi } from './api.ts';
import { Coupons } from './domain.ts';
import {
  campaignInput,
  campaignParams,
  codeParams,
  COUPON_DECLINE_REASONS,
  COUPON_OPERATIONS,
  couponExtraSchema,
  DECLINE_MESSAGES,
  issueInput,
  listQuery,
  lockInput,
  orderInput,
  statementQuery,
  type CouponDeclineReason,
  type CouponExtra,
} from './schema.ts';

const idemKey = (req: Request) => req.get('idempotency-key');

/** A string field of an unvalidated body, for the context of an injected decline. */
function field(req: Request, name: string): string | undefined {
  const body: unknown = req.body;
  if (!body || typeof body !== 'object') return undefined;
  const v = (body as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : undefined;
}

export function createCoupon(): ServiceDefinition<CouponExtra> & { coupons(): Coupons } {
  let coupons: Coupons | undefined;
  const idem = new IdempotencyStore();

  /**
   * Idempotency for routes on one coupon: the store hashes only the body, so
   * the key is scoped per operation and code (one key on two codes is two requests).
   */
  const perCode =
    (scope: string): RequestHandler =>
    (req, res, next) =>
      idem.guard(`${scope}\u0000${String(req.params.code)}`, idemKey)(req, res, next);

  return {
    name: 'coupon',
    operations: COUPON_OPERATIONS,
    declineReasons: COUPON_DECLINE_REASONS,
    extraSchema: couponExtraSchema,
    api: couponApi,
    coupons: () => coupons!,
    levels: () => ({ coupons_locked: coupons?.lockedCount() ?? 0 }),
    routes(r, { engine, op, timeScale }) {
      coupons = new Coupons(engine, { timeScale });
      const d = coupons;
      // Every draw of a request keyed by what it is about (docs/CHAOS.md, Reproducibility):
      // a campaign by its id, a coupon by its holder (codes are given in arrival order),
      // a lock, consume or release by the order.
      const holder = (campaignId: string | undefined, userId: string | undefined) =>
        campaignId === undefined && userId === undefined
          ? undefined
          : `user:${campaignId ?? ''}/${userId ?? ''}`;
      const byOrder = (req: IdentitySource) =>
        tagged('order', bodyField(req, 'orderId')) ?? tagged('coupon', paramField(req, 'code'));
      engine.identify('campaigns.create', (req) => tagged('campaign', bodyField(req, 'id')));
      engine.identify('campaigns.get', (req) => tagged('campaign', paramField(req, 'id')));
      engine.identify('coupons.issue', (req) =>
        holder(bodyField(req, 'campaignId'), bodyField(req, 'userId')),
      );
      engine.identify('coupons.lock', byOrder);
      engine.identify('coupons.consume', byOrder);
      engine.identify('coupons.release', byOrder);
      engine.identify('coupons.get', (req) => {
        const code = paramField(req, 'code');
        if (code === undefined) return undefined;
        const h = d.holderOf(code);
        return (h && holder(h.campaignId, h.userId)) ?? `coupon:${code}`;
      });
      engine.identify(
        'coupons.list',
        (req) =>
          tagged('order', queryField(req, 'orderId')) ??
          holder(queryField(req, 'campaignId'), queryField(req, 'userId')),
      );
      const code = (req: Request) => parseInput(codeParams, req.params, '(path)').code;

      r.post(
        '/v1/campaigns',
        idem.guard('campaigns.create', idemKey),
        op('campaigns.create', (req, res) => {
          res.status(201).json(d.createCampaign(parseInput(campaignInput, req.body, '(body)')));
        }),
      );
      r.get(
        '/v1/campaigns/:id',
        op('campaigns.get', (req, res) => {
          res.json(d.getCampaign(parseInput(campaignParams, req.params, '(path)').id));
        }),
      );
      r.post(
        '/v1/coupons',
        idem.guard('coupons.issue', idemKey),
        op('coupons.issue', (req, res) => {
          res.status(201).json(d.issue(parseInput(issueInput, req.body, '(body)')));
        }),
      );
      r.get(
        '/v1/coupons',
        op('coupons.list', (req, res) => {
          const q = parseInput(listQuery, req.query, '(query)');
          res.json({ object: 'list', data: d.list(q) });
        }),
      );
      r.get(
        '/v1/coupons/:code',
        op('coupons.get', (req, res) => {
          res.json(d.getCoupon(code(req)));
        }),
      );
      r.post(
        '/v1/coupons/:code/lock',
        perCode('coupons.lock'),
        op('coupons.lock', (req, res) => {
          const c = code(req);
          res.json(d.lock(c, parseInput(lockInput, req.body, '(body)')));
        }),
      );
      r.post(
        '/v1/coupons/:code/consume',
        perCode('coupons.consume'),
        op('coupons.consume', (req, res) => {
          const c = code(req);
          res.json(d.consume(c, parseInput(orderInput, req.body, '(body)')));
        }),
      );
      r.post(
        '/v1/coupons/:code/release',
        perCode('coupons.release'),
        op('coupons.release', (req, res) => {
          const c = code(req);
          res.json(d.release(c, parseInput(orderInput, req.body, '(body)')));
        }),
      );
      r.get(
        '/v1/statement',
        op('statement', (req, res) => {
          res.json(d.statement(parseInput(statementQuery, req.query, '(query)')));
        }),
      );
    },
    decline(req, res, operation, reason) {
      // Answered exactly like a real decline; nothing changes in the domain.
      coupons?.countInjected(reason);
      const context: Record<string, string> = {};
      for (const name of ['campaignId', 'userId', 'orderId']) {
        const v = field(req, name);
        if (v !== undefined) context[name] = v;
      }
      if (typeof req.params.code === 'string') context.code = req.params.code;
      res.status(402).json({
        error: 'declined',
        reason,
        message: DECLINE_MESSAGES[reason as CouponDeclineReason] ?? `chaos: ${operation} declined`,
        ...context,
      });
    },
    reset() {
      coupons?.reset();
      idem.clear();
      coupons?.engine.forgetAttempts();
    },
    close() {
      coupons?.close();
    },
  };
}
