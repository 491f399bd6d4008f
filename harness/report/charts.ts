// The report's charts: which series go on which chart (`buildCharts`), and a
// small SVG line-chart renderer (`renderChart`) run in Node, so index.html
// needs no script, no font and no network to show them.
//
// Every chart shares one time axis: seconds from the start of traffic (t = 0
// in timeseries.json). Stage boundaries of the traffic shape are dashed
// vertical lines with the stage labels above the plot; fault bands are shaded
// regions with their labels (service: label) in rows above the plot. A null
// value is a gap in its line; a series with no values at all is listed in the
// legend as "no data"; a chart with nothing to draw says "no data" and names
// the series it looked for.
import type { FaultBand, TimeSeries } from '../summary.ts';
import { fmtCompact, xmlEscape } from './format.ts';

export type ChartUnit = 'per_s' | 'ms' | 'count' | 'state';

export interface ChartLine {
  /** Legend text. */
  label: string;
  /** The series key in timeseries.json. */
  key: string;
  values: readonly (number | null)[];
  color: string;
  /** SVG stroke-dasharray; empty for a solid line. */
  dash: string;
}

export interface ChartSpec {
  id: string;
  title: string;
  /** One sentence under the title: what the chart shows. */
  description: string;
  unit: ChartUnit;
  t: readonly number[];
  lines: ChartLine[];
  stages: TimeSeries['stages'];
  bands: FaultBand[];
  /** The series (names with label patterns) the chart looks for, for the "no data" note. */
  expected: string[];
}

/** The charts of the report, in order (index.html draws one SVG per entry). */
export const CHART_DEFS = [
  {
    id: 'throughput',
    title: 'Arrivals and throughput',
    description:
      'Shoppers k6 started, checkout answers by route, orders paid, and arrivals k6 dropped (no free VU), per second.',
    unit: 'per_s',
    expected: ['arrivals_per_s', 'requests_per_s{route}', 'paid_per_s', 'dropped_per_s'],
  },
  {
    id: 'latency',
    title: 'Checkout latency',
    description: 'Checkout request latency quantiles over each second, in milliseconds.',
    unit: 'ms',
    expected: ['latency_ms{q}'],
  },
  {
    id: 'failures',
    title: 'Shopper failures by reason',
    description: 'Failures shoppers saw, per second, one line per reason code.',
    unit: 'per_s',
    expected: ['failures_per_s{reason}'],
  },
  {
    id: 'stock',
    title: 'Stock: available, reserved and sold',
    description:
      'Units per SKU: colour is the state (available, reserved, sold), the dash pattern is the SKU.',
    unit: 'count',
    expected: ['stock_available{sku}', 'stock_reserved{sku}', 'stock_sold{sku}'],
  },
  {
    id: 'dep-errors',
    title: 'Dependency errors',
    description:
      'Calls from the checkout to the gateways that did not end ok, per second, by dependency and outcome.',
    unit: 'per_s',
    expected: ['dep_calls_per_s{dependency,outcome!=ok}'],
  },
  {
    id: 'dep-latency',
    title: 'Dependency latency',
    description:
      "The gateways' own answer latency quantiles, in milliseconds: colour is the dependency, the dash pattern the quantile.",
    unit: 'ms',
    expected: ['dep_latency_ms{dependency,q}'],
  },
  {
    id: 'retries',
    title: 'Checkout retries',
    description: 'Calls the checkout retried, per second, by dependency.',
    unit: 'per_s',
    expected: ['retries_per_s{dependency}'],
  },
  {
    id: 'breakers',
    title: 'Circuit breakers',
    description:
      "The checkout's circuit breakers by dependency and key: 0 closed, 1 open, 2 half-open, 3 isolated.",
    unit: 'state',
    expected: ['breaker_state{dependency,key}'],
  },
  {
    id: 'shed',
    title: 'Load shed',
    description: 'Requests the checkout shed with a 503 (load shedding), per second.',
    unit: 'per_s',
    expected: ['shed_per_s'],
  },
] as const satisfies readonly Omit<ChartSpec, 't' | 'lines' | 'stages' | 'bands'>[];

