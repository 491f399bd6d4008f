// The servers `npm run bench:engine` loads, one per process:
// `node bin/run-ts.js bench/engine-servers.ts KIND`.
//
//   get            bare node:http: every request answers 200 {"status":"ok"} (the
//                  load generators' target: as little server work as possible)
//   stub-checkout  bare node:http answering the checkout routes the livestream
//                  journey calls, from memory, always with success:
//                  GET /v1/skus, POST /v1/orders -> 201 {id}, POST /v1/orders/:id/pay
//                  -> 200 {state:"paid"}, GET /v1/orders/:id -> 200 {id, state:"paid"}
//
// Listens on 127.0.0.1, port 0, and prints one JSON line {kind, url, pid}. Exits
// on SIGTERM/SIGINT, and when stdin closes (the runner died).
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export const ENGINE_SERVER_KINDS = ['get', 'stub-checkout'] as const;
export type EngineServerKind = (typeof ENGINE_SERVER_KINDS)[number];

const OK = Buffer.from('{"status":"ok"}');
const JSON_HEADERS = { 'content-type': 'application/json' };

function send(res: http.ServerResponse, status: number, body: Buffer | string) {
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function getServer(): http.Server {
  return http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    // A GET has no body; anything else sent is drained and answered the same.
    req.resume();
    send(res, 200, OK);
  });
}

const SKUS = JSON.stringify({
  skus: [
    { id: 'lipstick', name: 'lipstick', price: 9900, available: 1_000_000 },
    { id: 'mask', name: 'mask', price: 4900, available: 1_000_000 },
  ],
});

function stubCheckout(): http.Server {
  let seq = 0;
  return http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    req.resume();
    req.on('end', () => {
      if (method === 'GET' && url === '/v1/skus') return send(res, 200, SKUS);
      if (method === 'POST' && url === '/v1/orders') {
        seq += 1;
        return send(res, 201, `{"id":"o${seq}","state":"pending"}`);
      }
      const m = /^\/v1\/orders\/([^/]+)(\/pay)?$/.exec(url);
      if (m && method === 'POST' && m[2]) return send(res, 200, `{"id":"${m[1]}","state":"paid"}`);
      if (m && method === 'GET' && !m[2]) return send(res, 200, `{"id":"${m[1]}","state":"paid"}`);
      send(res, 404, '{"error":"not_found"}');
    });
  });
}

async function main() {
  const kind = process.argv[2] as EngineServerKind | undefined;
  if (!kind || !(ENGINE_SERVER_KINDS as readonly string[]).includes(kind)) {
    console.error(
      `usage: node bin/run-ts.js bench/engine-servers.ts (${ENGINE_SERVER_KINDS.join('|')})`,
    );
    process.exit(2);
  }
  const server = kind === 'get' ? getServer() : stubCheckout();
  // The accept queue as deep as the kernel allows (net.core.somaxconn; Node's default is 511): a
  // generator that opens a thousand connections at once after a stall must not meet SYN drops and
  // their 1 s retransmit, which would measure the kernel's backlog, not the generator.
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.stdout.write(`${JSON.stringify({ kind, url, pid: process.pid })}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), 2_000).unref();
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

await main();
