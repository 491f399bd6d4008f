// The scaffolding every mock service shares: express app, JSON parsing and
// errors, chaos middleware, admin routes (/__chaos, /__reset), /healthz,
// /metrics, and a listener that honours "refuse" outage windows.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import http from 'node:http';
import express, {
  type ErrorRequestHandler,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  type IRouter,
} from 'express';
import type { z } from 'zod';
import { mockOpenApi, type MockApi } from './api.ts';
import { tokenMatches } from './admin-token.ts';
import { ChaosEngine, ProfileError } from './chaos/engine.ts';
import { chaosMiddlewareFactory, type DeclineRenderer } from './chaos/middleware.ts';
import { HttpError, ValidationError } from './errors.ts';
import { MockMetrics } from './metrics.ts';
import { TimeScale, timeScaleProblem } from './time-scale.ts';

/** The furthest a PUT /__chaos may set its profile's clock back or ahead (8 digits, about 28 h). */
const MAX_ELAPSED_MS = 99_999_999;

export type ServiceName = 'bank' | 'wallet' | 'coupon';

export interface ServiceContext<E> {
  engine: ChaosEngine<E>;
  metrics: MockMetrics;
  /** Wrap a handler as operation `name`: chaos applies, metrics count it. */
  op(name: string, handler: RequestHandler): RequestHandler;
  /** The base URL once listening (for links and notify callbacks). */
  url(): string;
  /** The run's time-scale: multiplies every world duration of the domain (docs/MOCKS.md, Time-scale). */
  timeScale: TimeScale;
}

export interface ServiceDefinition<E> {
  name: ServiceName;
  operations: readonly string[];
  declineReasons: readonly string[];
  extraSchema: z.ZodType<E>;
  /** Its routes as GET /openapi.json describes them. */
  api: MockApi;
  /** Register the service's routes (on the app itself: a nested router costs a dispatch per request). */
  routes(router: IRouter, ctx: ServiceContext<E>): void;
  /** How an injected `decline` fault is answered for an operation. */
  decline: DeclineRenderer;
  /** Forget all domain state (POST /__reset). */
  reset(): void;
  /** Stop timers (notification retries, settlements). */
  close?(): void;
  /**
   * Levels of the domain read at scrape time, as `flashcrowd_mock_level{level}`
   * (the wallet's `notify_backlog`, the coupon service's `coupons_locked`).
   */
  levels?(): Record<string, number>;
}

export interface ServiceOptions {
  seed?: number;
  profile?: unknown;
  /** Accept admin calls from non-loopback addresses (token still applies). */
  adminRemote?: boolean;
  /** Bearer token for admin routes; default $FLASHCROWD_ADMIN_TOKEN. */
  adminToken?: string;
  /**
   * The run's time-scale, above 0 and at most 1 (default 1): multiplies every
   * world duration of the domain; `POST /__reset?timeScale=X` changes it.
   */
  timeScale?: number;
}