// Colour-blind safe (Okabe-Ito, then Tol's muted), all readable on white and in grey print.
export const PALETTE = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#332288',
  '#882255',
  '#117733',
  '#999933',
  '#44AA99',
  '#000000',
];
const DASHES = ['', '7 4', '2 3', '10 3 2 3', '4 2 4 6'];

export const BAND_COLORS: Record<FaultBand['service'], string> = {
  bank: '#D55E00',
  wallet: '#CC79A7',
  coupon: '#E69F00',
  checkout: '#555555',
  redis: '#009E73',
};

// ---------------------------------------------------------------- series keys

export interface SeriesRef {
  name: string;
  labels: Record<string, string>;
}

/** The inverse of `seriesKey`: `dep_latency_ms{dependency=bank,q=0.99}` -> name and labels. */
export function parseSeriesKey(key: string): SeriesRef {
  const open = key.indexOf('{');
  if (open < 0 || !key.endsWith('}')) return { name: key, labels: {} };
  const labels: Record<string, string> = {};
  for (const part of key.slice(open + 1, -1).split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 0) labels[part] = '';
    else labels[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { name: key.slice(0, open), labels };
}

/** `0.99` -> `p99`, `0.5` -> `p50`, `0.999` -> `p99.9`; anything else `q=<value>`. */
export function quantileLabel(q: string): string {
  const n = Number(q);
  if (q === '' || !Number.isFinite(n) || n < 0 || n > 1) return `q=${q}`;
  return `p${Number((n * 100).toPrecision(6))}`;
}

// ---------------------------------------------------------------- chart data

interface Found {
  key: string;
  ref: SeriesRef;
  values: (number | null)[];
}

function pick(
  ts: TimeSeries,
  name: string,
  where: (l: Record<string, string>) => boolean = () => true,
): Found[] {
  const out: Found[] = [];
  for (const [key, values] of Object.entries(ts.series)) {
    const ref = parseSeriesKey(key);
    if (ref.name === name && where(ref.labels)) out.push({ key, ref, values });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

function total(values: readonly (number | null)[]): number {
  let s = 0;
  for (const v of values) if (v !== null && Number.isFinite(v)) s += v;
  return s;
}

/** Palette colour and dash for the i-th line of a chart (dashes once the colours run out). */
function styleAt(i: number, palette = PALETTE): { color: string; dash: string } {
  return {
    color: palette[i % palette.length]!,
    dash: DASHES[Math.floor(i / palette.length) % DASHES.length]!,
  };
}

/** One ChartSpec per entry of CHART_DEFS, from the run's time series. */
export function buildCharts(ts: TimeSeries): ChartSpec[] {
  const base = (def: (typeof CHART_DEFS)[number]) => ({
    id: def.id,
    title: def.title,
    description: def.description,
    unit: def.unit,
    expected: [...def.expected],
    t: ts.t,
    stages: ts.stages,
    bands: ts.bands,
  });
  const specs: ChartSpec[] = [];
  for (const def of CHART_DEFS) {
    const lines: ChartLine[] = [];
    switch (def.id) {
      case 'throughput': {
        const rest = PALETTE.filter((c) => !['#0072B2', '#009E73', '#D55E00'].includes(c));
        for (const f of pick(ts, 'arrivals_per_s'))
          lines.push({
            label: 'arrivals',
            key: f.key,
            values: f.values,
            color: '#0072B2',
            dash: '',
          });
        pick(ts, 'requests_per_s').forEach((f, i) =>
          lines.push({
            label: `requests ${f.ref.labels.route ?? labelText(f.ref.labels)}`.trim(),
            key: f.key,
            values: f.values,
            ...styleAt(i, rest),
          }),
        );
        for (const f of pick(ts, 'paid_per_s'))
          lines.push({ label: 'paid', key: f.key, values: f.values, color: '#009E73', dash: '' });
        for (const f of pick(ts, 'dropped_per_s'))
          lines.push({
            label: 'dropped',
            key: f.key,
            values: f.values,
            color: '#D55E00',
            dash: '',
          });
        break;
      }
      case 'latency': {
        const found = pick(ts, 'latency_ms').sort(
          (a, b) => Number(a.ref.labels.q) - Number(b.ref.labels.q),
        );
        found.forEach((f, i) =>
          lines.push({
            label: f.ref.labels.q !== undefined ? quantileLabel(f.ref.labels.q) : f.key,
            key: f.key,
            values: f.values,
            ...styleAt(i),
          }),
        );
        break;
      }
      case 'failures': {
        const found = pick(ts, 'failures_per_s').sort(
          (a, b) => total(b.values) - total(a.values) || a.key.localeCompare(b.key),
        );
        found.forEach((f, i) =>
          lines.push({
            label: f.ref.labels.reason ?? labelText(f.ref.labels),
            key: f.key,
            values: f.values,
            ...styleAt(i),
          }),
        );
        break;
      }
      case 'stock': {
        const states = [
          ['available', '#009E73'],
          ['reserved', '#E69F00'],
          ['sold', '#0072B2'],
        ] as const;
        const skus = new Set<string>();
        for (const [state] of states)
          for (const f of pick(ts, `stock_${state}`)) skus.add(f.ref.labels.sku ?? '');
        const skuList = [...skus].sort();
        for (const [state, color] of states)
          for (const f of pick(ts, `stock_${state}`)) {
            const sku = f.ref.labels.sku ?? '';
            const dash = DASHES[skuList.indexOf(sku) % DASHES.length]!;
            lines.push({
              label: skuList.length > 1 || sku ? `${state} ${sku}`.trim() : state,
              key: f.key,
              values: f.values,
              color,
              dash,
            });
          }
        break;
      }
      case 'dep-errors': {
        pick(ts, 'dep_calls_per_s', (l) => l.outcome !== 'ok').forEach((f, i) =>
          lines.push({
            label: `${f.ref.labels.dependency ?? '?'}: ${f.ref.labels.outcome ?? '?'}`,
            key: f.key,
            values: f.values,
            ...styleAt(i),
          }),
        );
        break;
      }
      case 'dep-latency': {
        const found = pick(ts, 'dep_latency_ms');
        const deps = [...new Set(found.map((f) => f.ref.labels.dependency ?? ''))].sort();
        const qs = [...new Set(found.map((f) => f.ref.labels.q ?? ''))].sort(
          (a, b) => Number(b) - Number(a),
        );
        for (const f of found) {
          const dep = f.ref.labels.dependency ?? '';
          const q = f.ref.labels.q ?? '';
          lines.push({
            label: `${dep} ${q ? quantileLabel(q) : ''}`.trim(),
            key: f.key,
            values: f.values,
            color: PALETTE[deps.indexOf(dep) % PALETTE.length]!,
            dash: DASHES[qs.indexOf(q) % DASHES.length]!,
          });
        }
        break;
      }
      case 'retries':
        lines.push(...plainLines(pick(ts, 'retries_per_s'), (l) => l.dependency ?? '?'));
        break;
      case 'breakers':
        lines.push(...plainLines(pick(ts, 'breaker_state'), (l) => `${l.dependency}: ${l.key}`));
        break;
      case 'shed':
        lines.push(...plainLines(pick(ts, 'shed_per_s'), () => 'shed'));
        break;
    }
    specs.push({ ...base(def), lines });
  }
  return specs;
}

/** One line per series, in palette order, labelled from its labels. */
function plainLines(found: Found[], label: (l: Record<string, string>) => string): ChartLine[] {
  return found.map((f, i) => ({
    label: label(f.ref.labels),
    key: f.key,
    values: f.values,
    ...styleAt(i),
  }));
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

// ---------------------------------------------------------------- scales

function niceNum(x: number, round: boolean): number {
  if (x <= 0 || !Number.isFinite(x)) return 1;
  const exp = Math.floor(Math.log10(x));
  const f = x / 10 ** exp;
  const nf = round
    ? f < 1.5
      ? 1
      : f < 3
        ? 2
        : f < 7
          ? 5
          : 10
    : f <= 1
      ? 1
      : f <= 2
        ? 2
        : f <= 5
          ? 5
          : 10;
  return nf * 10 ** exp;
}

/** Round ticks covering [min, max], about `count` of them. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) max = min + 1;
  const step = niceNum(niceNum(max - min, false) / (count - 1), true);
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let i = 0; lo + i * step <= hi + step / 2; i++)
    ticks.push(Number((lo + i * step).toPrecision(12)));
  return ticks;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400];

function timeTicks(maxS: number): { ticks: number[]; clock: boolean } {
  const step = TIME_STEPS.find((s) => maxS / s <= 10) ?? Math.ceil(maxS / 10 / 3600) * 3600;
  const ticks: number[] = [];
  for (let v = 0; v <= maxS + 1e-9; v += step) ticks.push(v);
  return { ticks, clock: maxS >= 120 };
}

function fmtTime(s: number, clock: boolean): string {
  if (!clock) return `${fmtCompact(s)} s`;
  const m = Math.floor(s / 60);
  const sec = Math.round(s - m * 60);
  return `${m}:${String(sec).padStart(2, '0')}`;
}

// ---------------------------------------------------------------- rendering

const W = 960;
const ML = 64;
const MR = 20;
const PW = W - ML - MR;
const PH = 220;
const CHAR_W = 6.3; // average width of an 11px system-ui character
const BAND_ROW = 15;
const LEGEND_ROW = 18;

const r1 = (n: number) => Math.round(n * 10) / 10;
const textWidth = (s: string) => s.length * CHAR_W;

function clip(s: string, maxPx: number): string {
  const max = Math.floor(maxPx / CHAR_W);
  if (s.length <= max) return s;
  return max <= 1 ? '' : `${s.slice(0, max - 1)}…`;
}

const UNIT_TITLE: Record<ChartUnit, string> = {
  per_s: 'per second',
  ms: 'milliseconds',
  count: 'units',
  state: 'state',
};

function finite(v: number | null | undefined): v is number {
  return v !== null && v !== undefined && Number.isFinite(v);
}

/** The chart as one `<svg>` element (no scripts, no external references). */
export function renderChart(spec: ChartSpec): string {
  const t = spec.t;
  const bands = spec.bands.filter((b) => Number.isFinite(b.fromS));
  const stages = spec.stages;

  // --- x domain: the samples, the stages and the bands
  let xMax = 0;
  for (const v of t) if (Number.isFinite(v)) xMax = Math.max(xMax, v);
  for (const s of stages) xMax = Math.max(xMax, s.toS, s.fromS);
  for (const b of bands) xMax = Math.max(xMax, b.fromS, b.toS ?? 0);
  if (xMax <= 0) xMax = 1;
  const xs = (s: number) => ML + (Math.min(Math.max(s, 0), xMax) / xMax) * PW;

  // --- y domain
  let yMin = 0;
  let yMax = 0;
  let any = false;
  for (const l of spec.lines)
    for (const v of l.values)
      if (finite(v)) {
        any = true;
        yMax = Math.max(yMax, v);
        yMin = Math.min(yMin, v);
      }
  const yTicks = niceTicks(yMin, yMax > yMin ? yMax : yMin + 1, 5);
  const y0 = yTicks[0]!;
  const y1 = yTicks[yTicks.length - 1]!;

  // --- band label rows (greedy: first row where the label fits)
  const rows: number[] = []; // right edge of the last label in each row
  const bandLabels = bands.map((b) => {
    const text = clip(`${b.service}: ${b.label}`, 320);
    const w = 14 + textWidth(text);
    const x = Math.min(Math.max(xs(b.fromS), ML), W - MR - w);
    let row = rows.findIndex((right) => right + 8 <= x);
    if (row < 0) {
      row = rows.length;
      rows.push(0);
    }
    rows[row] = x + w;
    return { b, text, x, row };
  });
  const stageRow = stages.length ? 16 : 0;
  const top = 8 + stageRow + rows.length * BAND_ROW + (rows.length || stageRow ? 6 : 4);
  const bottom = top + PH;
  const ys = (v: number) => bottom - ((v - y0) / (y1 - y0)) * PH;

  // --- legend layout
  const legendTop = bottom + 46;
  let lx = ML;
  let lrow = 0;
  const legend = spec.lines.map((l) => {
    const empty = !l.values.some(finite);
    const text = clip(empty ? `${l.label} (no data)` : l.label, PW - 30);
    const w = 30 + textWidth(text) + 16;
    if (lx > ML && lx + w > W - MR) {
      lx = ML;
      lrow++;
    }
    const item = { l, text, x: lx, y: legendTop + lrow * LEGEND_ROW, empty };
    lx += w;
    return item;
  });
  const H = legendTop + (spec.lines.length ? (lrow + 1) * LEGEND_ROW : 0) + 6;

  const id = `chart-${spec.id}`;
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="${xmlEscape(id)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="${id}-title ${id}-desc" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="11">`,
  );
  o.push(`<title id="${id}-title">${xmlEscape(spec.title)}</title>`);
  o.push(`<desc id="${id}-desc">${xmlEscape(spec.description)}</desc>`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);

  // bands (under everything)
  for (const { b } of bandLabels) {
    const x = xs(b.fromS);
    const w = Math.max(2, xs(b.toS ?? xMax) - x);
    const c = BAND_COLORS[b.service] ?? '#555555';
    const until = b.toS === null ? 'the end of the run' : `${fmtCompact(b.toS)} s`;
    o.push(
      `<rect class="band" x="${r1(x)}" y="${top}" width="${r1(w)}" height="${PH}" fill="${c}" fill-opacity="0.13" stroke="${c}" stroke-opacity="0.45" stroke-width="1"><title>${xmlEscape(`${b.service}: ${b.label} (${fmtCompact(b.fromS)} s to ${until})`)}</title></rect>`,
    );
  }

  // grid and y axis
  for (const v of yTicks) {
    const y = r1(ys(v));
    o.push(
      `<line x1="${ML}" x2="${W - MR}" y1="${y}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>`,
    );
    o.push(
      `<text x="${ML - 6}" y="${r1(y + 4)}" text-anchor="end" fill="#333333">${xmlEscape(fmtCompact(v))}</text>`,
    );
  }
  o.push(
    `<text transform="translate(14 ${r1(top + PH / 2)}) rotate(-90)" text-anchor="middle" fill="#333333">${UNIT_TITLE[spec.unit]}</text>`,
  );

  // x axis
  const { ticks: xTicks, clock } = timeTicks(xMax);
  for (const v of xTicks) {
    const x = r1(xs(v));
    o.push(
      `<line x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 4}" stroke="#333333" stroke-width="1"/>`,
    );
    o.push(
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle" fill="#333333">${xmlEscape(fmtTime(v, clock))}</text>`,
    );
  }
  o.push(
    `<text x="${ML + PW / 2}" y="${bottom + 34}" text-anchor="middle" fill="#333333">${clock ? 'minutes:seconds' : 'seconds'} from the start of traffic</text>`,
  );

  // stages: boundaries and labels
  const bounds = new Set<number>();
  for (const s of stages) {
    if (s.fromS > 0) bounds.add(s.fromS);
    if (s.toS < xMax) bounds.add(s.toS);
  }
  for (const b of [...bounds].sort((a, c) => a - c)) {
    const x = r1(xs(b));
    o.push(
      `<line class="stage" x1="${x}" x2="${x}" y1="${8}" y2="${bottom}" stroke="#777777" stroke-width="1" stroke-dasharray="3 3"/>`,
    );
  }
  for (const s of stages) {
    const x0 = xs(s.fromS);
    const x1 = xs(s.toS);
    const text = clip(s.label, x1 - x0 - 4);
    if (text)
      o.push(
        `<text class="stage-label" x="${r1((x0 + x1) / 2)}" y="${8 + 11}" text-anchor="middle" fill="#555555" font-style="italic">${xmlEscape(text)}</text>`,
      );
  }

  // band labels
  for (const { b, text, x, row } of bandLabels) {
    const y = 8 + stageRow + row * BAND_ROW;
    const c = BAND_COLORS[b.service] ?? '#555555';
    o.push(
      `<rect x="${r1(x)}" y="${y + 2}" width="10" height="10" fill="${c}" fill-opacity="0.35" stroke="${c}"/>`,
    );
    o.push(
      `<text class="band-label" x="${r1(x + 14)}" y="${y + 11}" fill="#222222">${xmlEscape(text)}</text>`,
    );
  }

  // plot frame
  o.push(
    `<rect x="${ML}" y="${top}" width="${PW}" height="${PH}" fill="none" stroke="#999999" stroke-width="1"/>`,
  );

  // lines: one path per run of consecutive samples; a lone sample is a dot
  for (const l of spec.lines) {
    const segs: string[] = [];
    const dots: [number, number][] = [];
    let cur: [number, number][] = [];
    const flush = () => {
      if (cur.length === 1) dots.push(cur[0]!);
      else if (cur.length > 1)
        segs.push(cur.map(([x, y], i) => `${i ? 'L' : 'M'}${r1(x)} ${r1(y)}`).join(''));
      cur = [];
    };
    for (let i = 0; i < t.length; i++) {
      const v = l.values[i];
      const ti = t[i];
      if (finite(v) && finite(ti)) cur.push([xs(ti), ys(v)]);
      else flush();
    }
    flush();
    if (!segs.length && !dots.length) continue;
    const dash = l.dash ? ` stroke-dasharray="${l.dash}"` : '';
    o.push(`<g class="line"><title>${xmlEscape(l.label)}</title>`);
    if (segs.length)
      o.push(
        `<path d="${segs.join('')}" fill="none" stroke="${l.color}" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"${dash}/>`,
      );
    for (const [x, y] of dots)
      o.push(`<circle cx="${r1(x)}" cy="${r1(y)}" r="2.2" fill="${l.color}"/>`);
    o.push('</g>');
  }

  if (!any) {
    o.push(
      `<text class="no-data" x="${ML + PW / 2}" y="${r1(top + PH / 2 - 4)}" text-anchor="middle" font-size="16" fill="#666666">no data</text>`,
    );
    o.push(
      `<text x="${ML + PW / 2}" y="${r1(top + PH / 2 + 16)}" text-anchor="middle" fill="#666666">${xmlEscape(clip(`timeseries.json has no values for ${spec.expected.join(', ')}`, PW - 20))}</text>`,
    );
  }

  // legend
  for (const { l, text, x, y, empty } of legend) {
    const dash = l.dash ? ` stroke-dasharray="${l.dash}"` : '';
    o.push(
      `<line x1="${r1(x)}" x2="${r1(x + 24)}" y1="${y}" y2="${y}" stroke="${l.color}" stroke-width="2.5"${dash}/>`,
    );
    o.push(
      `<text class="legend" x="${r1(x + 30)}" y="${y + 4}" fill="${empty ? '#888888' : '#222222'}">${xmlEscape(text)}</text>`,
    );
  }
  o.push('</svg>');
  return o.join('\n');
}
