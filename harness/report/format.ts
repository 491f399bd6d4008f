// Number, time and text formatting shared by the report renderers (Markdown,
// JUnit, HTML, charts). One place decides how a metric reads: a `*_rate` is a
// percentage, a `*_ms` is milliseconds, a `*_s` is seconds, `*_per_s` a rate
// per second, and counts get thousands separators.

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** The kind of number a metric name holds, from its suffix. */
export type MetricKind = 'percent' | 'ms' | 'seconds' | 'per_s' | 'number';

export function metricKind(metric: string): MetricKind {
  const m = metric.toLowerCase();
  if (/(^|[._])(rate|ratio|share)$/.test(m)) return 'percent';
  if (m.endsWith('_per_s') || m.endsWith('_rps')) return 'per_s';
  if (m.endsWith('_ms')) return 'ms';
  if (m.endsWith('_s') || m.endsWith('seconds')) return 'seconds';
  return 'number';
}

/** A plain number: integers with separators (12,345), others with 3 significant digits (0.0312, 12.3). */
export function fmtNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return intFmt.format(n);
  const a = Math.abs(n);
  if (a >= 1000) return new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 }).format(n);
  return new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 }).format(n);
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? intFmt.format(Math.round(n)) : String(n);
}

/** A ratio (0.031) as a percentage (3.1%). */
export function fmtPercent(ratio: number): string {
  if (!Number.isFinite(ratio)) return String(ratio);
  const p = ratio * 100;
  if (p === 0) return '0%';
  const a = Math.abs(p);
  const f =
    a < 1
      ? new Intl.NumberFormat('en-US', { maximumSignificantDigits: 2 })
      : new Intl.NumberFormat('en-US', { maximumFractionDigits: a < 10 ? 2 : 1 });
  return `${f.format(p)}%`;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const a = Math.abs(ms);
  const f = new Intl.NumberFormat('en-US', { maximumFractionDigits: a < 10 ? 2 : a < 100 ? 1 : 0 });
  return `${f.format(ms)} ms`;
}

/** Seconds: `12.3 s`, `4 min 05 s`, `1 h 02 min`. */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return String(s);
  const a = Math.abs(s);
  const sign = s < 0 ? '-' : '';
  if (a < 60) {
    const f = new Intl.NumberFormat('en-US', { maximumFractionDigits: a < 10 ? 2 : 1 });
    return `${sign}${f.format(a)} s`;
  }
  if (a < 3600) {
    const m = Math.floor(a / 60);
    const sec = Math.round(a - m * 60);
    return sec === 60
      ? `${sign}${m + 1} min 00 s`
      : `${sign}${m} min ${String(sec).padStart(2, '0')} s`;
  }
  const h = Math.floor(a / 3600);
  const min = Math.round((a - h * 3600) / 60);
  return min === 60
    ? `${sign}${h + 1} h 00 min`
    : `${sign}${h} h ${String(min).padStart(2, '0')} min`;
}

export function fmtPerSecond(n: number): string {
  return `${fmtNumber(n)}/s`;
}

/** A metric's value as a reader wants it; null is "no data". */
export function fmtMetric(metric: string, value: number | null | undefined): string {
  if (value === null || value === undefined) return 'no data';
  switch (metricKind(metric)) {
    case 'percent':
      return fmtPercent(value);
    case 'ms':
      return fmtMs(value);
    case 'seconds':
      return fmtSeconds(value);
    case 'per_s':
      return fmtPerSecond(value);
    default:
      return fmtNumber(value);
  }
}

/** A scale factor: `x1`, `x0.05`. */
export function fmtScale(x: number): string {
  return `x${fmtNumber(x)}`;
}

/** An ISO date-time as `2025-06-18 20:00:03 UTC`; anything else as written. */
export function fmtDateTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** summary.json `redis` as read: `cluster of 3 masters: 127.0.0.1:7000 (lipstick; 812 keys), ...`. */
export function fmtRedis(r: {
  cluster: boolean;
  masters: { node: string; keys: number; skus: string[] }[];
}): string {
  const each = r.masters.map(
    (m) => `${m.node} (${m.skus.length ? `${m.skus.join(', ')}; ` : ''}${plural(m.keys, 'key')})`,
  );
  return `${r.cluster ? `cluster of ${plural(r.masters.length, 'master')}` : 'one Redis'}: ${each.join(', ')}`;
}

/** `3 of 5` style counts with a noun, pluralised simply. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${fmtInt(n)} ${n === 1 ? one : many}`;
}

/** Compact axis labels: 950, 1.2k, 3.4M; fractions keep up to 3 significant digits. */
export function fmtCompact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${trim(n / 1e9)}G`;
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e4) return `${trim(n / 1e3)}k`;
  if (Number.isInteger(n)) return intFmt.format(n);
  return new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 }).format(n);
}

function trim(n: number): string {
  return new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 }).format(n);
}

/** The operator of a budget in words, for messages. */
export const OP_WORDS: Record<string, string> = {
  '<': 'below',
  '<=': 'at most',
  '>': 'above',
  '>=': 'at least',
  '==': 'equal to',
  '!=': 'not equal to',
};

// ---------------------------------------------------------------- escaping

// XML 1.0 allows tab, LF, CR and U+0020 and up, minus unpaired surrogates and
// U+FFFE/U+FFFF: those characters become U+FFFD.
/* eslint-disable no-control-regex */
const XML_INVALID =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/* eslint-enable no-control-regex */

/** Escape text for XML or HTML content and attribute values (both quote kinds). */
export function xmlEscape(s: string): string {
  return s
    .replace(XML_INVALID, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * How many breaks an invariant's row leaves unshown: from its count (every
 * break), not from the examples summary.json keeps (a few of them).
 */
export function unshownBreaks(i: { count: number; examples: string[] }, shown: number): number {
  return Math.max(i.count, i.examples.length) - shown;
}

/** The load engine as a line: its name and version, and what ran (threads; runners with their clocks). */
export function engineText(e: { name: string; version: string; detail: string }): string {
  return `${e.name} ${e.version}: ${e.detail}`;
}
