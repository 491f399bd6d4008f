// `npm run bench:buckets`: orders per second of one hot SKU against its number
// of stock buckets B (docs/CHECKOUT.md, "Stock buckets"), on a local
// three-master Redis Cluster, B = 1, 2, 4, 8 side by side in one run.
//
// An order is the checkout's happy path through its own Store and Lua scripts:
// reserve, start_payment, confirm (three scripts; no HTTP, no gateways), on
// one SKU with stock enough never to sell out and no per-shopper limit. The
// load: `--clients` ioredis Cluster clients (as the checkout makes them), `--loops` loops
// each, every loop starting its next order when the last one ended. Per B and
// round: orders/s over the measured window; each master's scripts (INFO
// commandstats) and CPU (INFO cpu: used_cpu_user + used_cpu_sys), so the
// report shows where the limit was; and Redis scripts per Redis CPU-second.
// Rounds go B ascending, then descending, and so on (the machine's speed
// drifts); the table gives each B's median and its ratio to B = 1's median.
//
// The machine running it has few cores: the masters and this load generator
// share them. Run it alone (`flock /tmp/fc-heavy.lock npm run bench:buckets`).
//
//   npm run bench:buckets                       the full run (about a minute)
//   npm run bench:buckets -- --help             options
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { Cluster } from 'ioredis';
import { connectRedis, Store } from '../checkout/store.ts';
import { startRedisCluster, type RedisClusterHandle } from '../harness/redis-cluster.ts';
import {
  allowedCpus,
  cores,
  cpuModel,
  fmtInt,
  machineBusySeconds,
  sleep,
  table,
} from './common.ts';
import { median } from './stats.ts';

