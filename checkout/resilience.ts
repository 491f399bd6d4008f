// Calls to a dependency (bank, wallet, coupon) with the resilience features
// the config turns on: derived timeouts bounded by the request's deadline,
// retries (immediate, or full jitter under a retry budget), a circuit breaker
// per dependency and channel, and a bulkhead. Built on cockatiel.
import {
  BrokenCircuitError,
  BulkheadPolicy,
  BulkheadRejectedError,
  CircuitBreakerPolicy,
  ExponentialBackoff,
  SamplingBreaker,
  bulkhead,
  circuitBreaker,
  fullJitterGenerator,
  handleWhen,
  retry,
  type RetryPolicy,
} from 'cockatiel';
import { scaled, type CheckoutConfig } from './config.ts';
import type { CheckoutMetrics } from './metrics.ts';

/** A failure of a dependency call. `ambiguous`: it may have taken effect (5xx, reset, timeout). */
export class DependencyError extends Error {
  constructor(
    readonly reason: string,
    readonly ambiguous: boolean,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(reason);
  }
  /** Set by the attempt that failed: whether the retry policy should try again. */
  retryNow = false;
}

/** The shortest breaker window a time-scale makes (unless breakerWindowMs itself is shorter). */
export const BREAKER_MIN_WINDOW_MS = 1_000;

/** Token bucket: each first attempt deposits `ratio` tokens; each retry takes one. */
export class RetryBudget {
  private tokens: number;
  constructor(
    private readonly ratio: number,
    private readonly cap = 10,
  ) {
    this.tokens = cap;
  }
  deposit(): void {
    this.tokens = Math.min(this.cap, this.tokens + this.ratio);
  }
  tryWithdraw(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** p99 of the last `size` successful call durations, for derived timeouts. */
export class LatencyWindow {
  private readonly xs: number[] = [];
  private i = 0;
  private cached: number | undefined;
  private addsSinceSort = 0;
  constructor(
    private readonly size = 256,
    /** Recompute the p99 after this many new samples (a sort of `size` values each time). */
    private readonly every = 16,
  ) {}
  add(ms: number): void {
    if (this.xs.length < this.size) this.xs.push(ms);
    else {
      this.xs[this.i] = ms;
      this.i = (this.i + 1) % this.size;
    }
    this.addsSinceSort += 1;
  }
  p99(): number | undefined {
    if (this.xs.length < 20) return undefined;
    if (this.cached === undefined || this.addsSinceSort >= this.every) {
      const s = [...this.xs].sort((a, b) => a - b);
      this.cached = s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)];
      this.addsSinceSort = 0;
    }
    return this.cached;
  }
}

export interface CallOptions {
  /** Absolute time (ms since epoch) by which the caller needs an answer. */
  deadline?: number;
  /** Breaker key within the dependency (e.g. the payment channel). */
  breakerKey?: string;
  /** Safe to retry an ambiguous failure (idempotent request or idempotency key sent). */
  safeToRetry: boolean;
}

export class Dependency {
  /** Recent latency per operation: a slow statement read must not stretch the payment timeout. */
  private readonly latencies = new Map<string, LatencyWindow>();

  latency(op: string): LatencyWindow {
    let w = this.latencies.get(op);
    if (!w) this.latencies.set(op, (w = new LatencyWindow()));
    return w;
  }
  private readonly breakers = new Map<string, CircuitBreakerPolicy>();
  private readonly bulkhead: BulkheadPolicy | undefined;
  private budget: RetryBudget;
  private readonly retryPolicy: RetryPolicy | undefined;
  private readonly callCounters = new Map<string, { inc(): void }>();

  constructor(
    readonly name: string,
    private readonly cfg: CheckoutConfig,
    private readonly metrics: CheckoutMetrics,
  ) {
    const { features: f, params: p } = cfg;
    this.bulkhead = f.bulkhead ? bulkhead(p.bulkheadLimit, p.bulkheadQueue) : undefined;
    const bh = this.bulkhead;
    if (bh) metrics.watchBulkhead(name, () => p.bulkheadQueue - bh.queueSlots);
    this.budget = new RetryBudget(p.retryBudgetRatio);
    this.retryPolicy =
      f.retries === 'none'
        ? undefined
        : retry(
            handleWhen((e) => e instanceof DependencyError && e.retryNow),
            {
              maxAttempts: p.maxAttempts - 1,
              backoff:
                f.retries === 'jittered'
                  ? new ExponentialBackoff({
                      initialDelay: p.retryBaseMs,
                      maxDelay: p.retryCapMs,
                      generator: fullJitterGenerator,
                    })
                  : new ExponentialBackoff({ initialDelay: 0, maxDelay: 0, exponent: 1 }),
            },
          );
  }

  /** Forget what earlier calls taught: latencies, breakers (closed again), the retry budget (full). */
  reset(): void {
    this.latencies.clear();
    this.breakers.clear();
    this.budget = new RetryBudget(this.cfg.params.retryBudgetRatio);
  }

