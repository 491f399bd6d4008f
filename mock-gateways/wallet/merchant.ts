// A loopback "merchant" endpoint that records the wallet's notifications and
// answers them as told: for tests, demos and checking a signature by hand.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ATTEMPT_HEADER, NOTIFY_ID_HEADER, SIGNATURE_HEADER } from './notify.ts';

export interface ReceivedNotification {
  /** Arrival order, from 0. */
  seq: number;
  /** performance.now() at arrival (for gaps between arrivals). */
  at: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The exact raw body (what the signature covers). */
  raw: string;
  body: Record<string, unknown> | undefined;
  notifyId?: string;
  attempt?: number;
  signature?: string;
}

export interface MerchantAnswer {
  status: number;
  body?: string;
  /** Hold the answer this long first. */
  delayMs?: number;
}

export type MerchantResponder = (
  n: ReceivedNotification,
) => MerchantAnswer | Promise<MerchantAnswer>;

export interface Merchant {
  url: string;
  received: ReceivedNotification[];
  /** Resolve once `pred` holds for what was received (checked on each arrival); reject after timeoutMs. */
  waitFor(pred: (r: ReceivedNotification[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Acknowledges in both styles: 200 with the body `success`. */
export const ACK_SUCCESS: MerchantResponder = () => ({ status: 200, body: 'success' });

const header = (h: http.IncomingHttpHeaders, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export async function startMerchant(answer: MerchantResponder = ACK_SUCCESS): Promise<Merchant> {
  const received: ReceivedNotification[] = [];
  const waiters = new Set<() => void>();
  const holds = new Set<NodeJS.Timeout>();
  const hold = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        holds.delete(t);
        resolve();
      }, ms);
      holds.add(t);
    });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | undefined;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        body = undefined;
      }
      const attempt = Number(header(req.headers, ATTEMPT_HEADER));
      const n: ReceivedNotification = {
        seq: received.length,
        at: performance.now(),
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        raw,
        body,
        ...(header(req.headers, NOTIFY_ID_HEADER) !== undefined
          ? { notifyId: header(req.headers, NOTIFY_ID_HEADER) }
          : {}),
        ...(Number.isInteger(attempt) ? { attempt } : {}),
        ...(header(req.headers, SIGNATURE_HEADER) !== undefined
          ? { signature: header(req.headers, SIGNATURE_HEADER) }
          : {}),
      };
      received.push(n);
      for (const w of [...waiters]) w();
      Promise.resolve(answer(n))
        .then(async (a) => {
          if (a.delayMs) await hold(a.delayMs);
          res.statusCode = a.status;
          res.setHeader('content-type', 'text/plain');
          res.end(a.body ?? '');
        })
        .catch(() => {
          res.statusCode = 500;
          res.end('merchant error');
        });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/notify`,
    received,
    waitFor(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pred(received)) return;
          clearTimeout(t);
          waiters.delete(check);
          resolve();
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`merchant: condition not met after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const t of holds) clearTimeout(t);
      holds.clear();
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
