// The invariant metrics budgets read: an undecided invariant counts in
// invariants.broken unless the preset lists it in allowUndecided, so a check
// that could not be made never passes `invariants.broken==0`; a run whose
// audit could not run has all eleven undecided, each saying why.
import { describe, expect, it } from 'vitest';
import { INVARIANT_IDS, notAudited, type InvariantResult } from '../harness/audit.ts';
import { computeMetrics } from '../harness/run/metrics.ts';

const result = (id: string, ok: boolean | null): InvariantResult =>
  ({ id, name: id, ok, count: ok === false ? 1 : 0, examples: [] }) as InvariantResult;

const metricsOf = (invariants: InvariantResult[], allowUndecided: InvariantResult['id'][] = []) =>
  computeMetrics({
    load: undefined,
    checkoutProm: undefined,
    audit: undefined,
    invariants,
    allowUndecided,
    stock: [],
    stages: [],
  });

describe('invariant metrics', () => {
  const mixed = INVARIANT_IDS.map((id) =>
    result(id, id === 'I3' ? false : id === 'I8' || id === 'I10' ? null : true),
  );

  it('an undecided invariant counts as broken, next to the broken ones', () => {
    const m = metricsOf(mixed);
    expect(m['invariants.broken']).toBe(3);
    expect(m['invariants.undecided']).toBe(2);
    expect(m['invariants.I3']).toBe(0);
    expect(m['invariants.I8']).toBeNull();
    expect(m['invariants.I1']).toBe(1);
  });

  it("one the preset's allowUndecided lists does not; a broken one always does", () => {
    const m = metricsOf(mixed, ['I8', 'I10', 'I3']);
    expect(m['invariants.broken']).toBe(1);
    expect(m['invariants.undecided']).toBe(2);
  });

  it('an audit that could not run leaves all eleven undecided, each saying why, and all count', () => {
    const none = notAudited('no Redis URL for the target (--redis)');
    expect(none.map((i) => i.id)).toEqual([...INVARIANT_IDS]);
    for (const i of none) {
      expect(i.ok).toBeNull();
      expect(i.note).toBe('not audited: no Redis URL for the target (--redis)');
    }
    const m = metricsOf(none);
    expect(m['invariants.broken']).toBe(11);
    expect(m['invariants.undecided']).toBe(11);
    // Nothing the audit would have measured appears as a value that could pass.
    expect(m['leaks.stock']).toBeUndefined();
    expect(m.double_charges).toBeUndefined();
  });
});
