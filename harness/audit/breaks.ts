// How every invariant family counts what it finds: `Breaks` counts each break
// once (by key) and keeps a few examples; `decided` and `undecided` turn that
// into the invariant's result.
import { INVARIANT_NAMES, type InvariantId, type InvariantResult } from './report.ts';

export class Breaks {
  private readonly ids: string[] = [];
  private readonly seen = new Set<string>();
  count = 0;
  constructor(private readonly max: number) {}
  /** Count one break under `key` (once per key); `example` is what to show (default the key). */
  add(key: string, example = key) {
    if (!this.seen.has(key)) {
      this.seen.add(key);
      this.count += 1;
    }
    if (this.ids.length < this.max && !this.ids.includes(example)) this.ids.push(example);
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
