// Small HTTP helpers for tests that talk to real servers on loopback.
import http from 'node:http';
import {
  startService,
  type AnyServiceDefinition,
  type RunningService,
  type ServiceOptions,
} from '../../mock-gateways/service.ts';

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** fetch + JSON. Network errors (reset, empty reply) throw, as they would for a real client. */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep text */
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export type RawOutcome =
  | {
      kind: 'response';
      status: number;
      body: string;
      ms: number;
      headers: http.IncomingHttpHeaders;
    }
  | { kind: 'reset' | 'closed' | 'timeout' | 'error'; code?: string; ms: number };

/**
 * One request on a fresh connection with node:http, classifying what a real
 * client sees: a response, a reset (ECONNRESET), a closed connection with no
 * reply, or a client timeout.
 */
export function rawRequest(
  url: string,
  opts: {
    method?: string;
    body?: unknown;
    headers?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<RawOutcome> {
  const started = performance.now();
  const ms = () => performance.now() - started;
  return new Promise((resolve) => {
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      url,
      {
        method: opts.method ?? (data ? 'POST' : 'GET'),
        agent: false,
        headers: {
          ...(data
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }
            : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            kind: 'response',
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            ms: ms(),
            headers: res.headers,
          }),
        );
        res.on('error', (e: NodeJS.ErrnoException) =>
          resolve({ kind: e.code === 'ECONNRESET' ? 'reset' : 'error', code: e.code, ms: ms() }),
        );
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => {
      resolve({ kind: 'timeout', ms: ms() });
      req.destroy();
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' && e.message === 'socket hang up')
        resolve({ kind: 'closed', code: e.code, ms: ms() });
      else if (e.code === 'ECONNRESET') resolve({ kind: 'reset', code: e.code, ms: ms() });
      else resolve({ kind: 'error', code: e.code, ms: ms() });
    });
    if (data) req.write(data);
    req.end();
  });
}

/** Start a mock service on a free loopback port; remember to close it (see `useService`). */
export async function startMock(
  def: AnyServiceDefinition,
  opts: ServiceOptions = {},
): Promise<RunningService> {
  return startService(def, { port: 0, host: '127.0.0.1', ...opts });
}
