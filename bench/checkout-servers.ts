// One process per part of `npm run bench:checkout`:
//
//   node bin/run-ts.js bench/checkout-servers.ts KIND [JSON options] [--exit-with-stdin]
//
//   express-pair  bare express 5 with express.json(), answering POST /v1/orders and
//                 POST /v1/orders/:id/pay from memory (the framework's floor)
//   checkout      the reference checkout (startCheckout) on REDIS_URL with the mocks
//   mocks         bank, wallet and coupon mocks, faultless (bank velocity control off)
//   ceiling       no server: the checkout's reserve, start_payment and confirm scripts
//                 driven straight at Redis by `loops` concurrent sequential loops
//
// Prints one JSON line {kind, url?, pid} when ready. Then, for each line "stats"
// on stdin it prints one JSON line of counters (checkout: the Store's Redis round
// trips; ceiling: {start} begins the run and prints its result). Exits on
// SIGTERM/SIGINT and, with --exit-with-stdin, when stdin closes.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import express from 'express';
import { PROFILE_NONE } from './profiles.ts';

/** The order view the checkout answers (checkout/checkout.ts orderView), field for field. */
interface OrderView {
  id: string;
  sku: string;
  user: string;
  quantity: number;
  amount: number;
  channel: string;
  state: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  payBy: string;
  paidAt?: string;
  paymentRef?: string;
}

const PRICE = 1_999;

function expressPair(): http.Server {
  const app = express();
  // The checkout's app settings (checkout/service.ts).
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json({ limit: '256kb' }));
  const orders = new Map<string, OrderView>();
  let seq = 0;
  app.post('/v1/orders', (req, res) => {
    const b = (req.body ?? {}) as { user?: unknown; sku?: unknown; quantity?: unknown };
    seq += 1;
    const now = Date.now();
    const iso = new Date(now).toISOString();
    const qty = Number(b.quantity ?? 1);
    const o: OrderView = {
      id: `${String(b.sku)}.${now.toString(36)}${seq.toString(16).padStart(10, '0')}`,
      sku: String(b.sku),
      user: String(b.user),
      quantity: qty,
      amount: PRICE * qty,
      channel: 'card',
      state: 'pending_payment',
      attempts: 0,
      createdAt: iso,
      updatedAt: iso,
      payBy: new Date(now + 900_000).toISOString(),
    };
    orders.set(o.id, o);
    res.status(201).json(o);
  });
  app.post('/v1/orders/:id/pay', (req, res) => {
    const o = orders.get(String(req.params.id));
    if (!o) {
      res.status(404).json({ reason: 'order_not_found' });
      return;
    }
    const iso = new Date().toISOString();
    // Paid orders leave the map, so it stays small over a long run.
    orders.delete(o.id);
    res.json({
      ...o,
      state: 'paid',
      attempts: 1,
      updatedAt: iso,
      paidAt: iso,
      paymentRef: `pay_${String(seq).padStart(8, '0')}`,
    });
  });
  return http.createServer({ keepAliveTimeout: 5_000 }, app);
}

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Started {
  url?: string;
  extra?: Record<string, unknown>;
  stats?: (arg: string) => Promise<unknown> | unknown;
  close(): Promise<void>;
}

export interface CheckoutServerOptions {
  redisUrl: string;
  bank: string;
  wallet: string;
  coupon: string;
  mode?: 'naive' | 'hardened';
  set?: string[];
}

export interface CeilingOptions {
  redisUrl: string;
  sku: string;
  loops: number;
  warmupS: number;
  durationS: number;
}

export interface CeilingResult {
  loops: number;
  durationS: number;
  orders: number;
  scripts: number;
  scriptsPerS: number;
  ordersPerS: number;
  failures: Record<string, number>;
  warmupOrders: number;
  /** This driver's CPU over the measured window, seconds. */
  cpuS: number;
  /** Calibration: `return 1` as a script (EVALSHA), same loops, for `trivialS` seconds. */
  trivialScriptsPerS: number;
  trivialS: number;
}

