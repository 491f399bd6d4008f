// I10, idempotency: the same key replays the same answer, another payload
// under it is 422, one still running is 409. Nothing in Redis or the ledgers
// shows a replay, so the audit alone leaves it undecided (`idempotencyResult`);
// `flashcrowd run` decides it (`decideIdempotency`) from what the clients saw
// over HTTP:
// - the load engine: shoppers who re-click double-submit their orders, and the
//   journey compares the answers (scenarios/lib/replays.ts) into
//   fc_idem_replays and fc_idem_mismatch;
// - the probe at the end of the run (harness/run/probe.ts): an order and its
//   replay, another payload under its key, two identical requests at once.
import { undecided } from './breaks.ts';
import { INVARIANT_NAMES, type InvariantResult } from './report.ts';

export function idempotencyResult(): InvariantResult {
  return undecided(
    'I10',
    'not observable from Redis and the ledgers: `flashcrowd run` decides it from the replays its shoppers sent and a probe at the end (harness/run/probe.ts)',
  );
}

/** What the load engine saw: the totals of fc_idem_replays and fc_idem_mismatch. */
export interface EngineReplays {
  replays: number;
  mismatches: number;
}

/** One failed probe check: which, under which key, the order it made (if any), what came back. */
export interface ProbeFailure {
  check: string;
  key: string;
  orderId?: string;
  detail: string;
}

export interface ProbeOutcome {
  /** What was checked, one line each (a check that could not be made says why). */
  checked: string[];
  failures: ProbeFailure[];
  /** The probe could not run at all (e.g. the checkout did not answer). */
  error?: string;
}

export interface IdempotencyEvidence {
  /** undefined: the engine reported no comparison (no double-submitted order got an answer). */
  engine?: EngineReplays;
  /** undefined: the probe did not run (`probeSkipped` says why). */
  probe?: ProbeOutcome;
  probeSkipped?: string;
}

/** A probe failure as an example: the check, key and order id first. */
export function probeExample(f: ProbeFailure): string {
  return `${f.check}: key ${f.key}${f.orderId ? ` order ${f.orderId}` : ''}: ${f.detail}`;
}

/**
 * I10 from the clients' evidence: broken when an answer mismatched (count =
 * the engine's mismatches + the probe's failures, every probe failure an
 * example); ok when at least one source ran and nothing mismatched; undecided
 * only when neither could run (e.g. a run interrupted before any traffic).
 */
export function decideIdempotency(e: IdempotencyEvidence, maxExamples = 10): InvariantResult {
  const engineRan = e.engine !== undefined && e.engine.replays + e.engine.mismatches > 0;
  const probeRan = e.probe !== undefined && e.probe.error === undefined;
  const engineNote = engineRan
    ? `shoppers' double-submitted orders: ${e.engine!.replays} answers compared, ${e.engine!.mismatches} mismatched`
    : "shoppers' double-submitted orders: none compared (no re-clicker's order got two answers)";
  const probeNote = probeRan
    ? `probe: ${e.probe!.checked.join('; ')}; ${e.probe!.failures.length} failed`
    : `probe: not run (${e.probe?.error ?? e.probeSkipped ?? 'not asked'})`;
  const note = `${engineNote}; ${probeNote}`;
  if (!engineRan && !probeRan) return { ...base(), ok: null, note };
  const engineMismatches = engineRan ? e.engine!.mismatches : 0;
  const failures = probeRan ? e.probe!.failures : [];
  const examples = failures.map(probeExample);
  if (engineMismatches > 0)
    examples.push(
      `${engineMismatches} of ${e.engine!.replays} double-submitted order answers mismatched (fc_idem_mismatch)`,
    );
  const count = engineMismatches + failures.length;
  return {
    ...base(),
    ok: count === 0,
    count,
    examples: examples.slice(0, Math.max(maxExamples, failures.length + 1)),
    note,
  };
}

const base = (): InvariantResult => ({
  id: 'I10',
  name: INVARIANT_NAMES.I10,
  ok: null,
  count: 0,
  examples: [],
});
