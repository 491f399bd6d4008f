// The wallet's routes as its OpenAPI document describes them (GET /openapi.json).
import { z } from 'zod';
import type { MockApi } from '../api.ts';
import { idempotencyHeader } from '../openapi.ts';
import { REFUSALS } from './reasons.ts';
import {
  closeInput,
  listQuery,
  makeTradeInput,
  notificationsQuery,
  payInput,
  refundInput,
  statementQuery,
  tradeParams,
} from './schema.ts';

const trade = z.looseObject({ tradeNo: z.string(), outTradeNo: z.string(), status: z.string() });
const tag = 'wallet';
const refusals = (what: string) =>
  `${what} (\`${Object.keys(REFUSALS)
    .filter((r) => REFUSALS[r as keyof typeof REFUSALS].status === 409)
    .join('`, `')}\`, or the Idempotency-Key is in use)`;

export const walletApi: MockApi = {
  title: 'flashcrowd mock wallet',
  description:
    'Alipay/WeChat-style trades with signed, retried asynchronous notifications (docs/mocks/wallet.md).',
  reasons: Object.fromEntries(
    Object.entries(REFUSALS).map(([r, v]) => [r, `${v.status}: ${r.replace(/_/g, ' ')}`]),
  ),
  routes: [
    {
      method: 'post',
      path: '/v1/trades',
      id: 'trades.create',
      summary: 'Create a trade (the merchant’s order); its notifications go to notifyUrl',
      tag,
      headers: idempotencyHeader,
      body: makeTradeInput({ allowRemoteNotify: false }),
      ok: [
        { status: 201, description: 'Created', schema: trade },
        { status: 200, description: 'The trade of this outTradeNo, unchanged', schema: trade },
      ],
      errors: {
        409: refusals('Conflict'),
        422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)',
      },
    },
    {
      method: 'get',
      path: '/v1/trades',
      id: 'trades.list',
      summary: 'The trade of a merchant order number',
      tag,
      query: listQuery,
      ok: [
        { status: 200, description: 'The trades', schema: z.looseObject({ data: z.array(trade) }) },
      ],
    },
    {
      method: 'get',
      path: '/v1/trades/:tradeNo',
      id: 'trades.get',
      summary: 'A trade (the status query)',
      tag,
      params: tradeParams,
      ok: [{ status: 200, description: 'The trade', schema: trade }],
      errors: { 404: 'No such trade (`trade_not_found`)' },
    },
    {
      method: 'post',
      path: '/v1/trades/:tradeNo/pay',
      id: 'trades.pay',
      summary: 'The buyer pays the trade',
      tag,
      params: tradeParams,
      body: payInput,
      bodyOptional: true,
      ok: [
        { status: 200, description: 'Paid (SUCCESS)', schema: trade },
        { status: 402, description: 'PAYERROR: the trade, with its `reason`', schema: trade },
      ],
      errors: {
        404: 'No such trade (`trade_not_found`)',
        409: refusals('The trade cannot be paid'),
      },
    },
    {
      method: 'post',
      path: '/v1/trades/:tradeNo/close',
      id: 'trades.close',
      summary: 'Close an unpaid trade',
      tag,
      params: tradeParams,
      body: closeInput,
      bodyOptional: true,
      ok: [{ status: 200, description: 'Closed', schema: trade }],
      errors: {
        404: 'No such trade (`trade_not_found`)',
        409: refusals('The trade cannot be closed'),
      },
    },
    {
      method: 'post',
      path: '/v1/refunds',
      id: 'refunds.create',
      summary: 'Refund a paid trade (all or part)',
      tag,
      headers: idempotencyHeader,
      body: refundInput,
      ok: [{ status: 200, description: 'The refund' }],
      errors: {
        404: 'No such trade (`trade_not_found`)',
        409: refusals('The trade cannot be refunded'),
        422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)',
      },
    },
    {
      method: 'get',
      path: '/v1/statement',
      id: 'statement',
      summary: 'The ledger: payments and refunds, paged',
      tag,
      query: statementQuery,
      ok: [{ status: 200, description: 'A page of the statement' }],
    },
    {
      method: 'get',
      path: '/v1/notifications',
      id: 'notifications.list',
      summary: 'The notification log (not a chaos operation: for tests and audits)',
      tag,
      query: notificationsQuery,
      ok: [
        {
          status: 200,
          description: 'The notifications',
          schema: z.looseObject({ data: z.array(z.looseObject({})) }),
        },
      ],
    },
  ],
};
