// Checkout HTTP routes: thin handlers over ./checkout.ts, plus load shedding,
// request deadlines, metrics, health and the admin routes.
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { parseInput, ValidationError } from '../mock-gateways/errors.ts';
import { IdempotencyStore, OPERATION_PENDING } from '../mock-gateways/idempotency.ts';
import {
  adminGuard,
  guardPrefix,
  jsonErrorHandler,
  listenTracked,
  notFoundHandler,
} from '../mock-gateways/service.ts';
import { checkoutOpenApi } from './api.ts';
import { Checkout, orderView, type Answer } from './checkout.ts';
import { applyOverrides, defaultConfig, type CheckoutConfig, type Mode } from './config.ts';
import { makeGateways } from './gateways.ts';
import { CheckoutMetrics } from './metrics.ts';
import {
  redisReady,
  redisReason,
  redisUnavailable,
  reportRedisOutages,
  waitForRedis,
} from './redis-health.ts';
import { timeRedis } from './redis-timing.ts';
import { cancelInput, createOrderInput, listOrdersQuery, payInput, saleInput } from './schema.ts';
import { connectRedis, Store, type RedisClient } from './store.ts';

export interface CheckoutOptions {
  redisUrl: string;
  /** Connect with the Redis Cluster client. */
  cluster?: boolean;
  bank: string;
  wallet: string;
  coupon: string;
  mode?: Mode;
  set?: string[];
  port?: number;
  host?: string;
  adminRemote?: boolean;
  adminToken?: string;
  /**
   * The base URL the gateways call this checkout back at (wallet
   * notifications); default the URL it listens on. Needed when that is not
   * reachable from the gateways (0.0.0.0 in a container: `http://checkout:8100`).
   */
  publicUrl?: string;
  /** Start the sweeper, reconciler and stream consumer (default true). */
  background?: boolean;
}

export interface RunningCheckout {
  url: string;
  /** The express app (its routes are what GET /openapi.json describes). */
  app: express.Express;
  port: number;
  config: CheckoutConfig;
  checkout: Checkout;
  store: Store;
  metrics: CheckoutMetrics;
  close(): Promise<void>;
}

const DEADLINE_HEADER = 'x-request-deadline-ms';
/** How long startCheckout waits for Redis before it serves anyway. */
const REDIS_WAIT_MS = 5_000;

function send(res: Response, a: Answer) {
  if (a.headers) res.set(a.headers);
  res.locals.reason = a.body.reason;
  if (typeof a.body.text === 'string') res.status(a.status).type('text/plain').send(a.body.text);
  else res.status(a.status).json(a.body);
}

/**
 * What a shed request is: `new` work (the product page, a new order) is shed
 * once it waited `shedMaxQueueMs`, `ongoing` work (an order's pay, status,
 * cancel) once it waited four times that, so orders already holding stock
 * finish first. `false`: never shed (the gateways' callbacks).
 */
type ShedClass = 'new' | 'ongoing' | false;

/**
 * When the request left its client, from `X-Request-Start` (`t=` and epoch
 * seconds, milliseconds or microseconds, as load balancers write it; the
 * flashcrowd engine sends milliseconds): undefined when absent or not a time.
 */
export function requestStartMs(raw: string | undefined): number | undefined {
  if (!raw) return undefined;
  const v = Number(raw.replace(/^t=/, ''));
  if (!Number.isFinite(v) || v <= 0) return undefined;
  if (v < 1e11) return v * 1000; // seconds (nginx's $msec)
  if (v > 1e14) return v / 1000; // microseconds
  return v;
}

/**
 * How long a request stamped at `sent` waited: undefined without a stamp, or
 * when the stamp is more than a minute off either way (clocks out of sync
 * between the client's host and this one: no request waits that long).
 */
export function queueTimeMs(sent: number | undefined, now: number): number | undefined {
  if (sent === undefined || Math.abs(now - sent) > 60_000) return undefined;
  return Math.max(0, now - sent);
}

/**
 * Load shedding: refuse shopper requests with 503 + Retry-After when too many
 * are in flight, when the event loop lags (its p99 delay over the last
 * second), new work when Redis is slow (more than 1% of its commands over
 * shedMaxRedisMs in the last second), or when the request waited too long
 * before any handler saw it.
 * That wait is where a saturated process queues: in the kernel's accept and
 * socket queues and the HTTP parser, which neither the in-flight count nor the
 * route's own duration shows; the client's `X-Request-Start` stamp does. A
 * late request answered 503 at once costs a fraction of one served, so the
 * queue drains instead of growing (a queue-time limit, as CoDel's). `admit` is
 * called by the route wrapper, which also calls `done` when the answer is
 * over: one listener per request for both.
 */
