// flashcrowd's engine spread over runner processes (on this machine or
// others): the harness serves the plan over HTTP, N runners
// (`flashcrowd load --harness URL --segment k/N`) each take segment k of the
// schedule, the start instant is set once all N have registered, and each
// runner pushes its report every second and a final one. A runner that stops
// reporting for `silenceS` is declared dead: the run goes on to its audit and
// fails, naming the runner (its missing arrivals are unaccounted for); a runner
// that never registers fails the start (exit 2). Nothing waits forever.
//
// The API (JSON; errors are 4xx with {error, field}):
//   POST /v1/runners            {segment: "k/N", name}     -> {plan, whole, startAtMs | null, harnessNowMs}
//   GET  /v1/runners/:k/start                               -> {startAtMs | null, harnessNowMs}
//   POST /v1/runners/:k/reports {report, final, clockSkewMs} -> 204
// A runner measures its clock against the harness's from these answers (NTP's
// midpoint of the quickest round trip) and sends it with its reports.
import http from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { SegmentPlan, SegmentReport } from './runner.ts';
import { segmentPlan } from './embedded.ts';
import type { Segment } from './schedule.ts';
import { SegmentSet, segmentName } from './segments.ts';
import {
  EngineStartError,
  type LoadEngine,
  type LoadPlan,
  type LoadResult,
  type LoadSnapshot,
} from './types.ts';

export interface RemoteOptions {
  runners: number;
  /** host:port the harness listens on for runners (default 127.0.0.1:0, a free port). */
  listen?: string;
  /** The address runners are told to use, when it differs from the listening one (a NAT, a Service). */
  advertise?: string;
  /** Longest wait for every runner to register (s, default 120). */
  registerTimeoutS?: number;
  /** A runner silent this long is dead (s, default 10). */
  silenceS?: number;
  /** Lead time from the last registration to the start instant (ms, default 1000). */
  leadMs?: number;
  print?: (line: string) => void;
}

/** The plan a runner receives: its segment's share, the start instant once known. */
export interface RunnerPlan {
  plan: Omit<SegmentPlan, 'startAtMs'>;
  /** The whole run's plan (for its share and the summary). */
  whole: LoadPlan;
  startAtMs: number | null;
  /** The harness's clock when it answered (the runner estimates its skew from it). */
  harnessNowMs: number;
}

/** "k/N" (1-based) to a segment, or a message saying what is wrong. */
export function parseSegment(text: string, count?: number): Segment | string {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) return `"${text}" is not k/N (e.g. 2/8)`;
  const k = Number(m[1]);
  const n = Number(m[2]);
  if (n < 1 || n > 1024) return `N must be 1 to 1024 (got ${n})`;
  if (k < 1 || k > n) return `k must be 1 to ${n} (got ${k})`;
  if (count !== undefined && n !== count) return `this run has ${count} segments, not ${n}`;
  return { index: k - 1, count: n };
}

const registerSchema = z
  .object({
    segment: z.string(),
    name: z.string().max(200).default('runner'),
  })
  .strict();

const reportSchema = z
  .object({ report: z.unknown(), final: z.boolean(), clockSkewMs: z.number().optional() })
  .strict();

interface RunnerState {
  segment: Segment;
  name: string;
  lastSeenMs: number;
  /** Runner clock minus ours (ms), as the runner measured it. */
  skewMs: number | null;
  dead?: string;
}

