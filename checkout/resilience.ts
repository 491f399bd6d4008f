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
  TaskCancelledError,
  TimeoutStrategy,
  bulkhead,
  circuitBreaker,
  fullJitterGenerator,
  handleWhen,
  retry,
  timeout,
  noop,
  type IPolicy,
} from 'cockatiel';
import type { CheckoutConfig } from './config.ts';
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
}

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
  private readonly budget: RetryBudget;

  constructor(
    readonly name: string,
    private readonly cfg: CheckoutConfig,
    private readonly metrics: CheckoutMetrics,
  ) {
    const { features: f, params: p } = cfg;
    this.bulkhead = f.bulkhead ? bulkhead(p.bulkheadLimit, p.bulkheadQueue) : undefined;
    this.budget = new RetryBudget(p.retryBudgetRatio);
  }

  private breaker(key: string): CircuitBreakerPolicy | undefined {
    if (!this.cfg.features.circuitBreaker) return undefined;
    let b = this.breakers.get(key);
    if (!b) {
      const p = this.cfg.params;
      b = circuitBreaker(
        handleWhen((e) => e instanceof DependencyError && e.retryable),
        {
          halfOpenAfter: p.breakerHalfOpenMs,
          breaker: new SamplingBreaker({
            threshold: p.breakerThreshold,
            duration: p.breakerWindowMs,
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
   * Run `fn` (one HTTP attempt; it gets an AbortSignal and throws
   * DependencyError for failures) with the configured policies.
   */
  async call<T>(
    op: string,
    fn: (signal: AbortSignal) => Promise<T>,
    opts: CallOptions,
  ): Promise<T> {
    const { features: f, params: p } = this.cfg;
    const labels = { dependency: this.name, operation: op };
    if (f.retryBudget) this.budget.deposit();
    let attempt = 0;
    /** An attempt failed in a way that may have taken effect. */
    let ambiguous = false;

    const once = async (signal: AbortSignal): Promise<T> => {
      attempt += 1;
      if (attempt > 1) this.metrics.retries.inc(labels);
      const t = this.attemptTimeout(op, opts.deadline);
      if (t !== undefined && t < 1) throw new DependencyError('deadline_exceeded', false, false);
      const policy: IPolicy = t === undefined ? noop : timeout(t, TimeoutStrategy.Aggressive);
      const started = performance.now();
      try {
        const r = await policy.execute(({ signal: s }) => fn(anySignal(signal, s)), signal);
        this.latency(op).add(performance.now() - started);
        this.metrics.calls.inc({ ...labels, outcome: 'ok' });
        return r;
      } catch (e) {
        const err =
          e instanceof TaskCancelledError
            ? new DependencyError('timeout', true, true)
            : e instanceof DependencyError
              ? e
              : new DependencyError('network_error', true, true);
        if (!err.ambiguous && !err.retryable) this.latency(op).add(performance.now() - started);
        if (err.ambiguous) ambiguous = true;
        this.metrics.calls.inc({ ...labels, outcome: err.reason });
        throw err;
      }
    };

    const shouldRetry = (e: unknown) => {
      if (!(e instanceof DependencyError) || !e.retryable) return false;
      if (f.retries === 'none') return false;
      // The naive build retries whatever failed; the hardened one only what is safe to repeat.
      if (f.retries === 'jittered' && e.ambiguous && !opts.safeToRetry) return false;
      if (opts.deadline !== undefined && f.deadlines && opts.deadline - Date.now() < p.minTimeoutMs)
        return false;
      if (f.retryBudget && !this.budget.tryWithdraw()) {
        this.metrics.retryBudgetExhausted.inc({ dependency: this.name });
        return false;
      }
      return true;
    };
    const retryPolicy =
      f.retries === 'none'
        ? noop
        : retry(handleWhen(shouldRetry), {
            maxAttempts: p.maxAttempts - 1,
            backoff:
              f.retries === 'jittered'
                ? new ExponentialBackoff({
                    initialDelay: p.retryBaseMs,
                    maxDelay: p.retryCapMs,
                    generator: fullJitterGenerator,
                  })
                : new ExponentialBackoff({ initialDelay: 0, maxDelay: 0, exponent: 1 }),
          });
    const breaker = this.breaker(opts.breakerKey ?? 'default');
    const inner = (signal: AbortSignal) =>
      breaker ? breaker.execute(({ signal: s }) => once(s), signal) : once(signal);

    try {
      // A signal of this call's own: cockatiel's default parent signal is one shared
      // object, and every concurrent call would add its abort listener to it.
      const run = () =>
        retryPolicy.execute(({ signal }) => inner(signal), new AbortController().signal);
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
      if (err instanceof DependencyError && ambiguous && !err.ambiguous)
        throw new DependencyError(err.reason, true, err.retryable, err.status);
      throw err;
    }
  }
}

function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  return AbortSignal.any([a, b]);
}
