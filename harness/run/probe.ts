// `flashcrowd run`, the idempotency probe: after the final audit, a few order
// requests with fresh probe users and keys decide I10 together with what the
// load engine saw (harness/audit/idempotency.ts):
//   1. create an order (any answer);
//   2. replay it: the same order in the same state (200 replay);
//   3. another payload under that key: 422 with a JSON reason;
//   4. two identical requests at once under a new key: the same order, or
//      409 `idempotency_key_in_use` (scenarios/lib/replays.ts).
// The orders it made are cancelled at the end (stock and coupon return). It
// runs after the final readings, so the run's stock and counters are not
// touched by it.
import {
  decideIdempotency,
  type EngineReplays,
  type IdempotencyEvidence,
  type ProbeFailure,
  type ProbeOutcome,
} from '../audit/idempotency.ts';
import { replaceInvariant, type AuditReport, type InvariantResult } from '../audit.ts';
import type { EngineSummary } from '../engine/metrics.ts';
import { jsonBody, type JourneyAnswer } from '../../scenarios/lib/journey.ts';
import { answeredByKey, compareReplays } from '../../scenarios/lib/replays.ts';
import type { RunContext } from './preset.ts';
import type { Target } from './target.ts';

interface OrderBody {
  id?: string;
  state?: string;
  reason?: string;
}

/** One HTTP request; no answer (refused, reset, timed out) is status 0. */
async function send(
  url: string,
  method: 'GET' | 'POST',
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<JourneyAnswer> {
  const t0 = performance.now();
  try {
    const res = await fetch(url, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, body: await res.text(), durationMs: performance.now() - t0 };
  } catch {
    return { status: 0, body: '', durationMs: performance.now() - t0 };
  }
}

const shown = (a: JourneyAnswer) => {
  const b = jsonBody<OrderBody>(a);
  return a.status >= 200 && a.status < 300
    ? `${a.status} order ${b.id ?? '(none)'} ${b.state ?? '(no state)'}`
    : `${a.status}${b.reason ? ` ${b.reason}` : ''}`;
};

/** The SKU with the most units available (the probe's orders need stock), else the first. */
async function probeSku(checkout: string): Promise<string | undefined> {
  const r = await send(`${checkout}/v1/skus`, 'GET');
  const skus = (jsonBody<{ data: { id: string; available: number }[] }>(r).data ?? []).filter(
    (s) => typeof s?.id === 'string',
  );
  if (r.status !== 200 || skus.length === 0) return undefined;
  return [...skus].sort((a, b) => (b.available ?? 0) - (a.available ?? 0))[0]!.id;
}

/** The probe against `checkout`; `tag` makes its users and keys fresh (e.g. the run id). */
export async function probeIdempotency(checkout: string, tag: string): Promise<ProbeOutcome> {
  const base = checkout.replace(/\/+$/, '');
  const sku = await probeSku(base);
  if (!sku) return { checked: [], failures: [], error: `GET ${base}/v1/skus gave no SKU` };
  const checked: string[] = [];
  const failures: ProbeFailure[] = [];
  const made = new Set<string>();
  const post = (body: unknown, key: string) =>
    send(`${base}/v1/orders`, 'POST', body, { 'Idempotency-Key': key });
  const idOf = (a: JourneyAnswer) => {
    const id = a.status >= 200 && a.status < 300 ? jsonBody<OrderBody>(a).id : undefined;
    if (id) made.add(id);
    return id;
  };
  const short = tag.replace(/[^A-Za-z0-9_-]/g, '').slice(-40);

  // 1-3: an order, its replay, another payload under its key.
  const key = `fc-probe-${short}-replay`;
  const order = { user: `fc-probe-${short}-a`, sku, quantity: 1, channel: 'card' };
  const first = await post(order, key);
  const orderId = idOf(first);
  if (!orderId) {
    checked.push(`create under ${key}: ${shown(first)}, no order made, so no replay to check`);
  } else {
    checked.push(`create under ${key}: ${shown(first)}`);
    const again = await post(order, key);
    idOf(again);
    const b0 = jsonBody<OrderBody>(first);
    const b1 = jsonBody<OrderBody>(again);
    checked.push(`replay: ${shown(again)}`);
    if (!(again.status >= 200 && again.status < 300 && b1.id === b0.id && b1.state === b0.state))
      failures.push({
        check: 'replay',
        key,
        orderId,
        detail: `answered ${shown(again)}, not the same order in the same state`,
      });
    const other = await post({ ...order, quantity: 2 }, key);
    idOf(other);
    const reason = jsonBody<OrderBody>(other).reason;
    checked.push(`another payload: ${shown(other)}`);
    if (other.status !== 422 || typeof reason !== 'string' || reason === '')
      failures.push({
        check: 'another payload',
        key,
        orderId,
        detail: `answered ${shown(other)}, not 422 with a reason`,
      });
  }

  // 4: two identical requests at once under a new key.
  const key2 = `fc-probe-${short}-twice`;
  const order2 = { ...order, user: `fc-probe-${short}-b` };
  const pair = await Promise.all([post(order2, key2), post(order2, key2)]);
  for (const a of pair) idOf(a);
  const c = compareReplays(pair);
  const answered = pair.filter((a) => answeredByKey(a.status)).length;
  checked.push(
    `two at once under ${key2}: ${pair.map(shown).join(' and ')}` +
      (answered < 2 ? ' (not both answered: not compared)' : ''),
  );
  for (const p of c.problems)
    failures.push({
      check: 'two at once',
      key: key2,
      ...(c.orderId ? { orderId: c.orderId } : {}),
      detail: p,
    });

  // Give back what the probe took.
  for (const id of made) await send(`${base}/v1/orders/${id}/cancel`, 'POST', {});
  return { checked, failures };
}

/** The totals of fc_idem_replays and fc_idem_mismatch (undefined: the engine reported neither). */
export function engineReplays(summary: EngineSummary | undefined): EngineReplays | undefined {
  const count = (name: string) => summary?.metrics[name]?.values.count;
  const replays = count('fc_idem_replays');
  const mismatches = count('fc_idem_mismatch');
  if (replays === undefined && mismatches === undefined) return undefined;
  return { replays: replays ?? 0, mismatches: mismatches ?? 0 };
}

/**
 * I10 for the run: the engine's double-submitted orders and the probe (not
 * after an interruption: the user asked the run to stop), decided into the
 * audit report when there is one. Returns the result.
 */
export async function decideI10(
  ctx: RunContext,
  target: Target,
  report: AuditReport | undefined,
  load: EngineSummary | undefined,
  interrupted: boolean,
): Promise<InvariantResult> {
  const evidence: IdempotencyEvidence = { engine: engineReplays(load) };
  if (interrupted) evidence.probeSkipped = 'the run was interrupted';
  else {
    ctx.print('probing idempotency: an order, its replay, another payload, two at once...');
    evidence.probe = await probeIdempotency(target.urls.checkout, ctx.r.runId);
  }
  const result = decideIdempotency(evidence);
  if (report) replaceInvariant(report, result);
  return result;
}