export class RemoteEngine implements LoadEngine {
  readonly name = 'flashcrowd' as const;
  private server: http.Server | undefined;
  private readonly set: SegmentSet;
  private readonly runners = new Map<number, RunnerState>();
  private plan: LoadPlan | undefined;
  private startAtMs: number | null = null;
  private url = '';
  private finished: (() => void) | undefined;
  private readonly done: Promise<void>;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly o: RemoteOptions) {
    this.set = new SegmentSet(
      Array.from({ length: o.runners }, (_, i) => ({ index: i, count: o.runners })),
    );
    this.done = new Promise((r) => (this.finished = r));
  }

  describe(): string {
    return `flashcrowd engine on ${this.o.runners} runner process${this.o.runners === 1 ? '' : 'es'}`;
  }

  /** The URL runners register at (known once started). */
  harnessUrl(): string {
    return this.url;
  }

  private registered: Promise<void> | undefined;

  /** Listen, print how to start each runner, and wait until all have registered. */
  ready(plan: LoadPlan): Promise<void> {
    this.registered ??= this.listenAndWait(plan);
    return this.registered;
  }

  /** Set the start instant (a lead time from now); runners polling /start begin there. */
  async start(plan: LoadPlan): Promise<number> {
    await this.ready(plan);
    this.startAtMs = Date.now() + (this.o.leadMs ?? 1000);
    this.watchdog = setInterval(() => this.watch(), 500);
    return this.startAtMs;
  }

  private async listenAndWait(plan: LoadPlan): Promise<void> {
    this.plan = plan;
    this.server = http.createServer((req, res) => void this.handle(req, res));
    const [host = '127.0.0.1', port = '0'] = (this.o.listen ?? '127.0.0.1:0').split(/:(?=\d+$)/);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (e) =>
        reject(new EngineStartError(`cannot listen for runners on ${host}:${port}: ${e.message}`)),
      );
      this.server!.listen(Number(port), host, resolve);
    });
    const addr = this.server.address() as AddressInfo;
    // Listening on every address: runners elsewhere reach it by this host's name.
    const shownHost = host === '0.0.0.0' || host === '::' ? hostname() : host;
    this.url = `http://${this.o.advertise ?? `${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${addr.port}`}`;
    const print = this.o.print ?? (() => undefined);
    print(`waiting for ${this.o.runners} runner(s) at ${this.url}; start each with:`);
    for (let k = 1; k <= this.o.runners; k += 1)
      print(`  flashcrowd load --harness ${this.url} --segment ${k}/${this.o.runners}`);
    await this.allRegistered();
    print(`runners: ${this.describeRunners()} registered`);
  }

  private describeRunners(): string {
    return [...this.runners.values()]
      .sort((a, b) => a.segment.index - b.segment.index)
      .map(
        (r) =>
          `${segmentName(r.segment)} ${r.name}${r.skewMs === null ? '' : ` (clock ${signedMs(r.skewMs)})`}`,
      )
      .join(', ');
  }

  private allRegistered(): Promise<void> {
    const limitMs = (this.o.registerTimeoutS ?? 120) * 1000;
    const since = Date.now();
    return new Promise((resolve, reject) => {
      const check = setInterval(() => {
        if (this.runners.size === this.o.runners) {
          clearInterval(check);
          resolve();
        } else if (Date.now() - since > limitMs) {
          clearInterval(check);
          const missing = this.set.segments
            .filter((s) => !this.runners.has(s.index))
            .map(segmentName);
          void this.close();
          reject(
            new EngineStartError(
              `waited ${limitMs / 1000} s for ${this.o.runners} runner(s) at ${this.url}: ` +
                `${this.runners.size} registered, segment(s) ${missing.join(', ')} missing. ` +
                `Start them with \`flashcrowd load --harness ${this.url} --segment k/${this.o.runners}\`.`,
            ),
          );
        }
      }, 50);
    });
  }

  /** A runner silent too long is dead; once every runner is done or dead, the result is ready. */
  private watch() {
    const silenceMs = (this.o.silenceS ?? 10) * 1000;
    for (const r of this.runners.values())
      if (!r.dead && this.set.pending().some((s) => s.index === r.segment.index))
        if (Date.now() - r.lastSeenMs > silenceMs)
          r.dead =
            `runner ${segmentName(r.segment)} (${r.name}) sent nothing for ${silenceMs / 1000} s ` +
            'and is taken for dead (the process died or lost the network): its segment is incomplete';
    const open = this.set.pending().filter((s) => !this.runners.get(s.index)?.dead);
    if (open.length === 0) this.finished?.();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text ? (JSON.parse(text) as unknown) : {};
      if (req.method === 'POST' && url.pathname === '/v1/runners')
        return send(...this.register(body));
      const m = /^\/v1\/runners\/(\d+)\/(start|reports)$/.exec(url.pathname);
      const runner = m ? this.runners.get(Number(m[1]) - 1) : undefined;
      if (!m || !runner)
        return send(404, { error: `no such route or runner: ${req.method} ${url.pathname}` });
      runner.lastSeenMs = Date.now();
      if (m[2] === 'start' && req.method === 'GET')
        return send(200, { startAtMs: this.startAtMs, harnessNowMs: Date.now() });
      if (m[2] === 'reports' && req.method === 'POST') return send(...this.report(runner, body));
      return send(405, { error: `${req.method} is not allowed on ${url.pathname}` });
    } catch (e) {
      send(400, { error: `the body is not JSON: ${(e as Error).message}`, field: 'body' });
    }
  }

  private register(body: unknown): [number, unknown] {
    const p = registerSchema.safeParse(body);
    if (!p.success)
      return [400, { error: p.error.issues[0]!.message, field: p.error.issues[0]!.path.join('.') }];
    const seg = parseSegment(p.data.segment, this.o.runners);
    if (typeof seg === 'string') return [400, { error: seg, field: 'segment' }];
    const taken = this.runners.get(seg.index);
    if (taken && taken.name !== p.data.name)
      return [
        409,
        { error: `segment ${p.data.segment} is taken by ${taken.name}`, field: 'segment' },
      ];
    this.runners.set(seg.index, {
      segment: seg,
      name: p.data.name,
      lastSeenMs: Date.now(),
      skewMs: null,
    });
    const plan: RunnerPlan = {
      plan: segmentPlan(this.plan!, seg),
      whole: this.plan!,
      startAtMs: this.startAtMs,
      harnessNowMs: Date.now(),
    };
    return [200, plan];
  }

  private report(runner: RunnerState, body: unknown): [number, unknown] {
    const p = reportSchema.safeParse(body);
    if (!p.success)
      return [400, { error: p.error.issues[0]!.message, field: p.error.issues[0]!.path.join('.') }];
    const r = p.data.report as SegmentReport;
    if (!r || typeof r !== 'object' || !r.metrics || typeof r.started !== 'number')
      return [400, { error: 'not a segment report', field: 'report' }];
    r.segment = runner.segment;
    if (p.data.clockSkewMs !== undefined) runner.skewMs = p.data.clockSkewMs;
    if (p.data.final) this.set.finish(r);
    else this.set.update(r);
    return [204, undefined];
  }

  snapshot(): LoadSnapshot | undefined {
    return this.set.snapshot();
  }

  async result(): Promise<LoadResult> {
    if (!this.plan) throw new Error('the engine was not started');
    await this.done;
    const dead = [...this.runners.values()].flatMap((r) => (r.dead ? [r.dead] : []));
    const result = this.set.result(
      this.plan,
      `${this.describe()}: ${this.describeRunners()}`,
      dead,
    );
    await this.close();
    return result;
  }

  async stop(): Promise<void> {
    // Runners stop at the end of their schedule; a stopped harness answers no more, and they give up.
    this.finished?.();
    await this.close();
  }

  private async close() {
    clearInterval(this.watchdog);
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** "+3 ms", "-12 ms", "+0 ms": rounded first, so -0.3 is "+0", never "0" or "-0". */
function signedMs(ms: number): string {
  const n = Math.round(ms);
  return `${n < 0 ? '-' : '+'}${Math.abs(n)} ms`;
}
