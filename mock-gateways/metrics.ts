// Prometheus metrics shared by the three mock services. One registry per
// service so several services can live in one process (`flashcrowd mock all`).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class MockMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'operation' | 'outcome' | 'reason'>;
  readonly duration: Histogram<'operation' | 'outcome'>;
  readonly faults: Counter<'operation' | 'kind' | 'source'>;
  readonly inFlight: Gauge;
  /** Requests being served now; the gauge reads it at scrape time (cheaper than a gauge update per request). */
  inFlightNow = 0;
  readonly notifications: Counter<'event'>;
  readonly level: Gauge<'level'>;

  constructor(
    readonly service: string,
    levels: () => Record<string, number> = () => ({}),
  ) {
    // No prom-client default (process) metrics: several services may share one
    // process, and three of those names fail `promtool check metrics`.
    this.registry.setDefaultLabels({ service });
    this.requests = new Counter({
      name: 'flashcrowd_mock_requests_total',
      help: 'Requests answered by a mock service, by operation, outcome (ok, declined, rejected, error, fault) and reason code.',
      labelNames: ['operation', 'outcome', 'reason'],
      registers: [this.registry],
      collect: () => this.flushPending(),
    });
    this.duration = new Histogram({
      name: 'flashcrowd_mock_request_duration_seconds',
      help: 'Time from request arrival to the end of the response (or connection), injected latency included.',
      labelNames: ['operation', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    this.faults = new Counter({
      name: 'flashcrowd_mock_faults_injected_total',
      help: 'Faults injected by the chaos engine, by operation, kind and source (profile, header, outage).',
      labelNames: ['operation', 'kind', 'source'],
      registers: [this.registry],
    });
    this.inFlight = new Gauge({
      name: 'flashcrowd_mock_in_flight_requests',
      help: 'Requests currently being served (queued ones included).',
      registers: [this.registry],
      collect: () => this.inFlight.set(this.inFlightNow),
    });
    this.level = new Gauge({
      name: 'flashcrowd_mock_level',
      help: "Levels of the service's domain at scrape time: notify_backlog (wallet notifications not yet acknowledged or given up), coupons_locked (coupons an order holds).",
      labelNames: ['level'],
      registers: [this.registry],
      collect: () => {
        for (const [level, v] of Object.entries(levels())) this.level.set({ level }, v);
      },
    });
    this.notifications = new Counter({
      name: 'flashcrowd_mock_notifications_total',
      help: 'Asynchronous merchant notifications, by event (sent, retried, acked, failed, dropped, duplicated, gave_up, lost).',
      labelNames: ['event'],
      registers: [this.registry],
    });
  }

  /** Answer counts not yet handed to prom-client, by label set (flushed at scrape time). */
  private readonly pending = new Map<string, { labels: Record<string, string>; n: number }>();

  /**
   * A recorder of one operation's answers. prom-client validates and hashes
   * the label set on every update; the recorder counts answers in a map and
   * hands the counts to the counter when /metrics is scraped.
   */
  recorder(operation: string): (outcome: string, reason: string, seconds: number) => void {
    const durations = new Map<string, { observe(v: number): void }>();
    return (outcome, reason, seconds) => {
      const key = `${operation}\u0000${outcome}\u0000${reason}`;
      const c = this.pending.get(key);
      if (c) c.n += 1;
      else this.pending.set(key, { labels: { operation, outcome, reason }, n: 1 });
      let d = durations.get(outcome);
      if (!d) durations.set(outcome, (d = this.duration.labels({ operation, outcome })));
      d.observe(seconds);
    };
  }

  /** Every counter, histogram and gauge back to nothing (POST /__reset). */
  reset(): void {
    this.pending.clear();
    this.registry.resetMetrics();
  }

  private flushPending(): void {
    for (const p of this.pending.values()) if (p.n > 0) this.requests.inc(p.labels, p.n);
    this.pending.clear();
  }
}
