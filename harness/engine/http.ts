// The engine's HTTP client: undici, one keep-alive pool per origin (an
// Agent), a timeout per request covering the whole exchange, and no throw:
// every failure (refused, reset, timed out, aborted) is an answer with status
// 0, as k6 reports it.
//
// The hot path is undici's dispatcher API with a handler of our own (no
// request/response stream objects, no AbortController, no timer per request):
// the body's chunks are kept and decoded once at the end, and timeouts sit in
// one FIFO queue per distinct timeout (deadlines in a queue are in order), each
// with a single timer armed at its head's deadline. bench:engine measured the
// difference (docs/PERFORMANCE.md, "Load engine").
import { Agent, type Dispatcher } from 'undici';
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

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** One request in flight: undici's handler, and the answer's promise. */
class Exchange implements Dispatcher.DispatchHandler {
  status = 0;
  done = false;
  private abortFn: ((err?: Error) => void) | undefined;
  private cut = false;
  private first: Buffer | undefined;
  private rest: Buffer[] | undefined;
  resolve!: (a: JourneyAnswer) => void;

  constructor(
    private readonly client: HttpClient,
    readonly started: number,
    readonly deadline: number,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    if (this.cut) abort();
    else this.abortFn = abort;
  }

  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.first === undefined) this.first = chunk;
    else (this.rest ??= [this.first]).push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.done) return;
    const body = this.rest
      ? Buffer.concat(this.rest).toString('utf8')
      : (this.first?.toString('utf8') ?? '');
    this.finish(this.status, body);
  }

  onError(): void {
    this.finish(0, '');
  }

  /** Time out or hard stop: answer status 0 now, and abort the exchange (now, or once it is on a connection). */
  abort(): void {
    if (this.done) return;
    this.cut = true;
    this.finish(0, '');
    this.abortFn?.();
  }

  private finish(status: number, body: string) {
    if (this.done) return;
    this.done = true;
    this.client.inFlight -= 1;
    this.first = undefined;
    this.rest = undefined;
    this.resolve({ status, body, durationMs: performance.now() - this.started });
  }
}

/** Requests with the same timeout, in deadline order, and one timer for the earliest. */
class DeadlineQueue {
  private items: Exchange[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  push(x: Exchange) {
    this.items.push(x);
    if (!this.timer) this.arm();
  }

  private arm() {
    this.skipDone();
    const next = this.items[this.head];
    if (!next) {
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(
      () => this.expire(),
      Math.max(1, Math.ceil(next.deadline - performance.now())),
    );
  }

  private skipDone() {
    const items = this.items;
    while (this.head < items.length && items[this.head]!.done) this.head += 1;
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
  }

  private expire() {
    const now = performance.now();
    while (this.head < this.items.length) {
      const x = this.items[this.head]!;
      if (!x.done && x.deadline > now) break;
      this.head += 1;
      x.abort();
    }
    this.arm();
  }

  abortAll() {
    for (let i = this.head; i < this.items.length; i++) this.items[i]!.abort();
    this.items.length = 0;
    this.head = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export class HttpClient {
  private readonly agent: Agent;
  private readonly deadlines = new Map<number, DeadlineQueue>();
  /** Requests sent and not answered yet. */
  inFlight = 0;

  constructor(o: HttpClientOptions = {}) {
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      pipelining: 1,
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(o.connections ? { connections: o.connections } : {}),
    });
  }

  /** Send one request. */
  send(r: JourneyRequest): Promise<JourneyAnswer> {
    const { origin, path } = splitUrl(r.url);
    const started = performance.now();
    const timeoutMs = r.timeoutS * 1000;
    const x = new Exchange(this, started, started + timeoutMs);
    const answer = new Promise<JourneyAnswer>((resolve) => (x.resolve = resolve));
    this.inFlight += 1;
    let q = this.deadlines.get(timeoutMs);
    if (!q) this.deadlines.set(timeoutMs, (q = new DeadlineQueue()));
    q.push(x);
    this.agent.dispatch(
      {
        origin,
        path,
        method: r.method,
        headers: r.headers ?? NO_HEADERS,
        body: r.body ?? null,
      },
      x,
    );
    return answer;
  }

  /** End every request in flight now (the run's hard stop): each answers status 0. */
  abortAll(): void {
    for (const q of this.deadlines.values()) q.abortAll();
  }

  async close(): Promise<void> {
    this.abortAll();
    await this.agent.destroy();
  }
}