const { values: opt } = parseArgs({
  options: {
    buckets: { type: 'string', default: '1,2,4,8' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '4' },
    loops: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '1' },
    duration: { type: 'string', default: '4' },
    out: { type: 'string', default: 'reports/bench-buckets.json' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log(`npm run bench:buckets -- [options]
  --buckets LIST   B values to measure (default 1,2,4,8)
  --rounds N       rounds over the B values, alternating ascending and descending (default 3)
  --clients N      ioredis Cluster clients (default 4)
  --loops N        concurrent order loops per client (default 64)
  --warmup S       seconds before each measured window (default 1)
  --duration S     measured seconds per B and round (default 4)
  --out FILE       JSON results (default reports/bench-buckets.json)`);
  process.exit(0);
}
const int = (name: keyof typeof opt) => {
  const n = Number(opt[name]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got ${String(opt[name])}`);
    process.exit(2);
  }
  return n;
};
const BS = String(opt.buckets)
  .split(',')
  .map((x) => Number(x));
if (BS.some((b) => !Number.isInteger(b) || b < 1 || b > 64)) {
  console.error(`--buckets must list integers 1-64, got ${opt.buckets}`);
  process.exit(2);
}
const ROUNDS = int('rounds');
const CLIENTS = int('clients');
const LOOPS = int('loops');
const WARMUP_MS = int('warmup') * 1000;
const DURATION_MS = int('duration') * 1000;
const STOCK = 100_000_000;
const PRICE = 1_000;

/** One master's counters: scripts run (EVALSHA + EVAL calls) and CPU seconds used. */
interface MasterReading {
  port: number;
  scripts: number;
  cpuS: number;
}

async function readMaster(node: import('ioredis').Redis): Promise<MasterReading> {
  const text = (await node.info('all')) as string;
  const field = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    port: Number(node.options.port),
    scripts: field(/cmdstat_evalsha:calls=(\d+)/) + field(/cmdstat_eval:calls=(\d+)/),
    cpuS: field(/used_cpu_user:([\d.]+)/) + field(/used_cpu_sys:([\d.]+)/),
  };
}

interface Measurement {
  buckets: number;
  round: number;
  ordersPerS: number;
  failed: number;
  /** Per master: scripts/s and cores used over the window. */
  masters: { port: number; scriptsPerS: number; cores: number }[];
  driverCores: number;
  /** Cores the rest of the machine used over the window (neither the masters nor this process). */
  otherCores: number;
}

/** Drive orders of one SKU split over `buckets` buckets for warm-up + window; measure the window. */
async function measure(
  clients: Cluster[],
  buckets: number,
  round: number,
  prefix: string,
): Promise<Measurement> {
  const stores = clients.map((c) => new Store(c, prefix, buckets));
  await stores[0]!.seedSale([{ id: 'hot', name: 'hot', price: PRICE, stock: STOCK, limit: 0 }]);
  let done = 0;
  let failed = 0;
  let stop = false;
  let n = 0;
  const order = async (store: Store) => {
    const now = Date.now();
    const user = `u${n++}`;
    const r = await store.reserve({
      sku: 'hot',
      user,
      qty: 1,
      now,
      deadline: now + 600_000,
      payload: user,
      channel: 'card',
      idemTtlMs: 60_000,
    });
    if (r.status !== 'ok') throw new Error(`reserve: ${r.status}`);
    const p = await store.startPayment(r.orderId, 'card', now, false);
    if (p.status !== 'ok') throw new Error(`start_payment: ${p.status}`);
    const c = await store.confirm(r.orderId, `pay-${r.orderId}`, PRICE, now, false, 'card');
    if (c.status !== 'paid') throw new Error(`confirm: ${c.status}`);
  };
  const loop = async (store: Store) => {
    while (!stop) {
      try {
        await order(store);
        done += 1;
      } catch (e) {
        failed += 1;
        if (failed === 1) console.error(`first failure (B=${buckets}): ${(e as Error).message}`);
      }
    }
  };
  const loops = stores.flatMap((s) => Array.from({ length: LOOPS }, () => loop(s)));
  await sleep(WARMUP_MS);
  const masters = clients[0]!.nodes('master');
  const before = await Promise.all(masters.map(readMaster));
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusySeconds() ?? NaN;
  const done0 = done;
  const t0 = performance.now();
  await sleep(DURATION_MS);
  const after = await Promise.all(masters.map(readMaster));
  const s = (performance.now() - t0) / 1000;
  const doneIn = done - done0;
  const cpu = process.cpuUsage(cpu0);
  const busy = (machineBusySeconds() ?? NaN) - busy0;
  stop = true;
  await Promise.all(loops);
  // Each measurement on an empty cluster: the orders of the last one would fill memory.
  await Promise.all(masters.map((m) => m.flushall('ASYNC')));
  const masterCores = after.map((a, i) => (a.cpuS - before[i]!.cpuS) / s);
  const driverCores = (cpu.user + cpu.system) / 1e6 / s;
  return {
    buckets,
    round,
    ordersPerS: doneIn / s,
    failed,
    masters: after.map((a, i) => ({
      port: a.port,
      scriptsPerS: (a.scripts - before[i]!.scripts) / s,
      cores: masterCores[i]!,
    })),
    driverCores,
    otherCores: Math.max(0, busy / s - driverCores - masterCores.reduce((n, c) => n + c, 0)),
  };
}

/** A cluster client as the checkout makes one (checkout/store.ts connectRedis: no auto-pipelining). */
function connect(cluster: RedisClusterHandle): Cluster {
  return connectRedis(cluster.urls[0]!, true) as Cluster;
}

async function main() {
  const cluster = await startRedisCluster();
  const clients = Array.from({ length: CLIENTS }, () => connect(cluster));
  const results: Measurement[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? BS : [...BS].reverse();
      for (const b of order) {
        const m = await measure(clients, b, round, `bb${round}x${b}`);
        results.push(m);
        console.error(
          `round ${round} B=${b}: ${fmtInt(m.ordersPerS)} orders/s, masters ${m.masters.map((x) => `${fmtInt(x.scriptsPerS)} scripts/s ${cores(x.cores)} core`).join(', ')}, driver ${cores(m.driverCores)} core, other ${cores(m.otherCores)} core${m.failed ? `, ${m.failed} failed` : ''}`,
        );
      }
    }
  } finally {
    for (const c of clients) c.disconnect();
    await cluster.close();
  }
  report(results);
}

function report(results: Measurement[]) {
  const of = (b: number) => results.filter((r) => r.buckets === b);
  const base = median(of(BS[0]!).map((r) => r.ordersPerS));
  const rows = BS.map((b) => {
    const ms = of(b);
    const rate = median(ms.map((r) => r.ordersPerS));
    const busiest = median(ms.map((r) => Math.max(...r.masters.map((m) => m.cores))));
    const redisCores = median(ms.map((r) => r.masters.reduce((n, m) => n + m.cores, 0)));
    const scripts = ms.map((r) => r.masters.reduce((n, m) => n + m.scriptsPerS, 0));
    const perCpuS = median(
      ms.map((r, i) => scripts[i]! / r.masters.reduce((n, m) => n + m.cores, 0)),
    );
    const spread = median(ms.map((r) => r.masters.filter((m) => m.scriptsPerS > 0).length));
    return [
      String(b),
      `${fmtInt(rate)} (${ms.map((r) => fmtInt(r.ordersPerS)).join(' / ')})`,
      (rate / base).toFixed(2),
      fmtInt(median(scripts)),
      String(spread),
      cores(busiest),
      cores(redisCores),
      cores(median(ms.map((r) => r.driverCores))),
      cores(median(ms.map((r) => r.otherCores))),
      fmtInt(perCpuS),
    ];
  });
  const failed = results.reduce((n, r) => n + r.failed, 0);
  console.log(
    `\nOne hot SKU on a local 3-master Redis Cluster: orders/s (reserve + start_payment + confirm through Store) against stock buckets B.
${allowedCpus().length} CPUs (${cpuModel()}), shared by the three redis-server masters and this load generator (${CLIENTS} cluster clients as the checkout makes them x ${LOOPS} loops), unpinned; ${ROUNDS} rounds, ${DURATION_MS / 1000} s windows after ${WARMUP_MS / 1000} s warm-up; median (rounds).\n`,
  );
  console.log(
    table(
      [
        'B',
        'orders/s (rounds)',
        'x B=1',
        'scripts/s',
        'masters used',
        'busiest master core',
        'Redis cores',
        'driver core',
        'other work cores',
        'scripts per Redis CPU-s',
      ],
      rows,
    ),
  );
  if (failed) console.log(`\n${failed} orders failed`);
  mkdirSync(dirname(String(opt.out)), { recursive: true });
  writeFileSync(
    String(opt.out),
    JSON.stringify({ at: new Date().toISOString(), results }, null, 2),
  );
  console.log(`\nwrote ${opt.out}`);
}

await main();