export interface RunningService {
  name: ServiceName;
  url: string;
  port: number;
  engine: ChaosEngine<unknown>;
  metrics: MockMetrics;
  timeScale: TimeScale;
  app: express.Express;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export function buildApp<E>(def: ServiceDefinition<E>, opts: ServiceOptions = {}) {
  const engine = new ChaosEngine<E>({
    service: def.name,
    operations: def.operations,
    declineReasons: def.declineReasons,
    extraSchema: def.extraSchema,
    seed: opts.seed ?? 1,
    profile: opts.profile,
  });
  const metrics = new MockMetrics(def.name, () => def.levels?.() ?? {});
  const timeScale = new TimeScale(opts.timeScale ?? 1);
  const op = chaosMiddlewareFactory(engine as ChaosEngine<unknown>, metrics, def.decline);
  let baseUrl = '';
  const ctx: ServiceContext<E> = { engine, metrics, op, url: () => baseUrl, timeScale };

  const admin = adminGuard(opts);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(guardPrefix('/__', admin));
  app.use(express.json({ limit: '256kb' }));

  // The service's routes first: they take the load, so express matches them before the rest.
  def.routes(app, ctx);

  app.get('/healthz', (_req, res) => {
    res.json({
      status: 'ok',
      service: def.name,
      seed: engine.seed,
      timeScale: timeScale.value,
      uptimeS: Math.round(process.uptime()),
    });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  let openapi: unknown;
  app.get('/openapi.json', (_req, res) => {
    res.json((openapi ??= mockOpenApi(def, def.api)));
  });

  const chaosState = () => ({
    service: def.name,
    seed: engine.seed,
    timeScale: timeScale.value,
    elapsedMs: Math.round(engine.elapsedMs()),
    profile: engine.getProfile(),
    effective: Object.fromEntries(def.operations.map((o) => [o, engine.effective(o)])),
  });
  const seedParam = (req: Request): number | undefined => {
    const raw = req.query.seed;
    if (raw === undefined) return undefined;
    const n = typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n))
      throw new ValidationError([{ field: 'seed', reason: 'must be an integer' }]);
    return n;
  };
  const elapsedParam = (req: Request): number => {
    const raw = req.query.elapsedMs;
    if (raw === undefined) return 0;
    const n = typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || Math.abs(n) > MAX_ELAPSED_MS)
      throw new ValidationError([
        {
          field: 'elapsedMs',
          reason: `must be an integer from -${MAX_ELAPSED_MS} to ${MAX_ELAPSED_MS}`,
        },
      ]);
    return n;
  };
  const timeScaleParam = (req: Request): number | undefined => {
    const raw = req.query.timeScale;
    if (raw === undefined) return undefined;
    const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    const problem = timeScaleProblem(n);
    if (problem) throw new ValidationError([{ field: 'timeScale', reason: problem }]);
    return n;
  };
  app.get('/__chaos', admin, (_req, res) => {
    res.json(chaosState());
  });
  app.put('/__chaos', admin, (req, res) => {
    const seed = seedParam(req);
    engine.setProfile(req.body ?? {}, elapsedParam(req));
    if (seed !== undefined) engine.reseed(seed);
    res.json(chaosState());
  });
  app.patch('/__chaos', admin, (req, res) => {
    engine.patchProfile(req.body ?? {});
    res.json(chaosState());
  });
  app.delete('/__chaos', admin, (_req, res) => {
    engine.clearProfile();
    res.json(chaosState());
  });
  app.post('/__reset', admin, (req, res) => {
    // Every parameter is checked before anything changes: a bad one is a 400 and resets nothing.
    const seed = seedParam(req);
    const scale = timeScaleParam(req);
    def.reset();
    metrics.reset();
    if (seed !== undefined) engine.reseed(seed);
    if (scale !== undefined) timeScale.set(scale);
    res.json({ status: 'reset', service: def.name, seed: engine.seed, timeScale: timeScale.value });
  });

  app.use(notFoundHandler);
  app.use(jsonErrorHandler(def.name));

  return { app, engine, metrics, timeScale, setUrl: (u: string) => (baseUrl = u) };
}

/**
 * Serve `app` on host:port (0: a free port), keeping its open sockets so a
 * close can end them (keep-alive connections would hold the server open).
 */
export async function listenTracked(
  app: http.RequestListener,
  port: number,
  host: string,
): Promise<{ server: http.Server; sockets: Set<Socket>; port: number; url: string }> {
  const server = http.createServer({ keepAliveTimeout: 5_000 }, app);
  server.on('clientError', answerClientError);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if (port !== 0) await listenOn(server, port, host);
  else await listenOutsideEphemeral(server, host);
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    sockets,
    port: bound,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
  };
}

/**
 * Requests Node refuses before express sees them get the JSON error body every
 * other answer has: a request line and headers over Node's limit (16 kB: a
 * long order id or query) is a 431 naming them, a request Node cannot parse a 400.
 */
