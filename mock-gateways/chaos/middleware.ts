// Carries out the engine's decisions on real HTTP: delay, capacity limits,
// HTTP errors, domain declines, 429s, hangs, TCP resets, empty replies,
// malformed bodies, dribbled bodies, and ambiguous outcomes (the operation
// takes effect, then the caller gets the fault).
import { BulkheadPolicy, BulkheadRejectedError } from 'cockatiel';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ChaosDecision, ChaosEngine, DrawKey } from './engine.ts';
import type { MockMetrics } from '../metrics.ts';
import { IDEMPOTENCY_RELEASE, OPERATION_PENDING } from '../idempotency.ts';

export type DeclineRenderer = (
  req: Request,
  res: Response,
  operation: string,
  reason: string,
) => unknown;

const DEFAULT_HANG_MS = 120_000;
/** res.locals key: the DrawKey of the request's chaos decision (absent: no identity). */
export const CHAOS_KEY = 'chaosKey';

/** What the request's chaos draws were keyed by, for the domain's own draws (engine.draws()). */
export function drawKeyOf(res: Response): DrawKey | undefined {
  return res.locals[CHAOS_KEY] as DrawKey | undefined;
}
export const INJECTED_LATENCY_HEADER = 'x-flashcrowd-injected-latency-ms';
/** Set on every answer the chaos engine made up (a fault, or a capacity refusal): its kind. */
export const INJECTED_FAULT_HEADER = 'x-flashcrowd-fault';
const MALFORMED_BODY = '{"status":"succeeded","amount":';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Resolve at `deadline` (performance.now() time), never more than half a
 * millisecond early. Timers take whole milliseconds (a fractional delay would
 * also cost a timer list of its own) and count from the event loop's cached
 * time, which can lag; so round, and wait again when a timer fires early.
 */
async function waitUntil(deadline: number): Promise<void> {
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0.5) return;
    await sleep(Math.round(left));
  }
}

/** Capacity limits keyed by scope (the service, or one operation), rebuilt when the profile changes them. */
class Capacity {
  private readonly limits = new Map<string, { key: string; policy: BulkheadPolicy }>();

  policy(scope: string, spec: { maxInFlight: number; queue?: number }): BulkheadPolicy {
    const key = `${spec.maxInFlight}/${spec.queue ?? 0}`;
    const cur = this.limits.get(scope);
    if (cur && cur.key === key) return cur.policy;
    const policy = new BulkheadPolicy(spec.maxInFlight, spec.queue ?? 0);
    this.limits.set(scope, { key, policy });
    return policy;
  }
}

function recordAnswer(
  record: (outcome: string, reason: string, seconds: number) => void,
  res: Response,
  started: number,
) {
  record(
    outcomeOf(res.statusCode),
    String(res.locals.reason ?? 'none'),
    (performance.now() - started) / 1000,
  );
}

function outcomeOf(status: number): string {
  if (status < 400) return 'ok';
  if (status === 402) return 'declined';
  if (status < 500) return 'rejected';
  return 'error';
}

