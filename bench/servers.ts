// One benchmark server per process: `node bin/run-ts.js bench/servers.ts KIND`.
//
//   node-http     bare node:http: parse the JSON body, answer a payment (the ceiling)
//   express       bare express 5 with express.json(): the same work (the floor the bank stands on)
//   bank          the mock bank, no faults (velocity risk control off)
//   bank-chaos    the mock bank with the latency + errors profile of bench/profiles.ts
//   bank-latency  the mock bank with the latency-only profile of bench/profiles.ts
//
// Listens on 127.0.0.1, port 0, and prints one JSON line {kind, url, pid}.
// Exits on SIGTERM/SIGINT, and with --exit-with-stdin when stdin closes (the
// runner died). With --eld it prints the event loop's delay quantiles on its way out.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import express from 'express';
import { BANK_PROFILES, BENCH_SEED, SERVER_KINDS, type ServerKind } from './profiles.ts';

interface PaymentBody {
  orderId?: unknown;
  amount?: unknown;
  currency?: unknown;
  card?: { number?: unknown };
}

let seq = 0;

/**
 * The same answer the bank gives for a successful card payment, field for
 * field (id, object, orderId, amount, currency, status, captured,
 * amountRefunded, card, createdAt, settledAt), built without validation.
 */
function payment(body: PaymentBody) {
  seq += 1;
  const now = new Date().toISOString();
  const number = String(body.card?.number ?? '');
  return {
    id: `pay_${String(seq).padStart(8, '0')}`,
    object: 'payment',
    orderId: String(body.orderId),
    amount: Number(body.amount),
    currency: String(body.currency).toUpperCase(),
    status: 'succeeded',
    captured: true,
    amountRefunded: 0,
    card: { brand: number.startsWith('4') ? 'visa' : 'unknown', last4: number.slice(-4) },
    createdAt: now,
    settledAt: now,
  };
}

function badRequest(res: http.ServerResponse, message: string) {
  const text = JSON.stringify({ error: 'invalid_json', reason: 'invalid_json', message });
  res.writeHead(400, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function nodeHttpServer(): http.Server {
  return http.createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/payments') {
      res.writeHead(req.method === 'GET' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(req.method === 'GET' ? '{"status":"ok"}' : '{"error":"not_found"}');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: PaymentBody;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PaymentBody;
      } catch (e) {
        badRequest(res, (e as Error).message);
        return;
      }
      const text = JSON.stringify(payment(body));
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    });
  });
}

function expressServer(): http.Server {
  const app = express();
  // The same app settings the mock services use (mock-gateways/service.ts).
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.json({ limit: '256kb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.post('/v1/payments', (req, res) => {
    res.json(payment((req.body ?? {}) as PaymentBody));
  });
  return http.createServer({ keepAliveTimeout: 5_000 }, app);
}

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function main() {
  const kind = process.argv[2] as ServerKind | undefined;
  if (!kind || !(SERVER_KINDS as readonly string[]).includes(kind)) {
    console.error(`usage: node bin/run-ts.js bench/servers.ts (${SERVER_KINDS.join('|')})`);
    process.exit(2);
  }
  let url: string;
  let close: () => Promise<void>;
  if (kind === 'node-http' || kind === 'express') {
    const server = kind === 'node-http' ? nodeHttpServer() : expressServer();
    url = await listen(server);
    close = async () => {
      server.closeAllConnections();
      server.close();
    };
  } else {
    // Loaded only here, so the bare servers carry none of the mock's modules.
    const { createBank } = await import('../mock-gateways/bank/service.ts');
    const { startService } = await import('../mock-gateways/service.ts');
    const svc = await startService(createBank(), {
      seed: BENCH_SEED,
      profile: BANK_PROFILES[kind],
      host: '127.0.0.1',
      port: 0,
    });
    url = svc.url;
    close = () => svc.close();
  }
  process.stdout.write(`${JSON.stringify({ kind, url, pid: process.pid })}\n`);

  // --eld: sample the event loop's delay (how late a 5 ms timer fires) and print its
  // quantiles as a second JSON line when stopped.
  const ELD_RESOLUTION_MS = 5;
  const eld = process.argv.includes('--eld')
    ? monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS })
    : undefined;
  eld?.enable();
  const reportEld = () => {
    if (!eld) return;
    eld.disable();
    // The histogram holds whole intervals between samples: take the 5 ms off.
    const ms = (ns: number) => Math.max(0, Math.round(ns / 1e3) / 1e3 - ELD_RESOLUTION_MS);
    const q = (p: number) => ms(eld.percentile(p));
    process.stdout.write(
      `${JSON.stringify({ eld: { samples: eld.count, p50Ms: q(50), p90Ms: q(90), p99Ms: q(99), maxMs: ms(eld.max), meanMs: ms(eld.mean) } })}\n`,
    );
  };

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    reportEld();
    // Give --cpu-prof time to write its profile; never hang.
    setTimeout(() => process.exit(0), 2_000).unref();
    close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (process.argv.includes('--exit-with-stdin')) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}

await main();
