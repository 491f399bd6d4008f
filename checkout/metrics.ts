// Prometheus metrics of the reference checkout (GET /metrics).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class CheckoutMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'status' | 'reason'>;
  readonly duration: Histogram<'route'>;
  readonly inFlight: Gauge;
  /** From the client's X-Request-Start to the handler: the wait before the checkout saw a request. */
  readonly queued: Histogram;
  /** Each Redis command the checkout sends, by op (checkout/redis-timing.ts). */
  readonly redis: Histogram<'op'>;
  private readonly redisByOp = new Map<string, { observe(v: number): void }>();
  /** Requests being served now; the gauge reads it at scrape time. */
  inFlightNow = 0;
  /** Answer counts not yet handed to prom-client, by label set (flushed at scrape time). */
  private readonly pending = new Map<
    string,
    { labels: { route: string; status: string; reason: string }; n: number }
  >();
  readonly shed: Counter;
  readonly calls: Counter<'dependency' | 'operation' | 'outcome'>;
  readonly retries: Counter<'dependency' | 'operation'>;
  readonly retryBudgetExhausted: Counter<'dependency'>;
  readonly breakerState: Gauge<'dependency' | 'key'>;
  readonly orders: Counter<'event'>;
  readonly loopDelay: Gauge;
  /** When this process started: tells a scraper that a restarted instance's counters began again at 0. */
  readonly startTime: Gauge;
  readonly bulkheadQueued: Gauge<'dependency'>;
  /** Calls waiting in each dependency's bulkhead, read at scrape time. */
  private readonly bulkheads = new Map<string, () => number>();
  private readonly loop = monitorEventLoopDelay({ resolution: 10 });

  constructor(mode: string) {
    this.registry.setDefaultLabels({ service: 'checkout', mode });
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'flashcrowd_checkout_requests_total',
      help: 'Checkout requests by route, HTTP status and reason code.',
      labelNames: ['route', 'status', 'reason'],
      registers,
      collect: () => this.flushPending(),
    });
    this.duration = new Histogram({
      name: 'flashcrowd_checkout_request_duration_seconds',
      help: 'Checkout request duration by route.',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.queued = new Histogram({
      name: 'flashcrowd_checkout_request_queue_seconds',
      help: "Shopper requests' wait between their X-Request-Start stamp and the checkout's handler (kernel queues, parsing).",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.redis = new Histogram({
      name: 'flashcrowd_checkout_redis_duration_seconds',
      help: "The checkout's Redis commands, from handing one to the client to its reply, by op (a Lua script's name, a command's, or other).",
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'flashcrowd_checkout_in_flight_requests',
      help: 'Requests being served.',
      registers,
      collect: () => this.inFlight.set(this.inFlightNow),
    });
    this.shed = new Counter({
      name: 'flashcrowd_checkout_shed_total',
      help: 'Requests shed with 503 by load shedding.',
      registers,
    });
    this.calls = new Counter({
      name: 'flashcrowd_checkout_dependency_calls_total',
      help: 'Attempts at calling a dependency, by outcome (ok or the failure reason).',
      labelNames: ['dependency', 'operation', 'outcome'],
      registers,
    });
    this.retries = new Counter({
      name: 'flashcrowd_checkout_dependency_retries_total',
      help: 'Retried attempts at calling a dependency.',
      labelNames: ['dependency', 'operation'],
      registers,
    });
    this.retryBudgetExhausted = new Counter({
      name: 'flashcrowd_checkout_retry_budget_exhausted_total',
      help: 'Retries not made because the retry budget was empty.',
      labelNames: ['dependency'],
      registers,
    });
    this.breakerState = new Gauge({
      name: 'flashcrowd_checkout_breaker_state',
      help: 'Circuit breaker state per dependency and key: 0 closed, 1 open, 2 half-open, 3 isolated.',
      labelNames: ['dependency', 'key'],
      registers,
    });
    const started = Date.now() / 1000;
    this.startTime = new Gauge({
      name: 'flashcrowd_checkout_process_start_time_seconds',
      help: 'When this checkout process started (epoch seconds; a scraper tells a restarted instance by it).',
      registers,
      // Set at each scrape, so that resetting the metrics (POST /admin/reset) keeps it.
      collect: () => this.startTime.set(started),
    });
    this.loop.enable();
    this.loopDelay = new Gauge({
      name: 'flashcrowd_checkout_event_loop_delay_seconds',
      help: "p99 of the event loop's delay since the last scrape (how late a 10 ms timer ran).",
      registers,
      collect: () => {
        this.loopDelay.set(this.loop.count > 0 ? this.loop.percentile(99) / 1e9 : 0);
        this.loop.reset();
      },
    });
    this.bulkheadQueued = new Gauge({
      name: 'flashcrowd_checkout_bulkhead_queued',
      help: "Calls waiting in a dependency's bulkhead for a slot (hardened build).",
      labelNames: ['dependency'],
      registers,
      collect: () => {
        for (const [dependency, queued] of this.bulkheads)
          this.bulkheadQueued.set({ dependency }, queued());
      },
    });
    this.orders = new Counter({
      name: 'flashcrowd_checkout_order_events_total',
      help: 'Order lifecycle events (created, paid, payment_failed, expired, cancelled, late_refunded, late_rereserved, double_capture_refunded, reconciled, ...).',
      labelNames: ['event'],
      registers,
    });
  }

  /**
   * A recorder of one route's answers: prom-client validates and hashes label
   * sets on every update, so answers are counted in a map and handed to the
   * counter at scrape time; the duration histogram's child is kept.
   * `seconds` undefined: count the answer, do not time it (a shed request).
   */
  recorder(route: string): (status: number, reason: string, seconds?: number) => void {
    const timer = this.duration.labels({ route });
    return (status, reason, seconds) => {
      const key = `${route}\u0000${status}\u0000${reason}`;
      const c = this.pending.get(key);
      if (c) c.n += 1;
      else this.pending.set(key, { labels: { route, status: String(status), reason }, n: 1 });
      if (seconds !== undefined) timer.observe(seconds);
    };
  }

  /** Called with every Redis command's duration (the load shedder watches them). */
  onRedis: ((seconds: number) => void) | undefined;

  /** Observe one Redis command of `op` that took `seconds`. */
  observeRedis(op: string, seconds: number): void {
    this.onRedis?.(seconds);
    let child = this.redisByOp.get(op);
    if (!child) this.redisByOp.set(op, (child = this.redis.labels({ op })));
    child.observe(seconds);
  }

  /** Report `queued()` as the calls waiting in this dependency's bulkhead. */
  watchBulkhead(dependency: string, queued: () => number): void {
    this.bulkheads.set(dependency, queued);
  }

  /** Stop the event-loop delay monitor. */
  close(): void {
    this.loop.disable();
  }

  /** Every counter, histogram and gauge back to nothing (POST /admin/reset). */
  reset(): void {
    this.pending.clear();
    this.registry.resetMetrics();
  }

  private flushPending(): void {
    for (const p of this.pending.values()) this.requests.inc(p.labels, p.n);
    this.pending.clear();
  }
}