export function chaosMiddlewareFactory(
  engine: ChaosEngine<unknown>,
  metrics: MockMetrics,
  decline: DeclineRenderer,
) {
  const capacity = new Capacity();

  /** Wrap a domain handler for `operation`. */
  return function op(operation: string, handler: RequestHandler): RequestHandler {
    const record = metrics.recorder(operation);
    return (req: Request, res: Response, next: NextFunction) => {
      const started = performance.now();
      const decision: ChaosDecision = engine.decide(
        operation,
        req.headers,
        engine.identityOf(operation, req),
      ); // throws ProfileError on a bad x-fault-* header
      if (decision.key) res.locals[CHAOS_KEY] = decision.key;
      const fault = decision.fault;
      // Nothing injected (the common case under load): the handler answers at once,
      // mostly before it returns, and then the answer is counted without a listener.
      if (!fault && decision.latencyMs === 0 && !decision.capacity) {
        let out: unknown;
        res.locals[OPERATION_PENDING] = true;
        try {
          out = handler(req, res, next);
        } catch (err) {
          next(err);
        }
        if (out instanceof Promise)
          out.then(
            () => operationOver(res),
            () => operationOver(res),
          );
        else operationOver(res);
        // No named closure per request here: tsx (esbuild keepNames) would name each one.
        if (res.writableEnded) recordAnswer(record, res, started);
        else {
          metrics.inFlightNow += 1;
          res.once('close', () => {
            metrics.inFlightNow -= 1;
            recordAnswer(record, res, started);
          });
        }
        return out;
      }

      metrics.inFlightNow += 1;
      // Set when the caller gets a broken answer (reset, empty, hang, malformed) instead of a status.
      const state = { connectionFault: false };
      res.once('close', () => {
        metrics.inFlightNow -= 1;
        const outcome = state.connectionFault ? 'fault' : outcomeOf(res.statusCode);
        const reason = String(state.connectionFault ? fault?.kind : (res.locals.reason ?? 'none'));
        record(outcome, reason, (performance.now() - started) / 1000);
      });

      // Tell the caller what was injected, so a client can tell injected latency from overhead.
      if (decision.latencyMs > 0)
        res.setHeader(INJECTED_LATENCY_HEADER, decision.latencyMs.toFixed(3));
      if (fault) res.setHeader(INJECTED_FAULT_HEADER, fault.kind);
      if (fault)
        metrics.faults.inc({
          operation,
          kind: fault.ambiguous ? `ambiguous_${fault.kind}` : fault.kind,
          source: fault.source,
        });
      return injected(req, res, next, { operation, handler, decision, started, state });
    };
  };

  /** Serve a request the engine injects latency, a fault or a capacity limit into. */
  async function injected(
    req: Request,
    res: Response,
    next: NextFunction,
    ctx: {
      operation: string;
      handler: RequestHandler;
      decision: ChaosDecision;
      started: number;
      state: { connectionFault: boolean };
    },
  ): Promise<void> {
    const { operation, handler, decision, started, state } = ctx;
    const fault = decision.fault;
    // The operation still runs after the injected wait, whether or not the
    // client is still there (a timed-out caller does not cancel a charge).
    const runs = !fault || fault.kind === 'dribble' || fault.ambiguous === true;
    res.locals[OPERATION_PENDING] = runs;
    const serve = async () => {
      // The injected latency counts from the request's arrival: time already spent
      // here (body parsing, a capacity queue) is part of it, as it is at a real bank.
      if (decision.latencyMs > 0) await waitUntil(started + decision.latencyMs);
      if (!fault) return runHandler(handler, req, res, next);
      if (fault.kind === 'dribble') {
        interceptSend(res, (status, body) =>
          dribble(res, status, body, fault.chunkBytes ?? 16, fault.intervalMs ?? 100),
        );
        return runHandler(handler, req, res, next);
      }
      if (fault.ambiguous) {
        // The operation takes effect; the answer is replaced by the fault.
        interceptSend(res, () => {
          state.connectionFault = fault.kind !== 'http';
          return applyFault(req, res, operation, fault.kind, fault, decline);
        });
        return runHandler(handler, req, res, next);
      }
      state.connectionFault = ['hang', 'reset', 'empty', 'malformed'].includes(fault.kind);
      return applyFault(req, res, operation, fault.kind, fault, decline);
    };

    if (fault?.kind === 'reset' && !fault.ambiguous && decision.latencyMs === 0) {
      state.connectionFault = true;
      return resetSocket(res);
    }
    if (!decision.capacity) return void (await serve());
    const scope = engine.getProfile().operations?.[operation]?.capacity ? operation : '__service';
    const policy = capacity.policy(scope, decision.capacity);
    try {
      await policy.execute(
        () =>
          new Promise<void>((resolve) => {
            res.once('close', () => resolve());
            serve().catch((err) => {
              next(err);
            });
          }),
      );
    } catch (err) {
      if (!(err instanceof BulkheadRejectedError)) throw err;
      res.locals.reason = 'capacity_exceeded';
      res
        .status(503)
        .set(INJECTED_FAULT_HEADER, 'capacity')
        .set('Retry-After', '1')
        .json({
          error: 'service_unavailable',
          reason: 'capacity_exceeded',
          message: `${engine.service} is at capacity (${decision.capacity.maxInFlight} in flight, queue ${decision.capacity.queue ?? 0} full)`,
        });
    }
  }
}

