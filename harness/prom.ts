// Read a service's /metrics into plain rows.
import parse from 'parse-prometheus-text-format';

export interface Row {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Counter and gauge samples of the families whose name starts with `prefix`. */
export function counterRows(text: string, prefix: string): Row[] {
  return parse(text)
    .filter((f) => f.name.startsWith(prefix) && (f.type === 'COUNTER' || f.type === 'GAUGE'))
    .flatMap((f) =>
      f.metrics.map((m) => ({ name: f.name, labels: m.labels ?? {}, value: Number(m.value) })),
    );
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${url}/metrics answered ${res.status}`);
  return res.text();
}

/** One labelled histogram: cumulative buckets (`le` in the metric's unit, +Inf last). */
export interface HistogramRow {
  name: string;
  /** The series' labels, `le` removed. */
  labels: Record<string, string>;
  buckets: { le: number; count: number }[];
}

/**
 * Counter and gauge rows, and the histograms, of a whole /metrics text (one parse).
 *
 * parse-prometheus-text-format folds every series of a histogram family into
 * one set of buckets and drops their labels; the histogram families are
 * therefore read as untyped samples (`NAME_bucket{...,le="..."}`), grouped
 * here by their labels without `le`.
 */
export function readMetrics(
  text: string,
  prefix = '',
): { rows: Row[]; histograms: HistogramRow[] } {
  const histNames = new Set<string>();
  const untyped = text.replace(/^# TYPE (\S+) histogram[ \t]*$/gm, (_l, name: string) => {
    if (name.startsWith(prefix)) histNames.add(name);
    return `# TYPE ${name} untyped`;
  });
  const families = parse(untyped.endsWith('\n') ? untyped : `${untyped}\n`);
  const rows: Row[] = [];
  const byKey = new Map<string, HistogramRow>();
  for (const f of families) {
    if (!f.name.startsWith(prefix)) continue;
    if (f.type === 'COUNTER' || f.type === 'GAUGE') {
      for (const m of f.metrics)
        rows.push({ name: f.name, labels: m.labels ?? {}, value: Number(m.value) });
      continue;
    }
    const base = f.name.endsWith('_bucket') ? f.name.slice(0, -'_bucket'.length) : undefined;
    if (base === undefined || !histNames.has(base)) continue;
    for (const m of f.metrics) {
      const all = m.labels ?? {};
      const le = all.le;
      if (le === undefined) continue;
      // The series: its labels but `le`, in name order (one key per series, built per bucket line).
      const names = Object.keys(all).sort();
      let key = base;
      for (const k of names) if (k !== 'le') key += `\u0000${k}\u0000${all[k]}`;
      let h = byKey.get(key);
      if (!h) {
        const labels: Record<string, string> = {};
        for (const k of names) if (k !== 'le') labels[k] = all[k]!;
        byKey.set(key, (h = { name: base, labels, buckets: [] }));
      }
      h.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: Number(m.value) });
    }
  }
  for (const h of byKey.values()) h.buckets.sort((a, b) => a.le - b.le);
  return { rows, histograms: [...byKey.values()] };
}

/**
 * Several /metrics texts of one kind of service (a checkout's instances) as
 * one: each counter series summed, each gauge series the max. Histograms are
 * left out (the final readings read counters).
 */
export function sumCounterTexts(texts: readonly string[]): string {
  const families = new Map<string, { type: 'counter' | 'gauge'; series: Map<string, number> }>();
  for (const text of texts)
    for (const f of parse(text)) {
      if (f.type !== 'COUNTER' && f.type !== 'GAUGE') continue;
      const type = f.type === 'COUNTER' ? 'counter' : 'gauge';
      let fam = families.get(f.name);
      if (!fam) families.set(f.name, (fam = { type, series: new Map() }));
      for (const m of f.metrics) {
        const labels = Object.entries(m.labels ?? {})
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
          .join(',');
        const v = Number(m.value);
        const had = fam.series.get(labels);
        fam.series.set(
          labels,
          had === undefined ? v : fam.type === 'counter' ? had + v : Math.max(had, v),
        );
      }
    }
  const lines: string[] = [];
  for (const [name, fam] of families) {
    lines.push(`# TYPE ${name} ${fam.type}`);
    for (const [labels, v] of fam.series) lines.push(`${name}${labels ? `{${labels}}` : ''} ${v}`);
  }
  return `${lines.join('\n')}\n`;
}

const escapeLabel = (v: string) =>
  v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
