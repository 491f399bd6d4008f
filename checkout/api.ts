// The checkout's routes as its OpenAPI document describes them (GET /openapi.json).
import { z } from 'zod';
import {
  idempotencyHeader,
  infraRoutes,
  openApiDocument,
  type RouteDoc,
} from '../mock-gateways/openapi.ts';
import { flashcrowdVersionOf } from '../mock-gateways/version.ts';
import { cancelInput, createOrderInput, listOrdersQuery, payInput, saleInput } from './schema.ts';
import { ORDER_STATES } from './store.ts';

const order = z
  .looseObject({
    id: z.string(),
    sku: z.string(),
    user: z.string(),
    quantity: z.number().int(),
    amount: z.number().int().meta({ description: 'Minor units (fen), the discount taken off' }),
    state: z.enum(ORDER_STATES),
    reason: z.string().optional(),
    payBy: z.string().meta({ description: 'The payment deadline (ISO 8601)' }),
  })
  .meta({ id: 'Order' });

/** Every shopper route's optional headers: its budget and when it left its client. */
const shopperHeaders = z.object({
  'x-request-deadline-ms': z
    .string()
    .regex(/^[0-9]+(\.[0-9]+)?$/)
    .optional()
    .meta({ description: "The request's budget in ms, 1 to 600000 (default requestBudgetMs)" }),
  'x-request-start': z.string().optional().meta({
    description:
      'When the request left its client: `t=<epoch ms>` (seconds with a fraction and microseconds are read too); the hardened build sheds on the wait',
  }),
});
const orderId = z.object({ id: z.string().min(1) });
const shed =
  '`overloaded` (load shedding, with Retry-After), or a gateway that is down (`circuit_open`, `bulkhead_full`, `connection_refused`, with Retry-After)';
const tag = 'shopper';
const admin = 'admin';