function answerClientError(err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Socket) {
  if (!socket.writable || (err.code === 'ECONNRESET' && socket.destroyed)) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const [status, text, reason, field, why] = tooLarge
    ? [
        431,
        'Request Header Fields Too Large',
        'headers_too_large',
        '(request)',
        'the request line and headers are larger than 16 kB (a long path, query or header)',
      ]
    : [
        400,
        'Bad Request',
        'bad_request',
        '(request)',
        `not a valid HTTP request (${err.code ?? 'parse error'})`,
      ];
  const body = JSON.stringify({
    error: reason,
    reason,
    message: why,
    errors: [{ field, reason: why }],
  });
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Listen on `port`; rejects with the listen error (EADDRINUSE...). */
function listenOn(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** The first port of the kernel's ephemeral range (outgoing connections' source ports). */
function ephemeralLow(): number {
  try {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * A free port below the ephemeral range. A service that closes its listener
 * for a `refuse` window must get its port back afterwards: a port the kernel
 * picked (port 0) is an ephemeral one, which any outgoing connection may take
 * as its source port while the listener is closed, and the service would then
 * stay unreachable (EADDRINUSE). Falls back to port 0 after 50 tries.
 */
async function listenOutsideEphemeral(server: http.Server, host: string): Promise<void> {
  const high = ephemeralLow() - 1;
  const low = Math.min(10_000, high - 1000);
  for (let i = 0; i < 50; i++) {
    const port = low + Math.floor(Math.random() * (high - low));
    try {
      return await listenOn(server, port, host);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    }
  }
  await listenOn(server, 0, host);
}

/** Build a service and listen; port 0 picks a free port. Handles refuse windows by closing and reopening the listener. */
export async function startService<E>(
  def: ServiceDefinition<E>,
  opts: ServiceOptions & { port?: number; host?: string } = {},
): Promise<RunningService> {
  const { app, engine, metrics, timeScale, setUrl } = buildApp(def, opts);
  const host = opts.host ?? '127.0.0.1';
  const { server, sockets, port, url } = await listenTracked(app, opts.port ?? 0, host);
  setUrl(url);

  // "refuse" outage windows: stop listening while down, listen again after.
  let listening = true;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const sync = () => {
    if (closed) return;
    clearTimeout(timer);
    const down = engine.refusing();
    let retryMs: number | undefined;
    if (down && listening) {
      server.close();
      listening = false;
    } else if (!down && !listening) {
      listening = true;
      listenOn(server, port, host).catch((e: NodeJS.ErrnoException) => {
        // The port is taken for now (an outgoing connection's source port): try again soon.
        listening = false;
        console.error(
          `[${def.name}] cannot listen again on ${port} (${e.code ?? e.message}); retrying`,
        );
        if (!closed) timer = setTimeout(sync, 100);
      });
    }
    const next = engine.nextBoundaryMs();
    if (next !== undefined) retryMs = Math.max(1, next + 1);
    if (retryMs !== undefined) timer = setTimeout(sync, retryMs);
  };
  engine.onChange(sync);
  sync();

  return {
    name: def.name,
    url,
    port,
    engine: engine as ChaosEngine<unknown>,
    metrics,
    timeScale,
    app,
    async close() {
      closed = true;
      clearTimeout(timer);
      def.close?.();
      if (listening) server.close();
      for (const s of sockets) s.destroy();
      if (listening) await once(server, 'close').catch(() => undefined);
    },
  };
}

/** A service definition whatever its `extra` type (for registries). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyServiceDefinition = ServiceDefinition<any>;

/**
 * Guard for admin routes: loopback clients only unless `adminRemote`, and a
 * bearer token when one is set (option or $FLASHCROWD_ADMIN_TOKEN).
 */
export function adminGuard(opts: { adminRemote?: boolean; adminToken?: string }): RequestHandler {
  const token = opts.adminToken ?? process.env.FLASHCROWD_ADMIN_TOKEN;
  return (req, res, next) => {
    if (!opts.adminRemote && !LOOPBACK.test(req.socket.remoteAddress ?? '')) {
      res.status(403).json({
        error: 'forbidden',
        reason: 'admin_loopback_only',
        message:
          'admin routes answer loopback clients only (start with --admin-remote to allow others)',
      });
      return;
    }
    if (token && !tokenMatches(req.get('authorization'), token)) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json({
        error: 'unauthorized',
        reason: 'admin_token_required',
        message: 'admin routes need "Authorization: Bearer <FLASHCROWD_ADMIN_TOKEN>"',
      });
      return;
    }
    next();
  };
}

/**
 * Run `guard` on every request whose path starts with `prefix` (any case, as
 * express routes), before the body is read: a caller without the token gets
 * 401, not a 400 about its body or a 404 about the path.
 */
export function guardPrefix(prefix: string, guard: RequestHandler): RequestHandler {
  const p = prefix.toLowerCase();
  return (req, res, next) => {
    if (req.url.slice(0, p.length).toLowerCase() === p) guard(req, res, next);
    else next();
  };
}

interface RouteLayer {
  route?: { methods: Record<string, boolean> };
  match(path: string): boolean;
}

/**
 * The methods the app's routes answer on this request's path (HEAD with GET),
 * empty when no route has the path.
 */
function allowedMethods(req: Request): string[] {
  const stack = (req.app as unknown as { router?: { stack: RouteLayer[] } }).router?.stack ?? [];
  const methods = new Set<string>();
  for (const layer of stack)
    if (layer.route && layer.match(req.path))
      for (const m of Object.keys(layer.route.methods)) methods.add(m.toUpperCase());
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}

/**
 * 405 (with `Allow`) for a path served with other methods, 404 for any route
 * no one answers. Both carry the JSON error body.
 */
export const notFoundHandler: RequestHandler = (req, res) => {
  const allow = allowedMethods(req);
  if (allow.length > 0) {
    res
      .status(405)
      .set('Allow', allow.join(', '))
      .json({
        error: 'method_not_allowed',
        reason: 'method_not_allowed',
        message: `${req.method} is not served on ${req.path}; it answers ${allow.join(', ')}`,
        errors: [{ field: '(method)', reason: `must be one of ${allow.join(', ')}` }],
      });
    return;
  }
  res.status(404).json({
    error: 'not_found',
    reason: 'no_such_route',
    message: `no route ${req.method} ${req.path}`,
  });
};

/** Turn thrown errors into JSON answers naming the field and the reason. */
export function jsonErrorHandler(service: string): ErrorRequestHandler {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    res.locals.reason = 'invalid_request';
    if (err instanceof ValidationError || err instanceof ProfileError) {
      const status = err instanceof ValidationError ? err.status : 400;
      const code = err instanceof ValidationError ? err.code : 'invalid_profile';
      res.locals.reason = code;
      res
        .status(status)
        .json({ error: code, reason: code, message: err.message, errors: err.errors });
      return;
    }
    if (err instanceof HttpError) {
      res.locals.reason = err.code;
      res
        .status(err.status)
        .json({ error: err.code, reason: err.code, message: err.message, ...err.extra });
      return;
    }
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.parse.failed') {
      res.status(400).json({
        error: 'invalid_json',
        reason: 'invalid_json',
        message: `request body is not valid JSON: ${e.message}`,
        errors: [{ field: '(body)', reason: 'not valid JSON' }],
      });
      return;
    }
    if (e?.type === 'entity.too.large') {
      res.status(413).json({
        error: 'body_too_large',
        reason: 'body_too_large',
        message: 'request body is larger than 256 kB',
        errors: [{ field: '(body)', reason: 'larger than 256 kB' }],
      });
      return;
    }
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      res.status(e.status).json({
        error: 'bad_request',
        reason: 'bad_request',
        message: e.message ?? 'bad request',
        errors: [{ field: '(request)', reason: e.message ?? 'bad request' }],
      });
      return;
    }
    console.error(`[${service}] internal error:`, err);
    res.locals.reason = 'internal_error';
    res.status(500).json({
      error: 'internal_error',
      reason: 'internal_error',
      message: `the ${service} service failed; see its log`,
    });
  };
}
