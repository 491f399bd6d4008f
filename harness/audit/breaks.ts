// How every invariant family counts what it finds: `Breaks` counts each break
// once (by key) and keeps the first few as examples, one example per break, so
// a report may say "and N more" from `count`; `decided` and `undecided` turn
// that into the invariant's result.
import { INVARIANT_NAMES, type InvariantId, type InvariantResult } from './report.ts';

export class Breaks {
  private readonly ids: string[] = [];
  private readonly seen = new Set<string>();
  count = 0;
  constructor(private readonly max: number) {}
  /**
   * Count one break under `key` (once per key); `example` is what to show for it
   * (default the key). Only a new break adds an example, and an example already
   * shown (another break of the same order) is not repeated.
   */
  add(key: string, example = key) {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.count += 1;
    if (this.ids.length < this.max && !this.ids.includes(example)) this.ids.push(example);
  }
  /** Count `n` breaks that have no example of their own (e.g. late payments the checkout did not count). */
  addUnnamed(n: number) {
    this.count += n;
  }
  examples() {
    return [...this.ids];
  }
}

function result(
  id: InvariantId,
  ok: boolean | null,
  count: number,
  examples: string[],
  note?: string,
): InvariantResult {
  return { id, name: INVARIANT_NAMES[id], ok, count, examples, ...(note ? { note } : {}) };
}

/** The invariant holds when nothing broke it; `note` says what was counted. */
export function decided(id: InvariantId, breaks: Breaks, note?: string): InvariantResult {
  return result(id, breaks.count === 0, breaks.count, breaks.examples(), note);
}

/** The data cannot decide the invariant (ok: null); `note` says why. */
export function undecided(id: InvariantId, note: string): InvariantResult {
  return result(id, null, 0, [], note);
}