async function runHandler(
  handler: RequestHandler,
  req: Request,
  res: Response,
  next: NextFunction,
) {
  try {
    await handler(req, res, next);
  } finally {
    operationOver(res);
  }
}

/** The operation is over: an idempotency key it did not answer under is free again. */
function operationOver(res: Response) {
  res.locals[OPERATION_PENDING] = false;
  if (res.writableEnded && !res.destroyed) return;
  const release = res.locals[IDEMPOTENCY_RELEASE] as (() => void) | undefined;
  // Answered (stored or released by the answer), or the client left: the entry is
  // stored when the answer was storable; otherwise free the key.
  release?.();
}

/** Replace res.send so the handler's answer goes through `fn` instead. */
function interceptSend(res: Response, fn: (status: number, body: string) => unknown) {
  const original = res.send.bind(res);
  let done = false;
  res.send = ((body?: unknown) => {
    if (done) return original(body as never);
    done = true;
    res.send = original;
    const text =
      typeof body === 'string' || Buffer.isBuffer(body) ? String(body) : JSON.stringify(body);
    fn(res.statusCode, text);
    return res;
  }) as Response['send'];
}

function resetSocket(res: Response) {
  const sock = res.req.socket;
  if (typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
  else sock.destroy();
}

function dribble(
  res: Response,
  status: number,
  body: string,
  chunkBytes: number,
  intervalMs: number,
) {
  const buf = Buffer.from(body);
  res.status(status);
  if (!res.get('Content-Type')) res.type('application/json');
  res.setHeader('Content-Length', buf.length);
  res.flushHeaders();
  let off = 0;
  const tick = () => {
    if (res.destroyed) return;
    const end = Math.min(off + chunkBytes, buf.length);
    res.write(buf.subarray(off, end));
    off = end;
    if (off >= buf.length) res.end();
    else setTimeout(tick, intervalMs);
  };
  tick();
}

function applyFault(
  req: Request,
  res: Response,
  operation: string,
  kind: string,
  fault: { status?: number; reason?: string; retryAfterS?: number; hangMs?: number },
  decline: DeclineRenderer,
): unknown {
  switch (kind) {
    case 'http': {
      const status = fault.status ?? 503;
      const reason = status >= 500 ? 'upstream_unavailable' : 'injected_client_error';
      res.locals.reason = reason;
      return res.status(status).json({
        error: 'injected_fault',
        reason,
        status,
        message: `chaos: injected HTTP ${status} on ${operation}`,
      });
    }
    case 'decline':
      res.locals.reason = fault.reason;
      return decline(req, res, operation, fault.reason ?? 'processing_error');
    case 'rate_limit': {
      const s = fault.retryAfterS ?? 1;
      res.locals.reason = 'rate_limited';
      return res
        .status(429)
        .set('Retry-After', String(s))
        .json({
          error: 'rate_limited',
          reason: 'rate_limited',
          retryAfterS: s,
          message: `chaos: too many requests; retry after ${s} s`,
        });
    }
    case 'hang': {
      const t = setTimeout(() => res.req.socket.destroy(), fault.hangMs ?? DEFAULT_HANG_MS);
      res.once('close', () => clearTimeout(t));
      return undefined;
    }
    case 'reset':
      return resetSocket(res);
    case 'empty':
      // Close our side without writing a byte: the client sees an empty reply.
      return res.req.socket.end();
    case 'malformed':
      res.locals.reason = 'malformed';
      return res.status(200).type('application/json').send(MALFORMED_BODY);
    default:
      throw new Error(`unknown fault kind ${kind}`);
  }
}
