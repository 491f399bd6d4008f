// The chaos engine: holds a service's profile, plays its timeline and outage
// windows against a clock, and decides, for each request, which latency and
// which fault it gets. A request with an identity (its operation names one:
// an order id, an out-trade number...; else an Idempotency-Key or an
// x-request-id) draws as a pure function of (seed, service, operation,
// identity, attempt), the attempt counted here per (operation, identity); one
// without draws from the arrival-order streams. It knows nothing about HTTP;
// the middleware in ./middleware.ts carries decisions out. docs/CHAOS.md,
// "Reproducibility", says what is a function of the seed and what is not.
import type { z } from 'zod';
import { sampleLatency } from './latency.ts';
import {
  ERROR_KINDS,
  issuesToErrors,
  makeProfileSchema,
  type ErrorKind,
  type ErrorSpec,
  type FaultSpec,
  type LatencySpec,
  type OutageWindow,
  type Profile,
  type ProfileLayer,
} from './profile.ts';
import {
  hashKey,
  KeyedDraws,
  RngStreams,
  seedState,
  type Draws,
  type KeyHash,
  type SeedState,
} from './rng.ts';
import { ValidationError } from '../errors.ts';

import type { FieldError } from '../errors.ts';
export type { FieldError };

export class ProfileError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.reason}`).join('; '));
  }
}

/** What the engine resolved for one operation at one instant. */
export interface EffectiveFaults<E> {
  latency?: LatencySpec;
  errors: (ErrorSpec & { source?: FaultSource })[];
  capacity?: { maxInFlight: number; queue?: number };
  extra?: E;
  /** A down/flapping window is active (the request is reset, or the listener refused). */
  down: boolean;
  /** Brownout latency multiplier (1 when none). */
  latencyFactor: number;
  activeOutages: OutageWindow[];
}

export type FaultSource = 'profile' | 'header' | 'outage';

export interface ChaosDecision {
  operation: string;
  latencyMs: number;
  fault?: ErrorSpec & { source: FaultSource };
  capacity?: { maxInFlight: number; queue?: number };
  /** What the request's draws were keyed by (absent: it had no identity; arrival-order streams). */
  key?: DrawKey;
}

/** What names one request for keyed draws. */
export interface DrawKey {
  operation: string;
  /** Namespaced: `order:o-1`, `out:N-1`, `key:<Idempotency-Key>`, `req:<x-request-id>`... */
  identity: string;
  /** 1 for the first request of (operation, identity) since the last reseed or reset, 2 for the next... */
  attempt: number;
}

type Headers = Record<string, string | string[] | undefined>;

/** The parts of a request an identity may come from (an express Request is one). */
export interface IdentitySource {
  headers: Headers;
  params?: Record<string, unknown>;
  query?: unknown;
  /** Not validated yet: read it defensively. */
  body?: unknown;
}

/** An operation's own identity of a request (undefined: this request names none). */
export type IdentityOf = (req: IdentitySource) => string | undefined;

/** Identities longer than this are ignored (the next source is used): every request hashes its own. */
export const MAX_IDENTITY_LENGTH = 512;
export const REQUEST_ID_HEADER = 'x-request-id';

export interface ChaosEngineOptions<E> {
  service: string;
  operations: readonly string[];
  declineReasons: readonly string[];
  extraSchema: z.ZodType<E>;
  seed: number;
  profile?: unknown;
  /** Milliseconds; injectable for tests of timelines. */
  now?: () => number;
}

export const FAULT_HEADERS = {
  delay: 'x-fault-delay-ms',
  abort: 'x-fault-abort',
  kind: 'x-fault-kind',
  reason: 'x-fault-reason',
  ambiguous: 'x-fault-ambiguous',
  percentage: 'x-fault-percentage',
} as const;

export class ChaosEngine<E = unknown> {
  readonly service: string;
  readonly operations: readonly string[];
  readonly declineReasons: readonly string[];
  readonly schema: ReturnType<typeof makeProfileSchema>;
  private profile: Profile<E> = {};
  private appliedAt: number;
  private rngs: RngStreams;
  /** Seed states of keyed draws: per operation (with the seed and service), per stream name. */
  private opSeeds = new Map<string, SeedState>();
  private streamSeeds = new Map<string, SeedState>();
  /** Requests seen per operation and identity: the next one's attempt number is this plus one. */
  private attempts = new Map<string, Map<string, number>>();
  private readonly identities = new Map<string, IdentityOf>();
  private readonly now: () => number;
  private readonly listeners = new Set<() => void>();

  constructor(opts: ChaosEngineOptions<E>) {
    this.service = opts.service;
    this.operations = opts.operations;
    this.declineReasons = opts.declineReasons;
    this.schema = makeProfileSchema({
      operations: opts.operations,
      declineReasons: opts.declineReasons,
      extraSchema: opts.extraSchema,
    });
    this.now = opts.now ?? (() => performance.now());
    this.rngs = new RngStreams(opts.seed);
    this.appliedAt = this.now();
    if (opts.profile !== undefined) this.setProfile(opts.profile);
  }

  get seed(): number {
    return this.rngs.seed;
  }

  /** The arrival-order stream `name` of this service (faults, latency, header, and any the domain needs). */
  rng(name: string) {
    return this.rngs.get(name);
  }

  /**
   * Draws of stream `name` for one request: keyed by `key` (a pure function of
   * seed, service, stream and key), or, without a key, the arrival-order stream.
   */
  draws(name: string, key: DrawKey | undefined): Draws {
    if (key === undefined) return this.rngs.get(name);
    return this.keyed(name, this.hash(key));
  }

  /** The hash of a request's key: (seed, service, operation) seed the hash of (identity, attempt). */
  private hash(key: DrawKey): KeyHash {
    let base = this.opSeeds.get(key.operation);
    if (!base) {
      base = seedState(`flashcrowd/keyed/${this.rngs.seed}/${this.service}/${key.operation}`);
      this.opSeeds.set(key.operation, base);
    }
    return hashKey(base, key.identity, key.attempt);
  }

  private keyed(name: string, h: KeyHash): KeyedDraws {
    let s = this.streamSeeds.get(name);
    if (!s) {
      s = seedState(`flashcrowd/stream/${name}`);
      this.streamSeeds.set(name, s);
    }
    return new KeyedDraws(h, s);
  }

  /** Restart every random stream from `seed`, and the attempt counts. */
  reseed(seed: number): void {
    this.rngs = new RngStreams(seed);
    this.opSeeds = new Map();
    this.forgetAttempts();
  }

  /** Count attempts from 1 again for every identity (the service's domain reset calls it). */
  forgetAttempts(): void {
    this.attempts = new Map();
  }

  /** Identities with an attempt count (memory held: one entry per (operation, identity)). */
  get trackedIdentities(): number {
    let n = 0;
    for (const m of this.attempts.values()) n += m.size;
    return n;
  }

  /** How `operation` names the request it serves (its order id...): tried before the headers. */
  identify(operation: string, fn: IdentityOf): void {
    if (!this.operations.includes(operation))
      throw new Error(`${this.service}: no operation ${operation} to identify`);
    this.identities.set(operation, fn);
  }

  /**
   * The identity of a request to `operation`, namespaced: the operation's own
   * (see identify()), else `key:<Idempotency-Key>`, else `req:<x-request-id>`;
   * undefined when it has none (its draws then come in arrival order).
   */
  identityOf(operation: string, req: IdentitySource): string | undefined {
    const own = this.identities.get(operation)?.(req);
    if (usable(own)) return own;
    const key = header(req.headers, 'idempotency-key');
    if (usable(key)) return `key:${key}`;
    const rid = header(req.headers, REQUEST_ID_HEADER);
    if (usable(rid)) return `req:${rid}`;
    return undefined;
  }

  /** Count one more request of (operation, identity); its attempt number (1, 2, ...). */
  private nextAttempt(operation: string, identity: string): number {
    let m = this.attempts.get(operation);
    if (!m) {
      m = new Map();
      this.attempts.set(operation, m);
    }
    const n = (m.get(identity) ?? 0) + 1;
    m.set(identity, n);
    return n;
  }

  /** Validate a profile; throws ProfileError naming each bad field. */
  parse(raw: unknown): Profile<E> {
    const r = this.schema.safeParse(raw);
    if (!r.success) throw new ProfileError(issuesToErrors(r.error.issues, '(profile)'));
    return r.data as Profile<E>;
  }

  /**
   * Replace the profile and restart its clock: timeline and outage offsets
   * count from now, or from `elapsedMs` ago (negative: from that far ahead,
   * e.g. a load generator's start instant).
   */
  setProfile(raw: unknown, elapsedMs = 0): Profile<E> {
    this.profile = this.parse(raw);
    this.appliedAt = this.now() - elapsedMs;
    this.changed();
    return this.profile;
  }

  /** Apply a JSON merge patch (RFC 7396) to the profile; the clock keeps running. */
  patchProfile(patch: unknown): Profile<E> {
    this.profile = this.parse(mergePatch(this.profile, patch));
    this.changed();
    return this.profile;
  }

  clearProfile(): void {
    this.profile = {};
    this.appliedAt = this.now();
    this.changed();
  }

  getProfile(): Profile<E> {
    return this.profile;
  }

  elapsedMs(): number {
    return this.now() - this.appliedAt;
  }

  /** Called when the profile changes (the server re-checks refuse windows). */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed() {
    this.steps = [...(this.profile.timeline ?? [])].sort((a, b) => a.atMs - b.atMs);
    this.layers = [];
    this.effectiveCache.clear();
    for (const fn of this.listeners) fn();
  }

  /** Timeline steps in time order, and the layer after each number of steps (computed once). */
  private steps: NonNullable<Profile<E>['timeline']> = [];
  private layers: ProfileLayer<E>[] = [];
  /** Effective faults per (steps applied, operation) while the profile has no outage windows. */
  private readonly effectiveCache = new Map<string, EffectiveFaults<E>>();

  private stepsApplied(elapsed: number): number {
    let n = 0;
    while (n < this.steps.length && this.steps[n]!.atMs <= elapsed) n += 1;
    return n;
  }

  /** The profile layer in force once the first `n` timeline steps have applied. */
  private layerAfter(n: number): ProfileLayer<E> {
    let layer = this.layers[n];
    if (layer) return layer;
    if (n === 0)
      layer = {
        latency: this.profile.latency,
        errors: this.profile.errors,
        capacity: this.profile.capacity,
        operations: this.profile.operations,
        extra: this.profile.extra,
      };
    else {
      const step = this.steps[n - 1]!;
      layer =
        step.mode === 'replace'
          ? { ...step.profile }
          : (mergePatch(this.layerAfter(n - 1), step.profile) as ProfileLayer<E>);
    }
    this.layers[n] = layer;
    return layer;
  }

  /** Outage windows active at `elapsed` that cover `operation` (undefined: whole-service windows only). */
  activeOutages(elapsed: number, operation?: string): OutageWindow[] {
    return (this.profile.outages ?? []).filter((o) => {
      if (elapsed < o.startMs || elapsed >= o.startMs + o.durationMs) return false;
      if (o.operations && (operation === undefined || !o.operations.includes(operation)))
        return false;
      return true;
    });
  }

  private static isDown(o: OutageWindow, elapsed: number): boolean {
    if (o.mode === 'down') return true;
    if (o.mode !== 'flapping') return false;
    const period = o.periodMs ?? 1000;
    const phase = (elapsed - o.startMs) % period;
    return phase < period * (o.downFraction ?? 0.5);
  }

  /** True while a whole-service `refuse` window has the listener closed. */
  refusing(): boolean {
    const elapsed = this.elapsedMs();
    return this.activeOutages(elapsed).some(
      (o) => o.how === 'refuse' && !o.operations && ChaosEngine.isDown(o, elapsed),
    );
  }

  /** Milliseconds until the next outage boundary (for the server's refuse timer), or undefined. */
  nextBoundaryMs(): number | undefined {
    const elapsed = this.elapsedMs();
    let next: number | undefined;
    for (const o of this.profile.outages ?? []) {
      if (o.how !== 'refuse' || o.operations) continue;
      const cands = [o.startMs, o.startMs + o.durationMs];
      if (o.mode === 'flapping' && elapsed >= o.startMs && elapsed < o.startMs + o.durationMs) {
        const period = o.periodMs ?? 1000;
        const k = Math.floor((elapsed - o.startMs) / period);
        cands.push(
          o.startMs + k * period + period * (o.downFraction ?? 0.5),
          o.startMs + (k + 1) * period,
        );
      }
      for (const c of cands)
        if (c > elapsed && (next === undefined || c - elapsed < next)) next = c - elapsed;
    }
    return next;
  }

  /** Resolve what applies to `operation` now: operation settings override service-wide ones field by field. */
  effective(operation: string, elapsed = this.elapsedMs()): EffectiveFaults<E> {
    const n = this.stepsApplied(elapsed);
    const cacheable = !this.profile.outages?.length;
    const key = `${n}\u0000${operation}`;
    if (cacheable) {
      const hit = this.effectiveCache.get(key);
      if (hit) return hit;
    }
    const eff = this.computeEffective(operation, elapsed, n);
    if (cacheable) this.effectiveCache.set(key, eff);
    return eff;
  }

  private computeEffective(operation: string, elapsed: number, n: number): EffectiveFaults<E> {
    const layer = this.layerAfter(n);
    const op: FaultSpec | undefined = layer.operations?.[operation];
    const outages = this.activeOutages(elapsed, operation);
    let errors: EffectiveFaults<E>['errors'] = [...(op?.errors ?? layer.errors ?? [])];
    let latencyFactor = 1;
    let down = false;
    for (const o of outages) {
      if (ChaosEngine.isDown(o, elapsed)) down = true;
      if (o.mode === 'brownout') {
        latencyFactor = Math.max(latencyFactor, o.latencyFactor ?? 1);
        if (o.errorRate)
          errors = [
            { rate: o.errorRate, kind: 'http', status: o.status ?? 503, source: 'outage' },
            ...errors.map((e) => ({ ...e, rate: e.rate * (1 - (o.errorRate ?? 0)) })),
          ];
      }
    }
    return {
      latency: op?.latency ?? layer.latency,
      errors,
      capacity: op?.capacity ?? layer.capacity,
      extra: layer.extra,
      down,
      latencyFactor,
      activeOutages: outages,
    };
  }

  /**
   * Decide latency and fault for one request; called once per request. With
   * an `identity` (see identityOf()) the request is counted as the next
   * attempt of (operation, identity) and every draw is keyed by the three, so
   * it does not depend on when the request arrives. Without one, it draws a
   * fixed number of values from each arrival-order stream, so the sequence
   * depends on the seed and the request order. What the draws select (which
   * error spec, the outage in force) still depends on the time of arrival.
   */
  decide(operation: string, headers: Headers = {}, identity?: string): ChaosDecision {
    const elapsed = this.elapsedMs();
    const eff = this.effective(operation, elapsed);
    const key =
      identity === undefined
        ? undefined
        : { operation, identity, attempt: this.nextAttempt(operation, identity) };
    // One hash of the key serves every stream of this request.
    const h = key && this.hash(key);
    const u = (h ? this.keyed('faults', h) : this.rngs.get('faults')).next();
    const lat = eff.latency
      ? sampleLatency(eff.latency, h ? this.keyed('latency', h) : this.rngs.get('latency'))
      : 0;
    const decision: ChaosDecision = {
      operation,
      latencyMs: lat * eff.latencyFactor,
      capacity: eff.capacity,
    };
    if (key) decision.key = key;

    if (eff.down) {
      decision.fault = { rate: 1, kind: 'reset', source: 'outage' };
      decision.latencyMs = 0;
      return decision;
    }
    let acc = 0;
    for (const e of eff.errors) {
      acc += e.rate;
      if (u < acc) {
        decision.fault = { ...e, source: e.source ?? 'profile' };
        break;
      }
    }
    if (this.profile.headerFaults !== false)
      applyHeaderFaults(decision, headers, this.declineReasons, () =>
        (h ? this.keyed('header', h) : this.rngs.get('header')).next(),
      );
    return decision;
  }
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function usable(id: string | undefined): id is string {
  return id !== undefined && id.length > 0 && id.length <= MAX_IDENTITY_LENGTH;
}

/** Per-request faults from x-fault-* headers, in the spirit of Envoy's fault filter. */
function applyHeaderFaults(
  decision: ChaosDecision,
  headers: Headers,
  reasons: readonly string[],
  draw: () => number,
) {
  const H = FAULT_HEADERS;
  const delay = header(headers, H.delay);
  const abort = header(headers, H.abort);
  const kind = header(headers, H.kind);
  if (delay === undefined && abort === undefined && kind === undefined) return;
  const errors: FieldError[] = [];
  const pct = header(headers, H.percentage);
  let percentage = 100;
  if (pct !== undefined) {
    percentage = Number(pct);
    if (!Number.isFinite(percentage) || percentage < 0 || percentage > 100)
      errors.push({ field: H.percentage, reason: 'must be a number from 0 to 100' });
  }
  let delayMs: number | undefined;
  if (delay !== undefined) {
    delayMs = Number(delay);
    if (!Number.isFinite(delayMs) || delayMs < 0 || delayMs > 600_000)
      errors.push({ field: H.delay, reason: 'must be a number of milliseconds from 0 to 600000' });
  }
  let fault: ErrorSpec | undefined;
  if (kind !== undefined) {
    if (!(ERROR_KINDS as readonly string[]).includes(kind))
      errors.push({ field: H.kind, reason: `must be one of ${ERROR_KINDS.join(', ')}` });
    else fault = { rate: 1, kind: kind as ErrorKind };
  }
  if (abort !== undefined) {
    const status = Number(abort);
    if (!Number.isInteger(status) || status < 400 || status > 599)
      errors.push({ field: H.abort, reason: 'must be an HTTP status from 400 to 599' });
    else fault = { ...(fault ?? { rate: 1, kind: 'http' }), status };
  }
  if (fault?.kind === 'decline') {
    const reason = header(headers, H.reason);
    if (!reason || !reasons.includes(reason))
      errors.push({ field: H.reason, reason: `a decline needs one of: ${reasons.join(', ')}` });
    else fault.reason = reason;
  }
  const amb = header(headers, H.ambiguous);
  if (amb !== undefined && fault) {
    if (amb !== 'true' && amb !== 'false' && amb !== '1' && amb !== '0')
      errors.push({ field: H.ambiguous, reason: 'must be true or false' });
    else fault.ambiguous = amb === 'true' || amb === '1';
  }
  if (errors.length) throw new ValidationError(errors, 400, 'invalid_fault_header');
  if (draw() * 100 >= percentage) return;
  if (delayMs !== undefined) decision.latencyMs = delayMs;
  if (fault) decision.fault = { ...fault, source: 'header' };
}

/** RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
