// Counts read from a run's summary.json, for the tests that check what a
// preset's run did.
import type { RunSummary } from '../../harness/summary.ts';

/** How many orders had this event (`failover`, `paid_by_reconciler`...). */
export const event = (s: RunSummary, name: string) =>
  s.events?.orders.find((e) => e.event === name)?.count ?? 0;

/** How many failures shoppers saw with this reason code. */
export const failures = (s: RunSummary, reason: string) =>
  s.failures.filter((f) => f.reason === reason).reduce((n, f) => n + f.count, 0);