async function ceiling(o: CeilingOptions): Promise<CeilingResult> {
  const { Redis } = await import('ioredis');
  const { Store } = await import('../checkout/store.ts');
  // A plain client: no auto-pipelining, each loop awaits each script before the next.
  const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 2 });
  const store = new Store(redis, 'fcb');
  let phase: 'warmup' | 'measure' | 'done' = 'warmup';
  const counts = { warmup: 0, measure: 0 };
  const failures: Record<string, number> = {};
  const fail = (what: string) => (failures[what] = (failures[what] ?? 0) + 1);
  let seq = 0;
  const loop = async (n: number) => {
    while (phase !== 'done') {
      const now = Date.now();
      const during = phase;
      const r = await store.reserve({
        sku: o.sku,
        user: `c${n}-${(seq += 1)}`,
        qty: 1,
        now,
        deadline: now + 900_000,
        payload: { sku: o.sku, n },
        channel: 'card',
        idemTtlMs: 86_400_000,
      });
      if (r.status !== 'ok') {
        fail(`reserve_${r.status}`);
        continue;
      }
      const s = await store.startPayment(r.orderId, '', now, false);
      if (s.status !== 'ok') {
        fail(`start_payment_${s.status}`);
        continue;
      }
      const c = await store.confirm(r.orderId, `pay_${r.orderId}`, r.amount, now, true, 'card');
      if (c.status !== 'paid') {
        fail(`confirm_${c.status}`);
        continue;
      }
      // Counted in the phase it started in, if that phase is still on when it ends.
      if (during === phase) counts[during] += 1;
    }
  };
  const loops = Array.from({ length: o.loops }, (_, i) => loop(i));
  await new Promise((r) => setTimeout(r, o.warmupS * 1000));
  phase = 'measure';
  const rt0 = store.roundTrips;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.durationS * 1000));
  phase = 'done';
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const scripts = store.roundTrips - rt0;
  await Promise.all(loops);

  // The smallest script, to compare with a figure quoted for "small scripts".
  redis.defineCommand('benchTrivial', { numberOfKeys: 0, lua: 'return 1' });
  const trivial = redis as unknown as { benchTrivial(): Promise<number> };
  await trivial.benchTrivial();
  const trivialS = Math.min(2, o.durationS);
  let stopTrivial = false;
  let trivialCount = 0;
  const t1 = performance.now();
  const tloops = Array.from({ length: o.loops }, async () => {
    while (!stopTrivial) {
      await trivial.benchTrivial();
      trivialCount += 1;
    }
  });
  await new Promise((r) => setTimeout(r, trivialS * 1000));
  stopTrivial = true;
  const trivialWall = (performance.now() - t1) / 1000;
  await Promise.all(tloops);
  redis.disconnect();
  return {
    loops: o.loops,
    durationS: wall,
    orders: counts.measure,
    scripts,
    scriptsPerS: scripts / wall,
    ordersPerS: counts.measure / wall,
    failures,
    warmupOrders: counts.warmup,
    cpuS: (cpu.user + cpu.system) / 1e6,
    trivialScriptsPerS: trivialCount / trivialWall,
    trivialS: trivialWall,
  };
}

async function start(kind: string, opts: Record<string, unknown>): Promise<Started> {
  switch (kind) {
    case 'express-pair': {
      const server = expressPair();
      const url = await listen(server);
      return {
        url,
        close: async () => {
          server.closeAllConnections();
          server.close();
        },
      };
    }
    case 'checkout': {
      // Loaded only here, so the other kinds carry none of the checkout's modules.
      const { startCheckout } = await import('../checkout/service.ts');
      const o = opts as unknown as CheckoutServerOptions;
      const co = await startCheckout({
        redisUrl: o.redisUrl,
        bank: o.bank,
        wallet: o.wallet,
        coupon: o.coupon,
        mode: o.mode ?? 'hardened',
        set: o.set ?? [],
      });
      return {
        url: co.url,
        extra: { mode: co.config.mode, features: co.config.features },
        // The bench's hook: the Store counts its Redis round trips (scripts and reads).
        stats: () => ({ roundTrips: co.store.roundTrips }),
        close: () => co.close(),
      };
    }
    case 'mocks': {
      const { SERVICE_FACTORIES, SERVICE_NAMES } = await import('../mock-gateways/index.ts');
      const { startService } = await import('../mock-gateways/service.ts');
      const running: Awaited<ReturnType<typeof startService>>[] = [];
      for (const name of SERVICE_NAMES) {
        const factory = SERVICE_FACTORIES[name];
        if (!factory) continue;
        running.push(
          await startService(factory(), {
            seed: 1,
            // Faultless; the bank's velocity risk control is off because every order pays with one card.
            profile: name === 'bank' ? PROFILE_NONE : undefined,
            host: '127.0.0.1',
            port: 0,
          }),
        );
      }
      return {
        extra: Object.fromEntries(running.map((s) => [s.name, s.url])),
        close: async () => {
          await Promise.all(running.map((s) => s.close()));
        },
      };
    }
    case 'ceiling': {
      let result: Promise<CeilingResult> | undefined;
      return {
        stats: (arg) =>
          (result ??= ceiling({
            ...(opts as unknown as CeilingOptions),
            ...JSON.parse(arg || '{}'),
          })),
        close: async () => undefined,
      };
    }
    default:
      console.error(
        'usage: node bin/run-ts.js bench/checkout-servers.ts (express-pair|checkout|mocks|ceiling) [JSON options]',
      );
      process.exit(2);
  }
}

async function main() {
  const kind = process.argv[2] ?? '';
  const raw = process.argv[3] && !process.argv[3].startsWith('--') ? process.argv[3] : '{}';
  const s = await start(kind, JSON.parse(raw) as Record<string, unknown>);
  process.stdout.write(`${JSON.stringify({ kind, url: s.url, pid: process.pid, ...s.extra })}\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), 2_000).unref();
    s.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [cmd, ...rest] = line.trim().split(' ');
    if (cmd !== 'stats' || !s.stats) return;
    Promise.resolve(s.stats(rest.join(' '))).then(
      (v) => process.stdout.write(`${JSON.stringify(v)}\n`),
      (e: Error) => process.stdout.write(`${JSON.stringify({ error: e.message })}\n`),
    );
  });
  if (process.argv.includes('--exit-with-stdin')) lines.on('close', stop);
}

await main();
