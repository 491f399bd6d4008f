// HTTP clients for the bank, the wallet and the coupon service. Each attempt
// classifies what came back: a definite answer (2xx, a 4xx decline or
// refusal) is returned; anything that may or may not have taken effect (5xx,
// reset, timeout, malformed body) throws an ambiguous DependencyError.
import { Agent, request } from 'undici';
import type { CheckoutConfig } from './config.ts';
import type { CheckoutMetrics } from './metrics.ts';
import { Dependency, DependencyError, type CallOptions } from './resilience.ts';

export interface HttpAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000, pipelining: 1 });

async function attempt<T>(
  method: 'GET' | 'POST',
  url: string,
  body: unknown,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
): Promise<HttpAnswer<T>> {
  let res;
  try {
    res = await request(url, {
      method,
      dispatcher: agent,
      signal,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      // The naive build sets no timeout of its own: these are undici's ceilings.
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
  } catch (e) {
    if (signal?.aborted) throw e; // Dependency.call turns this into `timeout`
    const code = (e as { code?: string }).code ?? 'network_error';
    // Refused: nothing reached the server, safe to retry, not ambiguous.
    if (code === 'ECONNREFUSED') throw new DependencyError('connection_refused', false, true);
    throw new DependencyError(
      code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' ? 'connection_reset' : 'network_error',
      true,
      true,
    );
  }
  let text: string;
  try {
    text = await res.body.text();
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new DependencyError('connection_reset', true, true, res.statusCode);
  }
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    throw new DependencyError('malformed_response', true, true, res.statusCode);
  }
  const s = res.statusCode;
  if (s === 429) throw new DependencyError('rate_limited', false, true, s);
  if (s === 409 && (parsed as { reason?: string }).reason === 'idempotency_key_in_use')
    throw new DependencyError('idempotency_key_in_use', true, true, s);
  if (s >= 500)
    throw new DependencyError(
      String((parsed as { reason?: string }).reason ?? `http_${s}`),
      true,
      true,
      s,
    );
  return { status: s, body: parsed as T };
}

export class GatewayClient {
  readonly dep: Dependency;
  constructor(
    readonly name: 'bank' | 'wallet' | 'coupon',
    readonly baseUrl: string,
    cfg: CheckoutConfig,
    metrics: CheckoutMetrics,
  ) {
    this.dep = new Dependency(name, cfg, metrics);
  }

  post<T = Record<string, unknown>>(
    op: string,
    path: string,
    body: unknown,
    opts: CallOptions & { idempotencyKey?: string },
  ): Promise<HttpAnswer<T>> {
    const headers: Record<string, string> = opts.idempotencyKey
      ? { 'idempotency-key': opts.idempotencyKey }
      : {};
    return this.dep.call(
      op,
      (signal) => attempt<T>('POST', this.baseUrl + path, body, headers, signal),
      opts,
    );
  }

  get<T = Record<string, unknown>>(
    op: string,
    path: string,
    opts: Omit<CallOptions, 'safeToRetry'> = {},
  ): Promise<HttpAnswer<T>> {
    return this.dep.call(
      op,
      (signal) => attempt<T>('GET', this.baseUrl + path, undefined, {}, signal),
      { ...opts, safeToRetry: true },
    );
  }
}

export interface Gateways {
  bank: GatewayClient;
  wallet: GatewayClient;
  coupon: GatewayClient;
}

export function makeGateways(
  urls: { bank: string; wallet: string; coupon: string },
  cfg: CheckoutConfig,
  metrics: CheckoutMetrics,
): Gateways {
  return {
    bank: new GatewayClient('bank', urls.bank.replace(/\/$/, ''), cfg, metrics),
    wallet: new GatewayClient('wallet', urls.wallet.replace(/\/$/, ''), cfg, metrics),
    coupon: new GatewayClient('coupon', urls.coupon.replace(/\/$/, ''), cfg, metrics),
  };
}
