// The engine's HTTP client: undici, one keep-alive pool per origin (an
// Agent), a timeout per request covering the whole exchange, and no throw:
// every failure (refused, reset, timed out, aborted) is an answer with status
// 0, as k6 reports it.
import { Agent } from 'undici';
import type { JourneyAnswer, JourneyRequest } from '../../scenarios/lib/journey.ts';

export interface HttpClientOptions {
  /** Most connections per origin (default: as many as needed). */
  connections?: number;
}

/** `http://host:port` of a URL, and its path (fast: no URL object per request). */
export function splitUrl(url: string): { origin: string; path: string } {
  const scheme = url.indexOf('://');
  if (scheme < 0) throw new Error(`not an absolute URL: ${url}`);
  const slash = url.indexOf('/', scheme + 3);
  return slash < 0
    ? { origin: url, path: '/' }
    : { origin: url.slice(0, slash), path: url.slice(slash) };
}

export class HttpClient {
  private readonly agent: Agent;

  constructor(o: HttpClientOptions = {}) {
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      pipelining: 1,
      ...(o.connections ? { connections: o.connections } : {}),
    });
  }

  private readonly inFlight = new Set<AbortController>();

  /** Send one request. */
  async send(r: JourneyRequest): Promise<JourneyAnswer> {
    const { origin, path } = splitUrl(r.url);
    const started = performance.now();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), r.timeoutS * 1000);
    this.inFlight.add(ac);
    try {
      const res = await this.agent.request({
        origin,
        path,
        method: r.method,
        headers: r.headers ?? {},
        ...(r.body === undefined ? {} : { body: r.body }),
        signal: ac.signal,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      const body = await res.body.text();
      return { status: res.statusCode, body, durationMs: performance.now() - started };
    } catch {
      return { status: 0, body: '', durationMs: performance.now() - started };
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(ac);
    }
  }

  /** End every request in flight now (the run's hard stop): each answers status 0. */
  abortAll(): void {
    for (const ac of this.inFlight) ac.abort();
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }
}