const routes: RouteDoc[] = [
  {
    method: 'get',
    path: '/v1/skus',
    id: 'skus',
    summary: 'The catalogue: price and visible stock of every SKU',
    tag,
    headers: shopperHeaders,
    ok: [{ status: 200, description: 'The SKUs' }],
    errors: { 503: shed },
  },
  {
    method: 'post',
    path: '/v1/orders',
    id: 'orders.create',
    summary: 'Order: lock the coupon, reserve the stock, start the payment deadline',
    tag,
    headers: shopperHeaders.extend(idempotencyHeader.shape),
    body: createOrderInput,
    ok: [
      { status: 201, description: 'Created, `pending_payment`', schema: order },
      {
        status: 200,
        description: 'Replayed (same Idempotency-Key and body; `Idempotent-Replayed: true`)',
        schema: order,
      },
    ],
    errors: {
      402: 'The coupon was declined: `coupon_<reason>` (the coupon service’s decline reason)',
      404: 'No such SKU in this sale (`unknown_sku`, `errors` names `sku`)',
      409: '`sold_out`, `purchase_limit_exceeded`, or `idempotency_key_in_use`',
      422: '`idempotency_key_reused`: the key was used for another order request',
      503: `${shed}; a coupon lock that got no answer: \`coupon_<reason>\``,
    },
  },
  {
    method: 'get',
    path: '/v1/orders',
    id: 'orders.list',
    summary: "A shopper's orders",
    tag,
    headers: shopperHeaders,
    query: listOrdersQuery,
    ok: [
      { status: 200, description: 'The orders', schema: z.looseObject({ data: z.array(order) }) },
    ],
    errors: { 503: shed },
  },
  {
    method: 'get',
    path: '/v1/orders/:id',
    id: 'orders.get',
    summary: 'An order: state, reason, deadline',
    tag,
    headers: shopperHeaders,
    params: orderId,
    ok: [{ status: 200, description: 'The order', schema: order }],
    errors: { 404: 'No such order (`order_not_found`, `errors` names `id`)', 503: shed },
  },
  {
    method: 'post',
    path: '/v1/orders/:id/pay',
    id: 'orders.pay',
    summary: 'Pay an order on a channel (card through the bank; alipay, wechat through the wallet)',
    tag,
    headers: shopperHeaders.extend(idempotencyHeader.shape),
    params: orderId,
    body: payInput,
    bodyOptional: true,
    ok: [
      { status: 200, description: '`paid`', schema: order },
      {
        status: 202,
        description:
          '`paying`: `payment_processing`, `payment_pending_confirmation`, `payment_in_progress`',
        schema: order,
      },
    ],
    errors: {
      402: 'Declined, with the gateway’s reason (the order, with `reason`)',
      404: 'No such order (`order_not_found`)',
      409: 'The order is expired, cancelled or failed (`order_<state>`), or the Idempotency-Key is in use',
      422: '`idempotency_key_reused`: the key was used with another body for this order',
      502: 'The payment’s outcome is unknown (naive build)',
      503: shed,
    },
  },
  {
    method: 'post',
    path: '/v1/orders/:id/cancel',
    id: 'orders.cancel',
    summary: 'Cancel an unpaid order: its stock and coupon return',
    tag,
    headers: shopperHeaders,
    params: orderId,
    body: cancelInput,
    bodyOptional: true,
    ok: [{ status: 200, description: '`cancelled`', schema: order }],
    errors: {
      404: 'No such order (`order_not_found`)',
      409: 'Not `pending_payment` (`order_<state>`)',
      503: shed,
    },
  },
  {
    method: 'post',
    path: '/v1/notify/:style',
    id: 'notify',
    summary: 'The wallet’s asynchronous notification (signed with HMAC-SHA256)',
    tag: 'callback',
    params: z.object({ style: z.enum(['alipay', 'wechat']) }),
    headers: z.object({
      'x-flashcrowd-signature': z
        .string()
        .optional()
        .meta({ description: 'hex HMAC-SHA256 of the raw body with the wallet secret' }),
    }),
    body: z.looseObject({}).meta({ description: 'The notification (docs/mocks/wallet.md)' }),
    ok: [{ status: 200, description: '`success` (Alipay) or `{"code":"SUCCESS"}` (WeChat)' }],
    errors: { 401: 'The signature does not verify (`bad_signature`)' },
  },
  ...infraRoutes(
    'service',
    z.looseObject({ status: z.enum(['ok', 'degraded']), service: z.literal('checkout') }),
  ).map((r) =>
    r.id === 'healthz' ? { ...r, errors: { 503: 'Redis does not answer (`degraded`)' } } : r,
  ),
  {
    method: 'post',
    path: '/admin/sale',
    id: 'admin.sale',
    summary: 'Replace the sale: SKUs and stock, and the coupon campaign',
    tag: admin,
    admin: true,
    body: saleInput,
    ok: [{ status: 201, description: 'The sale' }],
    errors: { 502: 'The coupon service refused the campaign (`coupon_setup_failed`)' },
  },
  {
    method: 'post',
    path: '/admin/reset',
    id: 'admin.reset',
    summary: 'Back to a fresh start: every key, metric and breaker',
    tag: admin,
    admin: true,
    ok: [{ status: 200, description: 'Reset' }],
  },
  {
    method: 'get',
    path: '/admin/stock',
    id: 'admin.stock',
    summary: 'Per SKU: initial, available, reserved, sold, and the counters',
    tag: admin,
    admin: true,
    ok: [{ status: 200, description: 'The stock' }],
  },
  {
    method: 'get',
    path: '/admin/config',
    id: 'admin.config',
    summary: 'The settings in force (docs/CHECKOUT.md)',
    tag: admin,
    admin: true,
    ok: [{ status: 200, description: 'The settings' }],
  },
  {
    method: 'post',
    path: '/admin/sweep',
    id: 'admin.sweep',
    summary: 'Run the sweeper (and the reconciler) once now',
    tag: admin,
    admin: true,
    ok: [{ status: 200, description: 'What it did' }],
  },
];

/** The checkout's OpenAPI 3.1 document. */
export function checkoutOpenApi() {
  return openApiDocument({
    title: 'flashcrowd reference checkout',
    version: flashcrowdVersionOf(),
    description:
      'The system under test: flash-sale orders on Redis, paid through the mock bank or wallet, with coupons (docs/CHECKOUT.md).',
    routes,
    reasons: {
      unknown_sku: '404: no such SKU in this sale',
      order_not_found: '404: no such order',
      sold_out: '409: no stock left',
      purchase_limit_exceeded: '409: the shopper holds as many as the sale allows',
      idempotency_key_in_use: '409: the first request with this Idempotency-Key is still running',
      idempotency_key_reused: '422: the Idempotency-Key was used with another body',
      'coupon_<reason>': '402/503: the coupon could not be locked (the coupon service’s reason)',
      'order_<state>': '409: the order is in a state that does not allow this',
      payment_in_progress: '202: a payment of the order is running',
      payment_processing: '202: the gateway settles later',
      payment_pending_confirmation: '202: the outcome is unknown; the reconciler settles it',
      overloaded: '503: load shedding (Retry-After)',
      circuit_open: '503: the dependency’s breaker is open',
      bulkhead_full: '503: too many calls to the dependency in flight',
      connection_refused: '503: the dependency refused the connection',
      bad_signature: '401: a wallet notification whose signature does not verify',
      invalid_notification: '400: a notification without its fields',
      coupon_setup_failed: '502: the coupon service refused the sale’s campaign',
    },
  });
}
