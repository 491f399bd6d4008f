// Every service serves an OpenAPI 3.1 description at GET /openapi.json that
// lists exactly the routes express serves (a route added without its
// description, or a description of a route that is gone, fails here), with
// the error body, the reason codes and the admin routes' security.
// test/fuzz.test.ts then runs schemathesis against these documents.
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisHandle } from '../harness/redis.ts';
import { SERVICE_FACTORIES, SERVICE_NAMES } from '../mock-gateways/index.ts';
import { openApiPath } from '../mock-gateways/openapi.ts';
import { startStack, startAllMocks, type Mocks, type Stack } from './support/checkout.ts';

interface Doc {
  openapi: string;
  info: { 'x-reason-codes': Record<string, string> };
  paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, any> }>>;
  components: { schemas: Record<string, any>; securitySchemes: Record<string, any> };
}

/** "METHOD /path" of every route express serves (OpenAPI's {param} form). */
function servedRoutes(app: Express): string[] {
  const stack = (app as unknown as { router: { stack: any[] } }).router.stack;
  return stack
    .filter((l) => l.route)
    .flatMap((l) =>
      Object.keys(l.route.methods as Record<string, boolean>).map(
        (m) => `${m.toUpperCase()} ${openApiPath(String(l.route.path))}`,
      ),
    )
    .sort();
}

function describedRoutes(doc: Doc): string[] {
  return Object.entries(doc.paths)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
}

/** What differs between the routes served and those described (empty: none). */
function drift(served: string[], described: string[]): string[] {
  return [
    ...served.filter((r) => !described.includes(r)).map((r) => `served, not described: ${r}`),
    ...described.filter((r) => !served.includes(r)).map((r) => `described, not served: ${r}`),
  ];
}

let redis: RedisHandle;
let mocks: Mocks;
let stack: Stack;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startAllMocks(1);
  stack = await startStack({
    redisUrl: redis.url,
    mocks,
    mode: 'hardened',
    prefix: `fc-openapi-${process.pid}`,
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await mocks?.close();
  await redis?.close();
});

async function docOf(url: string): Promise<Doc> {
  const r = await fetch(`${url}/openapi.json`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  return (await r.json()) as Doc;
}

const services = () => [
  ...SERVICE_NAMES.map((n) => ({ name: n, url: mocks[n].url, app: mocks[n].app })),
  { name: 'checkout', url: stack.url, app: stack.co.app },
];

describe('GET /openapi.json', () => {
  it('every service describes exactly the routes it serves', async () => {
    expect(services().map((s) => s.name)).toEqual(['bank', 'wallet', 'coupon', 'checkout']);
    for (const s of services()) {
      const doc = await docOf(s.url);
      expect(doc.openapi, s.name).toBe('3.1.0');
      const served = servedRoutes(s.app);
      expect(served.length, s.name).toBeGreaterThan(8);
      expect(drift(served, describedRoutes(doc)), s.name).toEqual([]);
    }
  });

  it('the comparison catches a route served without its description', async () => {
    const doc = await docOf(mocks.bank.url);
    delete doc.paths['/v1/refunds'];
    expect(drift(servedRoutes(mocks.bank.app), describedRoutes(doc))).toEqual([
      'served, not described: POST /v1/refunds',
    ]);
  });

  it('every answer of 400 and above is the Error body; admin routes need the bearer token', async () => {
    for (const s of services()) {
      const doc = await docOf(s.url);
      expect(doc.components.schemas.Error.required, s.name).toContain('reason');
      expect(doc.components.securitySchemes.adminToken).toMatchObject({
        type: 'http',
        scheme: 'bearer',
      });
      let admin = 0;
      for (const [path, ops] of Object.entries(doc.paths))
        for (const [method, op] of Object.entries(ops)) {
          const where = `${s.name} ${method} ${path}`;
          expect(op.responses['400']?.content['application/json'].schema.$ref, where).toBe(
            '#/components/schemas/Error',
          );
          expect(op.responses['431'], where).toBeDefined();
          if (/^\/(__|admin\/)/.test(path)) {
            admin++;
            expect(op.security, where).toEqual([{ adminToken: [] }]);
            expect(Object.keys(op.responses), where).toEqual(
              expect.arrayContaining(['401', '403']),
            );
          } else expect(op.security, where).toBeUndefined();
        }
      expect(admin, s.name).toBeGreaterThanOrEqual(5);
    }
  });

  it('the reason codes include the common ones and each service’s own', async () => {
    const own: Record<string, string[]> = {
      bank: ['insufficient_funds', 'payment_not_found', 'upstream_unavailable'],
      wallet: ['trade_not_found', 'trade_closed', 'capacity_exceeded'],
      coupon: ['budget_exhausted', 'coupon_not_found', 'rate_limited'],
      checkout: ['unknown_sku', 'sold_out', 'overloaded', 'idempotency_key_reused'],
    };
    for (const s of services()) {
      const reasons = Object.keys((await docOf(s.url)).info['x-reason-codes']);
      for (const r of [
        'validation_failed',
        'headers_too_large',
        'admin_token_required',
        ...own[s.name]!,
      ])
        expect(reasons, `${s.name}: ${r}`).toContain(r);
    }
  });

  it('request bodies are the zod schemas the routes validate with', async () => {
    const bank = await docOf(mocks.bank.url);
    const pay = bank.paths['/v1/payments']!.post as any;
    const schema = pay.requestBody.content['application/json'].schema;
    expect(schema.required).toEqual(['orderId', 'amount', 'currency', 'card']);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.card.properties.number.pattern).toBe('^\\d{12,19}$');
    const checkout = await docOf(stack.url);
    const order = (checkout.paths['/v1/orders']!.post as any).requestBody.content[
      'application/json'
    ].schema;
    expect(order.properties.channel.enum).toEqual(['card', 'alipay', 'wechat']);
    const payOrder = (checkout.paths['/v1/orders/{id}/pay']!.post as any).requestBody.content[
      'application/json'
    ].schema;
    // docs/CHECKOUT.md once said `card` is a number: the description says what is validated.
    expect(payOrder.properties.card.type).toBe('string');
  });

  it('every mock factory is served (none is missed by this test)', () => {
    expect(Object.keys(SERVICE_FACTORIES).sort()).toEqual([...SERVICE_NAMES].sort());
  });
});
