// The statement both payment mocks (bank and wallet) answer with, so
// reconciliation reads them alike: every capture and refund, with totals.
import { z } from 'zod';

export interface LedgerEntry {
  type: 'capture' | 'refund';
  amount: number;
  /** ISO 8601 time of the entry. */
  at: string;
}

/** The entries from `since` (inclusive) to `until` (exclusive), with counts and sums. */
export function statement<T extends LedgerEntry>(
  service: string,
  ledger: readonly T[],
  generatedAt: string,
  since?: string,
  until?: string,
) {
  const entries = ledger.filter((e) => (!since || e.at >= since) && (!until || e.at < until));
  const captured = entries.filter((e) => e.type === 'capture');
  const refunded = entries.filter((e) => e.type === 'refund');
  const sum = (xs: T[]) => xs.reduce((s, e) => s + e.amount, 0);
  return {
    service,
    generatedAt,
    entries,
    totals: {
      captures: captured.length,
      captured: sum(captured),
      refunds: refunded.length,
      refunded: sum(refunded),
      net: sum(captured) - sum(refunded),
    },
  };
}

/** The statement's query: an optional time range, the same on both services. */
export const statementQuery = z
  .object({
    since: z.iso.datetime({ message: 'must be an ISO 8601 date-time' }).optional(),
    until: z.iso.datetime({ message: 'must be an ISO 8601 date-time' }).optional(),
  })
  .strict();