function shedder(cfg: CheckoutConfig, metrics: CheckoutMetrics) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let lagging = false;
  // The share of new work admitted: halved after each quarter second
  // in which more than 1% of requests waited past shedMaxQueueMs, raised by a
  // tenth after each one without; a new request is admitted when the
  // accumulated share reaches one (no randomness: a run stays reproducible).
  let admitShare = 1;
  let credit = 0;
  let seen = 0;
  let waitedLong = 0;
  let ticks = 0;
  // Redis commands in the current second, and those slower than shedMaxRedisMs.
  let redisSeen = 0;
  let redisSlowSeen = 0;
  let redisSlow = false;
  const slowS = cfg.params.shedMaxRedisMs / 1000;
  metrics.onRedis = (seconds) => {
    redisSeen += 1;
    if (seconds > slowS) redisSlowSeen += 1;
  };
  const t = setInterval(() => {
    const queueing = seen > 0 && waitedLong > seen * 0.01;
    admitShare = queueing ? Math.max(0.05, admitShare * 0.5) : Math.min(1, admitShare + 0.1);
    seen = waitedLong = 0;
    if ((ticks = (ticks + 1) % 4) === 0) {
      lagging = loop.percentile(99) / 1e6 > cfg.params.shedMaxLoopDelayMs;
      loop.reset();
      redisSlow = redisSeen > 0 && redisSlowSeen > redisSeen * 0.01;
      redisSeen = redisSlowSeen = 0;
    }
  }, 250);
  t.unref();
  const admitNew = () => {
    if (admitShare >= 1) return true;
    credit += admitShare;
    if (credit < 1) return false;
    credit -= 1;
    return true;
  };
  /** Shed for waiting: a request that waited past its limit, or new work beyond the admitted share. */
  const shedForQueue = (cls: 'new' | 'ongoing', queuedMs: number | undefined) => {
    if (queuedMs === undefined) return false;
    seen += 1;
    if (queuedMs > cfg.params.shedMaxQueueMs) waitedLong += 1;
    if (cls === 'ongoing') return queuedMs > cfg.params.shedMaxQueueMs * 4;
    return queuedMs > cfg.params.shedMaxQueueMs || !admitNew();
  };
  let inFlight = 0;
  return {
    /** false: the request was answered 503 and must not be served. */
    admit(res: Response, cls: 'new' | 'ongoing', queuedMs: number | undefined): boolean {
      if (
        inFlight >= cfg.params.shedMaxInFlight ||
        lagging ||
        (redisSlow && cls === 'new') ||
        shedForQueue(cls, queuedMs)
      ) {
        metrics.shed.inc();
        res.locals.reason = 'overloaded';
        res.status(503).set('Retry-After', '1').json({
          reason: 'overloaded',
          message: 'the checkout is shedding load; retry after a second',
        });
        return false;
      }
      inFlight += 1;
      return true;
    },
    done(): void {
      inFlight -= 1;
    },
    stop(): void {
      clearInterval(t);
      loop.disable();
      metrics.onRedis = undefined;
    },
  };
}

/** A Redis that cannot serve, met mid-request: 503 with its reason and Retry-After. */
const redisErrors: ErrorRequestHandler = (err, _req, res, next) => {
  const reason = redisReason(err);
  if (!reason) return next(err);
  res.set('Retry-After', '1');
  next(redisUnavailable(reason, (err as Error).message));
};

/** The wallet callbacks are verified against their raw body; only they keep it. */
const NOTIFY_PREFIX = '/v1/notify/';

/**
 * Run `serve` under the request's Idempotency-Key in `store` (none: just run
 * it): a replay or a refusal answers without running it. The operation is
 * pending while it runs, so a client that leaves does not free the key.
 */
async function underKey(
  store: IdempotencyStore,
  scope: string,
  req: Request,
  res: Response,
  serve: () => Promise<void>,
): Promise<void> {
  let running: Promise<void> | undefined;
  store.guard(
    scope,
    (r) => r.get('idempotency-key'),
    () => {
      res.locals[OPERATION_PENDING] = true;
      running = serve().finally(() => (res.locals[OPERATION_PENDING] = false));
    },
  )(req, res, () => undefined);
  await running;
}

