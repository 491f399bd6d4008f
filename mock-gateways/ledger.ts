// The statement both payment mocks (bank and wallet) answer with, so
// reconciliation reads them alike: every capture and refund, with totals.
// A ledger is append-only, so a page's `next` is a position in it: paging
// with `limit` and `cursor` reads a ledger of any length in bounded pieces,
// and entries that land meanwhile come on a later page.
import { z } from 'zod';

export interface LedgerEntry {
  type: 'capture' | 'refund';
  amount: number;
  /** ISO 8601 time of the entry. */
  at: string;
}

/** How a statement reads a ledger record without building its entry. */
export interface LedgerView<R, T extends LedgerEntry> {
  type(r: R): LedgerEntry['type'];
  amount(r: R): number;
  at(r: R): string;
  /** The statement entry of a record (only records on the page are built). */
  entry(r: R): T;
}

export interface StatementQuery {
  since?: string;
  until?: string;
  /** At most this many entries on the page (default: all). */
  limit?: number;
  /** Where the page starts: 0, or the `next` of the page before. */
  cursor?: number;
}

/** Records that are their own entries (the wallet's ledger). */
export function plainView<T extends LedgerEntry>(): LedgerView<T, T> {
  return { type: (r) => r.type, amount: (r) => r.amount, at: (r) => r.at, entry: (r) => r };
}

/**
 * The entries from `since` (inclusive) to `until` (exclusive), a page of
 * them when `limit` is given. `totals` always cover the whole range, every
 * page alike; `next` is there only when the page ended before the ledger did.
 */
export function statement<R, T extends LedgerEntry>(
  service: string,
  ledger: readonly R[],
  view: LedgerView<R, T>,
  generatedAt: string,
  q: StatementQuery = {},
) {
  const { since, until } = q;
  const inRange = (r: R) => {
    const at = view.at(r);
    return (!since || at >= since) && (!until || at < until);
  };
  const totals = { captures: 0, captured: 0, refunds: 0, refunded: 0, net: 0 };
  for (const r of ledger) {
    if (!inRange(r)) continue;
    if (view.type(r) === 'capture') {
      totals.captures += 1;
      totals.captured += view.amount(r);
    } else {
      totals.refunds += 1;
      totals.refunded += view.amount(r);
    }
  }
  totals.net = totals.captured - totals.refunded;
  const limit = q.limit ?? Infinity;
  const entries: T[] = [];
  let i = Math.min(q.cursor ?? 0, ledger.length);
  for (; i < ledger.length && entries.length < limit; i++)
    if (inRange(ledger[i]!)) entries.push(view.entry(ledger[i]!));
  return {
    service,
    generatedAt,
    entries,
    totals,
    ...(i < ledger.length ? { next: i } : {}),
  };
}

/** Paging of a statement: `limit` entries from `cursor` (the `next` of the page before). */
export const pageQuery = {
  limit: z.coerce
    .number({ error: 'must be an integer from 1 to 100000' })
    .int({ error: 'must be an integer from 1 to 100000' })
    .min(1, { error: 'must be an integer from 1 to 100000' })
    .max(100_000, { error: 'must be an integer from 1 to 100000' })
    .optional(),
  cursor: z.coerce
    .number({ error: "must be a non-negative integer (0, or the page before's next)" })
    .int({ error: "must be a non-negative integer (0, or the page before's next)" })
    .min(0, { error: "must be a non-negative integer (0, or the page before's next)" })
    .optional(),
};

/** The statement's query: an optional time range and page, the same on both services. */
export const statementQuery = z
  .object({
    since: z.iso.datetime({ message: 'must be an ISO 8601 date-time' }).optional(),
    until: z.iso.datetime({ message: 'must be an ISO 8601 date-time' }).optional(),
    ...pageQuery,
  })
  .strict();
