// `npm run bench:harness`: the run harness's own cost on a run of about one
// million requests, time and peak memory, against the goal of under 10 s and
// under 300 MB (docs/PERFORMANCE.md, "Run harness").
//
// The harness never holds per-request samples: k6 aggregates the shoppers'
// view into its end-of-test summary, the services' /metrics are scraped once a
// second, and the audit reads the sale's final state. So the work that grows
// with a run is (1) the audit, which reads every order from Redis and every
// capture from the gateways' statements, and (2) the time series, one tick per
// second per service. This benchmark builds that state once (not timed): a
// sale with ORDERS paid orders in a real Redis, each with a real capture in
// the mock bank's ledger (1M requests of a livestream sale: about four
// requests per shopper, 200-250k shoppers, fewer orders than shoppers), and a
// TICKS-second run's worth of scrapes served by loopback servers. Then, in a
// fresh child process so its peak RSS is the analysis alone, and in a run's
// order, it times: a Collector taking TICKS ticks from the live servers (its
// CPU time: in a run it is spread over the traffic); the audit; the metrics,
// budgets and the five report files. The goal's 10 s is what comes after the
// traffic (audit, metrics, budgets, reports); the sum with the collector's
// CPU is printed beside it.
//
//   npm run bench:harness                        orders 200000, ticks 1200
//   npm run bench:harness -- --orders 50000 --ticks 600
//   npm run bench:harness -- --keep              build, then keep the state up to profile
import { spawn } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CheckoutMetrics } from '../checkout/metrics.ts';
import { connectRedis, Store } from '../checkout/store.ts';
import { startMocks } from '../harness/mocks.ts';
import { startRedis } from '../harness/redis.ts';
import { PROJECT_ROOT } from '../harness/tools.ts';

