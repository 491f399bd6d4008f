// The statement both payment mocks (bank and wallet) answer with, so
// reconciliation reads them alike: every capture and refund, with totals.

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
