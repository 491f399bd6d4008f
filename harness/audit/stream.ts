// The payment-result stream after quiescence: every entry a consumer read is
// acknowledged. An entry still pending was read by a consumer that died (or
// hangs) and was never claimed by a live one (XAUTOCLAIM): the payment it
// carries may never be applied. Counted as a leak (leaks.stream_pending), not
// an invariant: the order may still end paid by the reconciler.
import type { AuditContext } from './inputs.ts';
import type { AuditTotals } from './report.ts';

export async function streamPending({
  store,
}: AuditContext): Promise<Pick<AuditTotals, 'streamPending'>> {
  return { streamPending: await store.streamPending() };
}
