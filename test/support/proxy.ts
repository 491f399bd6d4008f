// A planted fault between a client and a real service: an HTTP proxy on
// loopback that forwards every request to `upstream` and lets the test answer
// some itself or rewrite what comes back (a checkout whose replays name
// another order, a mock whose reset does nothing).
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

export interface ProxyHooks {
  /** Answer this request here (not forwarded): `[status, JSON body]`, or undefined to forward it. */
  intercept?: (req: IncomingMessage) => [number, unknown] | undefined;
  /** The body to send back for an upstream answer (default: as it came). */
  rewrite?: (a: Answer) => string;
}

export interface Proxy {
  url: string;
  server: Server;
  close(): void;
}

export async function startProxy(upstream: string, hooks: ProxyHooks = {}): Promise<Proxy> {
  const server = createServer(async (req, res) => {
    const mine = hooks.intercept?.(req);
    if (mine) {
      res.writeHead(mine[0], { 'content-type': 'application/json' });
      res.end(JSON.stringify(mine[1]));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k))
        headers[k] = v;
    try {
      const r = await fetch(upstream + req.url, {
        method: req.method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
      });
      const a: Answer = { status: r.status, headers: r.headers, body: await r.text() };
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
      res.end(hooks.rewrite ? hooks.rewrite(a) : a.body);
    } catch {
      res.writeHead(502).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () => server.close(),
  };
}
