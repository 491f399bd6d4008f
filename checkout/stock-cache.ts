// The naive checkout's stock sync (seed 001, "sold out" at click while stock
// remains): a per-process copy of each SKU's available count, refreshed on a
// timer, that the product page and the order's stock check read instead of
// Redis. Between two refreshes a unit given back (an expired or cancelled
// order) stays invisible, and one taken stays visible. Off (`stockCacheMs=0`)
// in both presets; docs/CHECKOUT.md, "Naive behaviours".
import type { Store } from './store.ts';

export class StockCache {
  private readonly counts = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  /** `everyMs`: the refresh period (already time-scaled); 0 turns the copy off. */
  constructor(
    private readonly store: Store,
    readonly everyMs: number,
  ) {}

  get enabled(): boolean {
    return this.everyMs > 0;
  }

  /**
   * The available count as this process last saw it. A SKU never seen (a new
   * process, a new sale) is read from Redis now, like a cache miss.
   */
  async available(sku: string): Promise<number | undefined> {
    const seen = this.counts.get(sku);
    if (seen !== undefined) return seen;
    const s = await this.store.sku(sku);
    if (s) this.counts.set(sku, s.available);
    return s?.available;
  }

  /** Read every SKU's count again (the timer's work; tests call it to step the sync). */
  async refresh(): Promise<void> {
    const fresh = new Map<string, number>();
    for (const id of await this.store.skuIds()) {
      const s = await this.store.snapshot(id);
      fresh.set(id, s.available);
    }
    this.counts.clear();
    for (const [k, v] of fresh) this.counts.set(k, v);
  }

  /** Forget every count (a new sale, a reset): the next read is a miss. */
  clear(): void {
    this.counts.clear();
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    let running = false;
    this.timer = setInterval(() => {
      if (running) return;
      running = true;
      this.refresh()
        .catch((e) => console.error('[checkout] stock sync failed:', (e as Error).message))
        .finally(() => (running = false));
    }, this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
