// The engine's HTTP client: undici, one keep-alive pool per origin (an
// Agent), a timeout per request covering the whole exchange, and no throw:
// every failure (refused, reset, timed out, aborted) is an answer with status
// 0, as k6 reports it.
//
// The hot path is undici's dispatcher API with a handler of our own (no
// request/response stream objects, no AbortController, no timer per request):
// the body's chunks are kept and decoded once at the end, and timeouts sit in
// one FIFO queue per distinct timeout (deadlines in a queue are in order), each
// with a single timer armed at its head's deadline. `dispatch` hands the answer
// to a sink (no promise per request: the runner's hot path); `send` is the
// promise form. Answers are delivered after undici's callback has returned, all
// those of one turn in one microtask. bench:engine measured the difference
// (docs/PERFORMANCE.md, "Load engine").
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

/** Where `dispatch` delivers an answer: `slot` is the caller's own number for the request. */
export interface AnswerSink {
  answer(a: JourneyAnswer, slot: number): void;
}

/** The promise form of a sink (`send`). */
class PromiseSink implements AnswerSink {
  resolve!: (a: JourneyAnswer) => void;
  readonly promise = new Promise<JourneyAnswer>((r) => (this.resolve = r));
  answer(a: JourneyAnswer): void {
    this.resolve(a);
  }
}

/** One request in flight: undici's handler, and the answer's promise. */
class Exchange implements Dispatcher.DispatchHandler {
  status = 0;
  done = false;
  private abortFn: ((err?: Error) => void) | undefined;
  private cut = false;
  private first: Buffer | undefined;
  private rest: Buffer[] | undefined;
  answer: JourneyAnswer | undefined;

  constructor(
    private readonly client: HttpClient,
    readonly started: number,
    readonly deadline: number,
    /** Dropped once the answer is delivered: a finished exchange holds nothing of its journey. */
    public sink: AnswerSink | undefined,
    readonly slot: number,
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
    const abort = this.abortFn;
    this.finish(0, '');
    abort?.();
  }

  private finish(status: number, body: string) {
    if (this.done) return;
    this.done = true;
    this.first = undefined;
    this.rest = undefined;
    this.abortFn = undefined;
    this.answer = { status, body, durationMs: performance.now() - this.started };
    this.client.answered(this);
  }
}

/** Requests with the same timeout, in deadline order, and one timer for the earliest. */
class DeadlineQueue {
  private items: Exchange[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  push(x: Exchange) {
    // Answered exchanges leave from the head as they go (they mostly end in the order they began).
    this.skipDone();
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
  /** Answers to deliver (in the microtask `deliver`). */
  private ready: Exchange[] = [];
  private readonly deliver = () => {
    const xs = this.ready;
    this.ready = [];
    for (const x of xs) {
      const sink = x.sink!;
      const a = x.answer!;
      x.sink = undefined;
      x.answer = undefined;
      sink.answer(a, x.slot);
    }
  };

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

  /** Send one request; its answer comes as a promise. */
  send(r: JourneyRequest): Promise<JourneyAnswer> {
    const sink = new PromiseSink();
    this.dispatch(r, sink, 0);
    return sink.promise;
  }

  /** Send one request; its answer goes to `sink.answer(answer, slot)`, never before this returns. */
  dispatch(r: JourneyRequest, sink: AnswerSink, slot: number): void {
    const { origin, path } = splitUrl(r.url);
    const started = performance.now();
    const timeoutMs = r.timeoutS * 1000;
    const x = new Exchange(this, started, started + timeoutMs, sink, slot);
    this.inFlight += 1;
    let q = this.deadlines.get(timeoutMs);
    if (!q) this.deadlines.set(timeoutMs, (q = new DeadlineQueue()));
    q.push(x);
    this.agent.dispatch(
      {
        origin,
        path,
        method: r.method,
        // Stamped as a load balancer stamps it: the server can tell its own queue time.
        headers: { ...(r.headers ?? NO_HEADERS), 'x-request-start': `t=${Date.now()}` },
        body: r.body ?? null,
      },
      x,
    );
  }

  /** An exchange is over: its answer goes out with the others of this turn. */
  answered(x: Exchange): void {
    this.inFlight -= 1;
    if (this.ready.push(x) === 1) queueMicrotask(this.deliver);
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