export function buildCheckoutApp(
  checkout: Checkout,
  opts: Pick<CheckoutOptions, 'adminRemote' | 'adminToken'>,
) {
  const { cfg, metrics, store } = checkout;
  const admin = adminGuard(opts);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(guardPrefix('/admin/', admin));
  app.use(
    express.json({
      limit: '256kb',
      verify: (req, _res, buf) => {
        if (req.url?.startsWith(NOTIFY_PREFIX))
          (req as Request & { rawBody?: string }).rawBody = buf.toString('utf8');
      },
    }),
  );

  const shed = cfg.features.loadShedding ? shedder(cfg, metrics) : undefined;
  const payKeys = new IdempotencyStore();

  // Shopper traffic and callbacks: counted and timed; shopper routes are also
  // (hardened) shed. Registered first: they take the load, so express matches
  // them before the rest.
  const route = (
    name: string,
    cls: ShedClass,
    h: (req: Request, res: Response, deadline: number) => Promise<void>,
  ): RequestHandler => {
    const record = metrics.recorder(name);
    const gate = cls ? shed : undefined;
    return async (req, res) => {
      const started = performance.now();
      const sent = requestStartMs(req.get('x-request-start'));
      const queuedMs = queueTimeMs(sent, Date.now());
      if (queuedMs !== undefined && cls) metrics.queued.observe(queuedMs / 1000);
      if (gate && cls && !gate.admit(res, cls, queuedMs)) {
        record(res.statusCode, String(res.locals.reason ?? 'none'));
        return;
      }
      metrics.inFlightNow += 1;
      res.once('close', () => {
        gate?.done();
        metrics.inFlightNow -= 1;
        record(
          res.statusCode,
          String(res.locals.reason ?? 'none'),
          (performance.now() - started) / 1000,
        );
      });
      // Redis not connected (down, restarting, loading): a prompt 503, not a wait in the offline queue.
      if (!redisReady(store.redis)) {
        res.set('Retry-After', '1');
        throw redisUnavailable('redis_unavailable', `client ${store.redis.status}`);
      }
      const raw = req.get(DEADLINE_HEADER);
      let budget = cfg.params.requestBudgetMs;
      if (raw !== undefined) {
        // Digits only: Number() would also take "1e3", "0x10" and " 5".
        budget = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
        if (!Number.isFinite(budget) || budget <= 0 || budget > 600_000)
          throw new ValidationError([
            { field: DEADLINE_HEADER, reason: 'must be a number of milliseconds from 1 to 600000' },
          ]);
      }
      await h(req, res, Date.now() + budget);
    };
  };

  app.get(
    '/v1/skus',
    route('skus', 'new', async (_req, res) => {
      const skus = await checkout.catalogue();
      res.json({
        data: skus.map((s) => ({
          id: s.id,
          name: s.name,
          price: s.price,
          available: s.available,
          limit: s.limit,
        })),
      });
    }),
  );
  app.post(
    '/v1/orders',
    route('orders.create', 'new', async (req, res, deadline) => {
      const key = req.get('idempotency-key');
      if (key !== undefined && (key.length === 0 || key.length > 255))
        throw new ValidationError([
          { field: 'Idempotency-Key', reason: 'must be 1 to 255 characters' },
        ]);
      send(res, await checkout.createOrder(parseInput(createOrderInput, req.body), key, deadline));
    }),
  );
  app.get(
    '/v1/orders',
    route('orders.list', 'ongoing', async (req, res) => {
      const q = parseInput(listOrdersQuery, req.query, '(query)');
      res.json({ data: (await store.listByUser(q.user)).map(orderView) });
    }),
  );
  app.get(
    '/v1/orders/:id',
    route('orders.get', 'ongoing', async (req, res) => {
      res.json(orderView(await checkout.getOrder(String(req.params.id))));
    }),
  );
  app.post(
    '/v1/orders/:id/pay',
    route('orders.pay', 'ongoing', async (req, res, deadline) => {
      const id = String(req.params.id);
      // Stripe-style under an Idempotency-Key, per order: replay, 422, 409 (5xx answers are not kept).
      await underKey(payKeys, `pay\u0000${id}`, req, res, async () => {
        send(res, await checkout.pay(id, parseInput(payInput, req.body ?? {}), deadline));
      });
    }),
  );
  app.post(
    '/v1/orders/:id/cancel',
    route('orders.cancel', 'ongoing', async (req, res) => {
      parseInput(cancelInput, req.body ?? {});
      send(res, await checkout.cancel(String(req.params.id)));
    }),
  );
  app.post(
    '/v1/notify/:style',
    route('notify', false, async (req, res) => {
      const style = String(req.params.style);
      if (style !== 'alipay' && style !== 'wechat')
        throw new ValidationError([{ field: 'style', reason: 'must be alipay or wechat' }]);
      const raw = (req as Request & { rawBody?: string }).rawBody ?? '';
      send(res, await checkout.walletNotify(style, raw, req.get('x-flashcrowd-signature')));
    }),
  );
  app.get('/healthz', async (_req, res) => {
    const ping = await store.redis.ping().catch((e: Error) => e.message);
    res.status(ping === 'PONG' ? 200 : 503).json({
      status: ping === 'PONG' ? 'ok' : 'degraded',
      service: 'checkout',
      mode: cfg.mode,
      redis: ping,
    });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  let openapi: unknown;
  app.get('/openapi.json', (_req, res) => {
    res.json((openapi ??= checkoutOpenApi()));
  });

  app.post('/admin/sale', admin, async (req, res) => {
    send(res, await checkout.seedSale(parseInput(saleInput, req.body)));
  });
  app.post('/admin/reset', admin, async (_req, res) => {
    await checkout.reset();
    payKeys.clear();
    res.json({ status: 'reset' });
  });
  app.get('/admin/stock', admin, async (_req, res) => {
    const skus = await store.skuIds();
    res.json({
      data: await Promise.all(
        skus.map(async (s) => ({
          ...(await store.snapshot(s)),
          counters: await store.counters(s),
        })),
      ),
    });
  });
  app.get('/admin/config', admin, (_req, res) => {
    res.json({ ...cfg, params: { ...cfg.params, walletSecret: '(hidden)' } });
  });
  app.post('/admin/sweep', admin, async (_req, res) => {
    res.json({
      expired: await checkout.sweep(),
      reconciled: cfg.features.reconciler ? await checkout.reconcileStale() : 0,
    });
  });

  app.use(notFoundHandler);
  app.use(redisErrors);
  app.use(jsonErrorHandler('checkout'));
  return {
    app,
    stop: () => {
      shed?.stop();
      metrics.close();
    },
  };
}

export async function startCheckout(opts: CheckoutOptions): Promise<RunningCheckout> {
  const cfg = applyOverrides(defaultConfig(opts.mode ?? 'hardened'), opts.set ?? []);
  const redis: RedisClient = connectRedis(opts.redisUrl, opts.cluster, {
    commandTimeoutMs: cfg.params.redisTimeoutMs,
  });
  reportRedisOutages(redis, (line) => console.error(line));
  const metrics = new CheckoutMetrics(cfg.mode);
  timeRedis(redis, (op, seconds) => metrics.observeRedis(op, seconds));
  const store = new Store(redis, cfg.keyPrefix, cfg.params.stockBuckets);
  // Serve once Redis answers; a Redis still away then is answered 503 until it is back.
  if (!(await waitForRedis(redis, REDIS_WAIT_MS)))
    console.error(
      `[checkout] Redis at ${opts.redisUrl} is not ready after ${REDIS_WAIT_MS / 1000} s; serving 503 redis_unavailable until it is`,
    );
  const checkout = new Checkout(cfg, store, makeGateways(opts, cfg, metrics), metrics);
  const { app, stop } = buildCheckoutApp(checkout, opts);
  const { server, sockets, port, url } = await listenTracked(
    app,
    opts.port ?? 0,
    opts.host ?? '127.0.0.1',
  );
  checkout.setNotifyBase((opts.publicUrl ?? url).replace(/\/+$/, ''));
  if (opts.background !== false) checkout.start();
  return {
    url,
    app,
    port,
    config: cfg,
    checkout,
    store,
    metrics,
    async close() {
      await checkout.stop();
      stop();
      server.close();
      for (const s of sockets) s.destroy();
      await once(server, 'close').catch(() => undefined);
      redis.disconnect();
    },
  };
}
