// I10 as a client sees it: the answers to identical POST /v1/orders requests
// sent under one Idempotency-Key (a double-submitted order, or the end-of-run
// probe, harness/run/probe.ts) compared with each other. Whatever order they
// finished in, the key gives one answer: every 2xx names the same order in
// the same state, or every answer is the same refusal (the checkout keeps a
// refusal under its key: 402 coupon declined, 409 sold out or over the limit),
// and any other answer is 409 `idempotency_key_in_use` (the first request was
// still running). A 422 (another payload) is always wrong for an identical
// request. No answer (status 0), 429 and 5xx (shed, overloaded, timed out,
// a coupon call that failed: the key is given up) never settled the key and
// are not compared.
// No imports except sibling files (k6 loads this file by relative path).
import { jsonBody, type JourneyAnswer } from './journey.ts';

export const IN_FLIGHT_REASON = 'idempotency_key_in_use';

export interface ReplayCheck {
  /** Answers compared beyond the first one the key gave (answered requests - 1, at least 0). */
  replays: number;
  /** Answers that break I10. */
  mismatches: number;
  /** One line per mismatch: the answer's index, status, order and what it should have been. */
  problems: string[];
  /** The answer the shopper sees: the first 2xx, else the first that is not "in flight", else 0. */
  shown: number;
  /** The order the key made (the first 2xx's id), if any. */
  orderId?: string;
}

interface Body {
  id?: string;
  state?: string;
  reason?: string;
}

/** An answer the idempotency layer gave (not lost, shed or failed before the key was looked at). */
export function answeredByKey(status: number): boolean {
  return status >= 200 && status < 500 && status !== 429;
}

const is2xx = (status: number) => status >= 200 && status < 300;

function describe(a: JourneyAnswer, b: Partial<Body>): string {
  if (is2xx(a.status)) return `${a.status} order ${b.id ?? '(none)'} ${b.state ?? '(no state)'}`;
  return `${a.status} ${b.reason ?? '(no reason)'}`;
}

const inFlight = (a: JourneyAnswer, b: Partial<Body>) =>
  a.status === 409 && b.reason === IN_FLIGHT_REASON;

/** Two answers the key gave are the same: the same order in the same state, or the same refusal. */
function sameAnswer(a: JourneyAnswer, b: Partial<Body>, r: JourneyAnswer, rb: Partial<Body>) {
  if (is2xx(r.status)) return is2xx(a.status) && b.id === rb.id && b.state === rb.state;
  return a.status === r.status && b.reason === rb.reason;
}

/** Compare the answers to identical order requests sent under one key. */
export function compareReplays(answers: readonly JourneyAnswer[]): ReplayCheck {
  const bodies = answers.map((a) => jsonBody<Body>(a));
  const answered = answers.map((_, i) => i).filter((i) => answeredByKey(answers[i]!.status));
  // The key's answer: its order (the first 2xx), else the first refusal that is not "in flight".
  const settled = answered.filter((i) => answers[i]!.status !== 422);
  const ref =
    settled.find((i) => is2xx(answers[i]!.status)) ??
    settled.find((i) => !inFlight(answers[i]!, bodies[i]!));
  const problems: string[] = [];
  for (const i of answered) {
    if (i === ref) continue;
    const a = answers[i]!;
    const b = bodies[i]!;
    if (a.status === 422) {
      problems.push(`answer ${i}: ${describe(a, b)} to an identical request`);
      continue;
    }
    if (ref === undefined || inFlight(a, b)) continue;
    const r = answers[ref]!;
    if (!sameAnswer(a, b, r, bodies[ref]!))
      problems.push(
        `answer ${i}: ${describe(a, b)}, not ${describe(r, bodies[ref]!)} ` +
          `(answer ${ref}) or 409 ${IN_FLIGHT_REASON}`,
      );
  }
  const twoXX = answered.find((i) => is2xx(answers[i]!.status));
  const notInFlight = answers.findIndex((a, i) => !inFlight(a, bodies[i]!));
  const orderId = twoXX === undefined ? undefined : bodies[twoXX]!.id;
  return {
    replays: Math.max(0, answered.length - 1),
    mismatches: problems.length,
    problems,
    shown: twoXX ?? (notInFlight >= 0 ? notInFlight : 0),
    ...(orderId ? { orderId } : {}),
  };
}
