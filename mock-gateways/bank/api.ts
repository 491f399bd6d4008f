// The bank's routes as its OpenAPI document describes them (GET /openapi.json).
import { z } from 'zod';
import type { MockApi } from '../api.ts';
import { idempotencyHeader } from '../openapi.ts';
import { listQuery, paymentInput, refundInput, statementQuery } from './schema.ts';

const payment = z.looseObject({ id: z.string(), orderId: z.string(), status: z.string() });
const tag = 'bank';

export const bankApi: MockApi = {
  title: 'flashcrowd mock bank',
  description:
    'Card payments with Stripe-like declines (test cards), idempotency keys, risk control and asynchronous settlement (docs/MOCKS.md).',
  reasons: {
    payment_not_found: '404: no payment with this id',
    payment_not_captured: '409: only a captured payment can be refunded',
    already_refunded: '409: the payment is fully refunded',
  },
  routes: [
    {
      method: 'post',
      path: '/v1/payments',
      id: 'payments.create',
      summary: 'Charge a card',
      tag,
      headers: idempotencyHeader,
      body: paymentInput,
      ok: [
        { status: 200, description: 'Captured', schema: payment },
        { status: 202, description: 'Processing: settles later', schema: payment },
        { status: 402, description: 'Declined: the payment, with its `reason`', schema: payment },
      ],
      errors: {
        409: 'The Idempotency-Key is in use (`idempotency_key_in_use`)',
        422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)',
      },
    },
    {
      method: 'get',
      path: '/v1/payments/:id',
      id: 'payments.get',
      summary: 'A payment',
      tag,
      params: z.object({ id: z.string() }),
      ok: [{ status: 200, description: 'The payment', schema: payment }],
      errors: { 404: 'No such payment (`payment_not_found`)' },
    },
    {
      method: 'get',
      path: '/v1/payments',
      id: 'payments.list',
      summary: "An order's payments",
      tag,
      query: listQuery,
      ok: [
        {
          status: 200,
          description: 'The payments',
          schema: z.looseObject({ data: z.array(payment) }),
        },
      ],
    },
    {
      method: 'post',
      path: '/v1/refunds',
      id: 'refunds.create',
      summary: 'Refund a captured payment (all or part)',
      tag,
      headers: idempotencyHeader,
      body: refundInput,
      ok: [{ status: 200, description: 'The refund' }],
      errors: {
        404: 'No such payment (`payment_not_found`)',
        409: 'Not captured, fully refunded, or the Idempotency-Key is in use',
        422: 'The Idempotency-Key was used with another body (`idempotency_key_reused`)',
      },
    },
    {
      method: 'get',
      path: '/v1/statement',
      id: 'statement',
      summary: 'The ledger: captures and refunds, paged',
      tag,
      query: statementQuery,
      ok: [{ status: 200, description: 'A page of the statement' }],
    },
  ],
};
