// `flashcrowd run`, chaos: the preset's chaos profiles, scaled to the run's
// time-scale, applied to the mocks just before the traffic (so their clocks
// start with it) and cleared when the traffic ends; and the fault bands the
// report draws from them.
import { scaleChaosProfile } from '../preset.ts';
import type { FaultBand } from '../summary.ts';
import { http, must } from './http.ts';
import type { RunContext } from './preset.ts';
import { SERVICES, type Service, type Target } from './target.ts';

type Profile = Record<string, unknown>;

/** Apply each mock's profile (or clear it); the fault bands of what was applied. */
export async function applyChaos(ctx: RunContext, { urls, haveMocks }: Target) {
  const { r } = ctx;
  const chaos = (r.preset.chaos ?? {}) as Partial<Record<Service, Profile>>;
  const bands: FaultBand[] = [];
  if (!haveMocks) return bands;
  for (const service of SERVICES) {
    const url = urls[service];
    const profile = profileOf(service, chaos[service], r.timeScale);
    if (profile) {
      await must(`applying the ${service} chaos profile`, `${url}/__chaos?seed=${r.seed}`, {
        method: 'PUT',
        body: profile,
      });
      bands.push(...bandsOf(service, chaos[service] ? profile : undefined, ctx.resolved.durationS));
    } else {
      await must(`clearing ${service} chaos`, `${url}/__chaos`, { method: 'DELETE' });
    }
  }
  return bands;
}

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