const { values: args } = parseArgs({
  options: {
    orders: { type: 'string', default: '200000' },
    ticks: { type: 'string', default: '1200' },
    concurrency: { type: 'string', default: '128' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`usage: npm run bench:harness -- [--orders N] [--ticks N] [--concurrency N]

  --orders N       paid orders in the sale (default 200000: a run of about 1M requests)
  --ticks N        seconds of scrapes the collector takes (default 1200: a 20-minute run)
  --concurrency N  requests in flight while building the state (default 128)
  --keep           after building the state, print the analysis job and keep Redis and the
                   servers up until Ctrl-C, instead of analysing (to profile the analysis:
                   node bin/run-ts.js bench/harness-analyse.ts '<job>')`);
  process.exit(0);
}
const ORDERS = Number(args.orders);
const TICKS = Number(args.ticks);
const CONC = Number(args.concurrency);
for (const [k, v] of Object.entries({ orders: ORDERS, ticks: TICKS, concurrency: CONC }))
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${k} must be a positive integer`);
    process.exit(2);
  }

const log = (s: string) => console.log(`[bench:harness] ${s}`);
const SKU = 'bench';
const PRICE = 9_900;

async function pool(n: number, conc: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) {
        const i = next++;
        await fn(i);
        done += 1;
        if (done % 20_000 === 0)
          log(`  ${done} / ${n} (${Math.round(done / ((performance.now() - t0) / 1000))}/s)`);
      }
    }),
  );
}

/** A checkout /metrics text as a busy run has it: every route, status and reason seen. */
function checkoutMetricsText(): Promise<string> {
  const m = new CheckoutMetrics('hardened');
  const routes = ['skus', 'orders.create', 'orders.pay', 'orders.get', 'orders.cancel', 'notify'];
  const answers: [number, string][] = [
    [200, 'none'],
    [201, 'none'],
    [202, 'payment_processing'],
    [402, 'card_declined'],
    [409, 'sold_out'],
    [409, 'purchase_limit_exceeded'],
    [503, 'circuit_open'],
    [503, 'overloaded'],
  ];
  for (const r of routes) {
    const rec = m.recorder(r);
    for (const [s, reason] of answers) for (let i = 0; i < 20; i++) rec(s, reason, 0.001 * i);
  }
  for (const dep of ['bank', 'wallet', 'coupon'])
    for (const op of ['payments.create', 'payments.list', 'trades.create', 'coupons.lock'])
      for (const outcome of ['ok', 'timeout', 'http_503', 'connection_reset'])
        m.calls.inc({ dependency: dep, operation: op, outcome }, 5);
  for (const e of [
    'created',
    'paid',
    'paid_by_notify',
    'paid_by_reconciler',
    'expired',
    'failover',
  ])
    m.orders.inc({ event: e }, 10);
  return m.registry.metrics();
}

async function serveText(text: () => string, path: string) {
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith(path)) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(text());
    } else if (req.url?.startsWith('/admin/stock')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          data: [
            { sku: SKU, initial: ORDERS, available: 0, reserved: 0, sold: ORDERS, counters: {} },
          ],
        }),
      );
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function main() {
  log(`building the state once (not timed): ${ORDERS} paid orders, each with a bank capture`);
  const redis = await startRedis();
  // No userId on the payments: the bank's default velocity control (per user) never declines them.
  const mocks = await startMocks({ target: 'all', seed: 1 });
  const url = Object.fromEntries(mocks.map((m) => [m.name, m.url])) as Record<string, string>;
  const client = connectRedis(redis.url);
  const store = new Store(client, 'fcb');
  await store.clear();
  await store.seedSale([{ id: SKU, name: SKU, price: PRICE, stock: ORDERS, limit: 1 }]);
  const t0 = performance.now();
  const now = Date.now();
  await pool(ORDERS, CONC, async (i) => {
    const r = await store.reserve({
      sku: SKU,
      user: `u${i}`,
      qty: 1,
      now,
      deadline: now + 3_600_000,
      payload: { i },
      channel: 'card',
      idemTtlMs: 60_000,
    });
    if (r.status !== 'ok') throw new Error(`reserve ${i}: ${r.status}`);
    await store.startPayment(r.orderId, 'card', now, false);
    const res = await fetch(`${url.bank}/v1/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        orderId: r.orderId,
        amount: PRICE,
        currency: 'CNY',
        card: { number: '4242424242424242' },
      }),
    });
    const p = (await res.json()) as { id: string; status: string };
    if (p.status !== 'succeeded') throw new Error(`payment ${i}: ${JSON.stringify(p)}`);
    const c = await store.confirm(r.orderId, p.id, PRICE, now, false, 'card');
    if (c.status !== 'paid') throw new Error(`confirm ${i}: ${c.status}`);
  });
  log(`  built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // A run's worth of scrapes: the same realistic texts, served live.
  const checkoutText = await checkoutMetricsText();
  const bankText = await (await fetch(`${url.bank}/metrics`)).text();
  const checkoutSrv = await serveText(() => checkoutText, '/metrics');
  const mockSrv = await serveText(() => bankText, '/metrics');

  const out = mkdtempSync(join(tmpdir(), 'flashcrowd-bench-harness-'));
  const job = {
    redisUrl: redis.url,
    prefix: 'fcb',
    sku: SKU,
    bank: url.bank,
    wallet: url.wallet,
    coupon: url.coupon,
    checkoutUrl: checkoutSrv.url,
    mockUrl: mockSrv.url,
    ticks: TICKS,
    out,
  };
  const cleanUp = async () => {
    checkoutSrv.server.close();
    mockSrv.server.close();
    await store.clear();
    client.disconnect();
    await Promise.all(mocks.map((m) => m.close()));
    await redis.close();
    rmSync(out, { recursive: true, force: true });
  };
  if (args.keep) {
    console.log(JSON.stringify(job));
    log('state kept; Ctrl-C stops Redis and the servers');
    await new Promise((r) => process.once('SIGINT', r));
    return cleanUp();
  }
  log(
    `analysing in a fresh process: the audit of ${ORDERS} orders, ${TICKS} collector ticks, the report`,
  );
  const child = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'bin', 'run-ts.js'),
      join(PROJECT_ROOT, 'bench', 'harness-analyse.ts'),
      JSON.stringify(job),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  try {
    if (code !== 0) throw new Error(`the analysis exited with ${code}: ${text}`);
    const r = JSON.parse(text.trim().split('\n').pop()!) as {
      steps: { name: string; s: number; wallS: number; peakRssMb: number; afterTraffic: boolean }[];
      maxRssMb: number;
      baselineRssMb: number;
      orders: number;
      captures: number;
      ticks: number;
    };
    const after = r.steps.filter((s) => s.afterTraffic).reduce((a, s) => a + s.s, 0);
    const all = r.steps.reduce((a, s) => a + s.s, 0);
    console.log('');
    console.log(
      `flashcrowd bench:harness: ${r.orders} orders audited, ${r.captures} captures, ${r.ticks} ticks collected`,
    );
    console.log('');
    console.log(`  ${'step'.padEnd(60)} ${'time'.padStart(8)}  peak RSS so far`);
    for (const s of r.steps)
      console.log(
        `  ${s.name.padEnd(60)} ${`${s.s.toFixed(2)} s`.padStart(8)}  ${s.peakRssMb.toFixed(0).padStart(5)} MB`,
      );
    console.log(
      `  ${'after the traffic (audit, metrics, budgets, reports)'.padEnd(60)} ${`${after.toFixed(2)} s`.padStart(8)}`,
    );
    console.log(
      `  ${"everything, the collector's CPU included".padEnd(60)} ${`${all.toFixed(2)} s`.padStart(8)}`,
    );
    console.log(
      `  peak RSS of the analysis process: ${r.maxRssMb.toFixed(0)} MB (a process that only loads the harness: ${r.baselineRssMb.toFixed(0)} MB)`,
    );
    console.log('');
    const okT = after < 10;
    const okM = r.maxRssMb < 300;
    console.log(
      `  goal: analysis under 10 s    ${okT ? 'met' : 'NOT MET'} (${after.toFixed(2)} s after the traffic; ${all.toFixed(2)} s with the collector's CPU)`,
    );
    console.log(
      `  goal: under 300 MB           ${okM ? 'met' : 'NOT MET'} (${r.maxRssMb.toFixed(0)} MB)`,
    );
  } finally {
    await cleanUp();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
