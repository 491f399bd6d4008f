// Whole runs of a mutant checkout: a copy of the repository with one bug
// planted (test/support/mutant.ts), its own `flashcrowd run <preset>` run end
// to end at half the --ci time-scale (the copy's harness starts the copy's
// checkout), and the named invariant and its budget must fail with order ids.
// The audit's own mutation tests drive a mutant with a few requests
// (test/audit-mutations.test.ts); these check that the preset that reaches
// the bug makes the verdict FAIL.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunSummary } from '../harness/summary.ts';
import { HALF_CI, runCli } from './support/cli.ts';
import { copyCheckout, type Mutation } from './support/mutant.ts';

async function runMutant(m: Mutation, preset: string) {
  const copy = copyCheckout(m);
  try {
    const out = join(copy.dir, 'reports', 'run');
    const { code, log } = await runCli(
      ['run', preset, '--variant', 'hardened', ...HALF_CI, '--progress', 'none', '--out', out],
      { bin: join(copy.dir, 'bin', 'flashcrowd.js'), cwd: copy.dir },
    );
    if (!existsSync(join(out, 'summary.json')))
      throw new Error(`the mutant's run wrote no summary (exit ${code}):\n${log.slice(-3_000)}`);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as RunSummary;
    return { code, s, log };
  } finally {
    copy.remove();
  }
}

const budget = (s: RunSummary, expr: string) => s.budgets.find((b) => b.expr === expr);
const ORDER_ID = /^(lipstick|mask)\.k[0-9a-f]{20}$/;

describe('a preset run against a mutant checkout fails, naming the orders', () => {
  it('stock kept after a payment failure: bank-brownout fails leaks.stock and I3 with the failed orders, and settles without waiting out the bound', async () => {
    const { code, s, log } = await runMutant(
      {
        name: 'release skipped after a payment failure',
        file: 'checkout/checkout.ts',
        find: "await this.store.release(order.id, 'payment_failed', reason, now, ['paying']);",
        replace:
          "await this.store.transition(order.id, 'payment_failed', reason, now, ['paying']);",
      },
      'bank-brownout',
    );
    expect(code, log.slice(-3_000)).toBe(1);
    expect(s.verdict).toBe('fail');
    const i3 = s.invariants.find((i) => i.id === 'I3')!;
    expect(i3.ok, i3.note).toBe(false);
    expect(i3.count).toBeGreaterThan(0);
    expect(i3.examples.length).toBeGreaterThan(0);
    for (const id of i3.examples) expect(id).toMatch(ORDER_ID);
    expect(budget(s, 'leaks.stock==0')).toMatchObject({ ok: false });
    expect(budget(s, 'invariants.broken==0')).toMatchObject({ ok: false });
    // Leaked units never come back: the run stops waiting once the audit says so.
    expect(log).toMatch(/settled with \d+ reserved unit\(s\) leaked/);
    expect(s.quiescence.settled).toBe(true);
    expect(budget(s, 'quiescence.unsettled==0')).toMatchObject({ ok: true });
  }, 300_000);

  it('a lost idempotency key on the card payment: ambiguous-capture fails double_charges and I5 with the double-charged orders', async () => {
    const { code, s, log } = await runMutant(
      {
        name: 'idempotency key lost on the card payment',
        file: 'checkout/checkout.ts',
        find: 'idempotencyKey: key,\n            safeToRetry: key !== undefined,',
        replace: 'idempotencyKey: undefined,\n            safeToRetry: key !== undefined,',
      },
      'ambiguous-capture',
    );
    expect(code, log.slice(-3_000)).toBe(1);
    const i5 = s.invariants.find((i) => i.id === 'I5')!;
    expect(i5.ok, i5.note).toBe(false);
    for (const id of i5.examples) expect(id).toMatch(ORDER_ID);
    expect(budget(s, 'double_charges==0')).toMatchObject({ ok: false });
    expect(s.metrics.double_charges).toBeGreaterThan(0);
  }, 300_000);
});
