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
