// `flashcrowd run`, chaos: the preset's chaos profiles, scaled to the run's
// time-scale, applied to the mocks as the engine starts, with their clocks set
// to its start instant (so outages and timeline steps count from the first
// arrival, whenever the PUT lands), and cleared when the traffic ends; and
// the fault bands the report draws from them.
import { scaleChaosProfile } from '../preset.ts';
import type { FaultBand } from '../summary.ts';
import { http, must } from './http.ts';
import type { RunContext } from './preset.ts';
import { SERVICES, type Service, type Target } from './target.ts';

type Profile = Record<string, unknown>;

/** The preset's chaos per mock: its profile (scaled), undefined to clear it. */
function profilesOf(ctx: RunContext) {
  const { r } = ctx;
  const chaos = (r.preset.chaos ?? {}) as Partial<Record<Service, Profile>>;
  return SERVICES.map((service) => ({
    service,
    fromPreset: chaos[service] !== undefined,
    profile: profileOf(service, chaos[service], r.timeScale),
  }));
}

/** The fault bands of the chaos the run applies (none without the mocks). */
export function chaosBands(ctx: RunContext, { haveMocks }: Target): FaultBand[] {
  if (!haveMocks) return [];
  return profilesOf(ctx).flatMap(({ service, fromPreset, profile }) =>
    bandsOf(service, fromPreset ? profile : undefined, ctx.resolved.durationS),
  );
}

/**
 * Apply each mock's profile (or clear it), its clock set to `t0` (epoch ms,
 * the engine's start instant) through `?elapsedMs=`: negative when the PUT
 * lands before the first arrival. A PUT later than LATE_MS warns: the base
 * faults missed the first arrivals (the timed ones still count from t0).
 */
export async function applyChaos(ctx: RunContext, { urls, haveMocks }: Target, t0: number) {
  if (!haveMocks) return;
  const { r } = ctx;
  await Promise.all(
    profilesOf(ctx).map(({ service, profile }) => {
      const url = urls[service];
      if (!profile)
        return must(`clearing ${service} chaos`, `${url}/__chaos`, { method: 'DELETE' });
      const elapsedMs = Date.now() - t0;
      return must(
        `applying the ${service} chaos profile`,
        `${url}/__chaos?seed=${r.seed}&elapsedMs=${elapsedMs}`,
        { method: 'PUT', body: profile },
      );
    }),
  );
  const late = Date.now() - t0;
  if (late > LATE_MS)
    ctx.warnings.push(
      `the chaos profiles reached the mocks ${late} ms after the first arrival was due: ` +
        'arrivals before that met no base faults (outage windows and timeline steps still count from the first arrival)',
    );
}

/** How late (ms after the first arrival) the chaos may land before the run warns. */
const LATE_MS = 250;

/** The profile a mock gets: the preset's, scaled; the wallet's always carries the time-scale. */
function profileOf(service: Service, preset: Profile | undefined, timeScale: number) {
  let profile = preset ? (scaleChaosProfile(preset, timeScale) as Profile) : undefined;
  if (service === 'wallet') {
    // Notification retries (minutes to hours) follow the run's time-scale too.
    const extra = (profile?.extra ?? {}) as Profile;
    const notify = (extra.notify ?? {}) as Profile;
    profile = { ...(profile ?? {}), extra: { ...extra, notify: { timeScale, ...notify } } };
  }
  return profile;
}

/** Faults end with the traffic: every mock's profile is cleared (errors ignored). */
export async function clearChaos({ urls, haveMocks }: Target): Promise<void> {
  if (haveMocks)
    for (const service of SERVICES)
      await http(`${urls[service]}/__chaos`, { method: 'DELETE' }).catch(() => undefined);
}

/** Fault bands from a (scaled) chaos profile: outage windows and timeline steps. */
export function bandsOf(
  service: FaultBand['service'],
  profile: unknown,
  endS: number,
): FaultBand[] {
  const p = (profile ?? {}) as {
    outages?: { startMs?: number; durationMs?: number; mode?: string }[];
    timeline?: { atMs: number; profile?: unknown; mode?: string }[];
  };
  const bands: FaultBand[] = [];
  const base = describeFaults(p);
  if (base) bands.push({ service, label: base, fromS: 0, toS: null });
  for (const o of p.outages ?? []) {
    const from = (o.startMs ?? 0) / 1000;
    bands.push({
      service,
      label: `${o.mode ?? 'outage'}`,
      fromS: from,
      toS: o.durationMs === undefined ? null : Math.min(endS, from + o.durationMs / 1000),
    });
  }
  const steps = [...(p.timeline ?? [])].sort((a, b) => a.atMs - b.atMs);
  steps.forEach((s, i) => {
    const label =
      describeFaults(s.profile) ?? (s.mode === 'replace' ? 'faults cleared' : undefined);
    if (!label || label === 'faults cleared') return;
    const next = steps[i + 1];
    bands.push({ service, label, fromS: s.atMs / 1000, toS: next ? next.atMs / 1000 : null });
  });
  return bands;
}

/** A band's label: latency, error kinds and rates, operations overridden (undefined: none). */
function describeFaults(x: unknown): string | undefined {
  const q = (x ?? {}) as {
    latency?: { dist?: string; medianMs?: number; ms?: number };
    errors?: { rate?: number; kind?: string }[];
    operations?: Record<string, unknown>;
  };
  const parts: string[] = [];
  if (q.latency)
    parts.push(
      `latency ${q.latency.medianMs ?? q.latency.ms ?? ''}${q.latency.dist ? ` ${q.latency.dist}` : ''}`.trim(),
    );
  for (const e of q.errors ?? [])
    parts.push(`${e.kind ?? 'error'} ${Math.round((e.rate ?? 0) * 100)}%`);
  if (q.operations) parts.push(`ops ${Object.keys(q.operations).join(',')}`);
  return parts.length ? parts.join(', ') : undefined;
}
