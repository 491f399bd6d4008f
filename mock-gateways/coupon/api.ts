// The coupon service's routes as its OpenAPI document describes them (GET /openapi.json).
import { z } from 'zod';
import type { MockApi } from '../api.ts';
import { idempotencyHeader } from '../openapi.ts';
import {
  campaignInput,
  campaignParams,
  codeParams,
  issueInput,
  listQuery,
  lockInput,
  orderInput,
  statementQuery,
} from './schema.ts';

const coupon = z.looseObject({ code: z.string(), campaignId: z.string(), state: z.string() });
const tag = 'coupon';
const declined = { 402: 'Declined, with the decline `reason` and its context' };
const idem = { 422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)' };
const transition = (what: string) => ({
  ...declined,
  ...idem,
  404: 'No such coupon (`coupon_not_found`; `errors` names `code`)',
  409: `The coupon’s state does not allow ${what} (\`already_used\`, \`not_locked\`, \`locked_by_other_order\`), or the Idempotency-Key is in use`,
});

export const couponApi: MockApi = {
  title: 'flashcrowd mock coupon service',
  description: 'Coupon campaigns: issue, lock, consume, release, budgets (docs/mocks/coupon.md).',
  reasons: {
    campaign_not_found: '404: no campaign with this id',
    coupon_not_found: '404: no coupon with this code',
    campaign_exists: '409: a campaign with this id exists',
    not_locked: '409: the coupon is not locked by this order',
  },
  routes: [
    {
      method: 'post',
      path: '/v1/campaigns',
      id: 'campaigns.create',
      summary: 'Create a campaign',
      tag,
      headers: idempotencyHeader,
      body: campaignInput,
      ok: [{ status: 201, description: 'Created' }],
      errors: {
        409: 'The id exists (`campaign_exists`), or the Idempotency-Key is in use',
        ...idem,
      },
    },
    {
      method: 'get',
      path: '/v1/campaigns/:id',
      id: 'campaigns.get',
      summary: 'A campaign, with its counts',
      tag,
      params: campaignParams,
      ok: [{ status: 200, description: 'The campaign' }],
      errors: { 404: 'No such campaign (`campaign_not_found`)' },
    },
    {
      method: 'post',
      path: '/v1/coupons',
      id: 'coupons.issue',
      summary: 'Issue a coupon of a campaign to a shopper',
      tag,
      headers: idempotencyHeader,
      body: issueInput,
      ok: [{ status: 201, description: 'Issued', schema: coupon }],
      errors: {
        ...declined,
        ...idem,
        404: 'No such campaign (`campaign_not_found`)',
        409: 'The Idempotency-Key is in use',
      },
    },
    {
      method: 'get',
      path: '/v1/coupons',
      id: 'coupons.list',
      summary: 'Coupons of a shopper, an order or a campaign',
      tag,
      query: listQuery,
      ok: [
        {
          status: 200,
          description: 'The coupons',
          schema: z.looseObject({ data: z.array(coupon) }),
        },
      ],
    },
    {
      method: 'get',
      path: '/v1/coupons/:code',
      id: 'coupons.get',
      summary: 'A coupon, with its history',
      tag,
      params: codeParams,
      ok: [{ status: 200, description: 'The coupon', schema: coupon }],
      errors: { 404: 'No such coupon (`coupon_not_found`)' },
    },
    {
      method: 'post',
      path: '/v1/coupons/:code/lock',
      id: 'coupons.lock',
      summary: 'Lock a coupon for an order',
      tag,
      params: codeParams,
      headers: idempotencyHeader,
      body: lockInput,
      ok: [{ status: 200, description: 'Locked', schema: coupon }],
      errors: transition('a lock'),
    },
    {
      method: 'post',
      path: '/v1/coupons/:code/consume',
      id: 'coupons.consume',
      summary: 'Use a locked coupon (its order was paid)',
      tag,
      params: codeParams,
      headers: idempotencyHeader,
      body: orderInput,
      ok: [{ status: 200, description: 'Used', schema: coupon }],
      errors: transition('a consume'),
    },
    {
      method: 'post',
      path: '/v1/coupons/:code/release',
      id: 'coupons.release',
      summary: 'Give a locked coupon back (its order failed)',
      tag,
      params: codeParams,
      headers: idempotencyHeader,
      body: orderInput,
      ok: [{ status: 200, description: 'Released', schema: coupon }],
      errors: transition('a release'),
    },
    {
      method: 'get',
      path: '/v1/statement',
      id: 'statement',
      summary: 'Every coupon, paged',
      tag,
      query: statementQuery,
      ok: [{ status: 200, description: 'A page of the statement' }],
      errors: {
        404: 'No campaign with this `campaignId` (`campaign_not_found`; `errors` names it)',
      },
    },
  ],
};
