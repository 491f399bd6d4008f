// The embedded stack of harness/stack.ts (Redis, the mocks and N checkout
// processes) for tests, with the audit's own Store on its Redis.
import { connectRedis, Store } from '../../checkout/store.ts';
import { audit, type AuditReport } from '../../harness/audit.ts';
import { startStack, type Stack as HarnessStack, type StackOptions } from '../../harness/stack.ts';

export type StartStack = typeof startStack;

export interface Stack {
  stack: HarnessStack;
  /** The checkouts' Redis keys (prefix fc), on a connection of the test's own. */
  store: Store;
  audit(): Promise<AuditReport>;
  close(): Promise<void>;
}

/** Start the stack (`start`: another copy's startStack, e.g. a mutant's) with `o` over seed 1, hardened. */
export async function startInstancesStack(
  start: StartStack = startStack,
  o: Partial<StackOptions> = {},
): Promise<Stack> {
  const stack = await start({ seed: 1, mode: 'hardened', set: [], ...o });
  const client = connectRedis(stack.urls.redis);
  const store = new Store(client, 'fc');
  return {
    stack,
    store,
    audit: () =>
      audit({
        store,
        bank: stack.urls.bank,
        wallet: stack.urls.wallet,
        coupon: stack.urls.coupon,
      }),
    async close() {
      client.disconnect();
      await stack.stop();
    },
  };
}