  private breaker(key: string): CircuitBreakerPolicy | undefined {
    if (!this.cfg.features.circuitBreaker) return undefined;
    let b = this.breakers.get(key);
    if (!b) {
      const p = this.cfg.params;
      // The window and the half-open wait are measured against outages, whose
      // length the time-scale shrinks: scaled, so a short run trips and probes
      // as often per outage as a full one. The window keeps at least
      // BREAKER_MIN_WINDOW_MS: a short run's load is scaled down too, and a
      // window that holds a dozen calls decides by chance.
      b = circuitBreaker(
        handleWhen((e) => e instanceof DependencyError && e.retryable),
        {
          halfOpenAfter: scaled(this.cfg, p.breakerHalfOpenMs),
          breaker: new SamplingBreaker({
            threshold: p.breakerThreshold,
            duration: Math.max(
              Math.min(BREAKER_MIN_WINDOW_MS, p.breakerWindowMs),
              scaled(this.cfg, p.breakerWindowMs),
            ),
            minimumRps: p.breakerMinimumRps,
          }),
        },
      );
      const label = { dependency: this.name, key };
      b.onStateChange((s) => this.metrics.breakerState.set(label, s));
      this.metrics.breakerState.set(label, 0);
      this.breakers.set(key, b);
    }
    return b;
  }

  /** Timeout for the next attempt: derived from observed latency, bounded by the deadline. */
  private attemptTimeout(op: string, deadline: number | undefined): number | undefined {
    const { features: f, params: p } = this.cfg;
    let t: number | undefined;
    if (f.timeouts) {
      const p99 = this.latency(op).p99();
      t =
        p99 === undefined
          ? p.timeoutMs
          : Math.min(p.timeoutMs, Math.max(p.minTimeoutMs, p99 * p.timeoutFactor));
    }
    if (f.deadlines && deadline !== undefined) {
      const left = deadline - Date.now();
      t = t === undefined ? left : Math.min(t, left);
    }
    return t;
  }

  /**
   * Run `fn` (one HTTP attempt; it gets an AbortSignal that aborts when the
   * attempt's timeout passes, and throws DependencyError for failures) with the
   * configured policies. The retry policy is built once per dependency: what
   * may be retried depends on the call, so each failed attempt says on its
   * error whether the retry policy should go again (`retryNow`).
   */
  async call<T>(
    op: string,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    opts: CallOptions,
  ): Promise<T> {
    const { features: f } = this.cfg;
    if (f.retryBudget) this.budget.deposit();
    const state: CallState = { op, opts, attempt: 0, ambiguous: false };
    const breaker = this.breaker(opts.breakerKey ?? 'default');
    const once = () => this.attempt(fn, state);
    const inner = breaker ? () => breaker.execute(once) : once;
    const run = this.retryPolicy ? () => this.retryPolicy!.execute(inner) : inner;
    try {
      return await (this.bulkhead ? this.bulkhead.execute(run) : run());
    } catch (e) {
      const err =
        e instanceof BrokenCircuitError
          ? new DependencyError('circuit_open', false, false)
          : e instanceof BulkheadRejectedError
            ? new DependencyError('bulkhead_full', false, false)
            : e;
      // A retry refused (open circuit, deadline, 429...) after an attempt that may
      // have taken effect leaves the call as ambiguous as that attempt.
      if (err instanceof DependencyError && state.ambiguous && !err.ambiguous)
        throw new DependencyError(err.reason, true, err.retryable, err.status);
      throw err;
    }
  }

  /** One attempt: its own timeout (a timer that aborts the request), latency and metrics. */
  private async attempt<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    state: CallState,
  ): Promise<T> {
    const { op, opts } = state;
    state.attempt += 1;
    if (state.attempt > 1) this.metrics.retries.inc({ dependency: this.name, operation: op });
    const t = this.attemptTimeout(op, opts.deadline);
    if (t !== undefined && t < 1) throw new DependencyError('deadline_exceeded', false, false);
    // A plain timer and controller: the abort (and its DOMException) only happens on a timeout.
    const controller = t === undefined ? undefined : new AbortController();
    const timer =
      controller === undefined ? undefined : setTimeout(() => controller.abort(), Math.ceil(t!));
    const started = performance.now();
    try {
      const r = await fn(controller?.signal);
      this.latency(op).add(performance.now() - started);
      this.countCall(op, 'ok');
      return r;
    } catch (e) {
      const err = controller?.signal.aborted
        ? new DependencyError('timeout', true, true)
        : e instanceof DependencyError
          ? e
          : new DependencyError('network_error', true, true);
      if (!err.ambiguous && !err.retryable) this.latency(op).add(performance.now() - started);
      if (err.ambiguous) state.ambiguous = true;
      this.countCall(op, err.reason);
      err.retryNow = this.shouldRetry(err, state);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the retry policy should try again after `err` (takes a retry-budget token if so). */
  private shouldRetry(err: DependencyError, state: CallState): boolean {
    const { features: f, params: p } = this.cfg;
    const { opts } = state;
    if (!err.retryable || f.retries === 'none') return false;
    if (state.attempt >= p.maxAttempts) return false;
    // The naive build retries whatever failed; the hardened one only what is safe to repeat.
    if (f.retries === 'jittered' && err.ambiguous && !opts.safeToRetry) return false;
    if (opts.deadline !== undefined && f.deadlines && opts.deadline - Date.now() < p.minTimeoutMs)
      return false;
    if (f.retryBudget && !this.budget.tryWithdraw()) {
      this.metrics.retryBudgetExhausted.inc({ dependency: this.name });
      return false;
    }
    return true;
  }

  /** Count one attempt's outcome; the labelled counters are kept, not looked up by hash each time. */
  private countCall(op: string, outcome: string): void {
    const key = `${op}\u0000${outcome}`;
    let c = this.callCounters.get(key);
    if (!c)
      this.callCounters.set(
        key,
        (c = this.metrics.calls.labels({ dependency: this.name, operation: op, outcome })),
      );
    c.inc();
  }
}

interface CallState {
  op: string;
  opts: CallOptions;
  attempt: number;
  /** An attempt failed in a way that may have taken effect. */
  ambiguous: boolean;
}
