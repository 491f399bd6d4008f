// The run report renderers: writeReports writes the five files of a run
// directory from a realistic passing and failing run; junit.xml validates
// against a JUnit XSD with libxml2 (xmllint-wasm); summary.md names what
// failed; index.html is self-contained, well-formed and has its charts;
// renderFromDir reproduces the files; $GITHUB_STEP_SUMMARY gets the Markdown;
// bad input is rejected naming the field; docs/summary.schema.json is current.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import { UsageError } from '../harness/errors.ts';
import { CHART_DEFS, parseSeriesKey } from '../harness/report/charts.ts';
import { fmtMetric, xmlEscape } from '../harness/report/format.ts';
import {
  REPORT_FILES,
  ReportDataError,
  renderFromDir,
  writeReports,
} from '../harness/report/index.ts';
import {
  runSummarySchema,
  seriesKey,
  timeSeriesSchema,
  type RunSummary,
  type TimeSeries,
} from '../harness/summary.ts';
import { SCHEMA_FILE, summaryJsonSchemaText } from '../scripts/summary-schema.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const XSD = readFileSync(join(import.meta.dirname, 'fixtures', 'junit.xsd'), 'utf8');

// ---------------------------------------------------------------- fixtures

const INVARIANTS: [string, string][] = [
  ['I1', 'sold + reserved + available = initial stock'],
  ['I2', 'no oversell: available never below 0'],
  ['I3', 'after quiescence every reservation is sold or released (no stock-lock leak)'],
  ['I4', 'at most the per-user limit of paid units per (user, SKU)'],
  ['I5', 'at most one capture per order; captured amount equals the order amount'],
  ['I6', 'every capture maps to one paid order or a refund'],
  ['I7', 'every paid order has exactly one capture'],
  ['I8', 'a coupon is used at most once; a failed or expired order returns it'],
  ['I9', 'a payment landing after its order ended never revives stock'],
  ['I10', 'the same idempotency key replays the same answer'],
  ['I11', 'the statements and the orders reconcile: zero overage, zero shortage'],
];

const N = 30; // seconds of samples
const STAGES = [
  { label: 'baseline', fromS: 0, toS: 8 },
  { label: 'host-opens-link', fromS: 8, toS: 18 },
  { label: 'decay', fromS: 18, toS: 30 },
];

function baseSummary(): RunSummary {
  return {
    schemaVersion: 1,
    runId: '20250618-120000-livestream-spike-42',
    tool: { name: 'flashcrowd', version: '0.1.0' },
    preset: {
      name: 'livestream-spike',
      file: 'scenarios/presets/livestream-spike.json',
      description: 'A host opens the link: 40x baseline within a second, then decay. No faults.',
      variant: 'hardened',
    },
    params: { seed: 42, timeScale: 0.025, loadScale: 0.01, target: 'embedded' },
    startedAt: '2025-06-18T12:00:00.000Z',
    endedAt: '2025-06-18T12:00:34.500Z',
    durations: { trafficS: 30, quiescenceS: 4.5, totalS: 34.5 },
    verdict: 'pass',
    exitCode: 0,
    checkout: {
      mode: 'hardened',
      features: { retries: true, breaker: true, failover: true, shedding: false, bulkhead: 'pay' },
      params: { payTimeoutMs: 800, retryBudget: 0.1, orderTtlS: 900 },
    },
    metrics: {
      'pay.failure_rate': 0.0042,
      'order.failure_rate': 0.001,
      'checkout.p99_ms': 412.6,
      'leaks.stock': 0,
      dropped_iterations: 0,
      'paid.total': 12345,
    },
    budgets: [
      {
        expr: 'pay.failure_rate<0.02',
        metric: 'pay.failure_rate',
        op: '<',
        threshold: 0.02,
        value: 0.0042,
        ok: true,
        source: 'preset',
      },
      {
        expr: 'checkout.p99_ms<800',
        metric: 'checkout.p99_ms',
        op: '<',
        threshold: 800,
        value: 412.6,
        ok: true,
        source: 'preset',
      },
      {
        expr: 'leaks.stock==0',
        metric: 'leaks.stock',
        op: '==',
        threshold: 0,
        value: 0,
        ok: true,
        source: 'preset',
      },
    ],
    invariants: INVARIANTS.map(([id, name]) => ({ id, name, ok: true, count: 0, examples: [] })),
    stock: [{ sku: 'sku-1', initial: 5000, available: 1200, reserved: 0, sold: 3800 }],
    failures: [
      { step: 'pay', reason: 'card_declined', count: 31 },
      { step: 'order', reason: 'sold_out', count: 7 },
    ],
    chaos: { bands: [], injected: [] },
    quiescence: { settled: true, waitedS: 4.5 },
    warnings: [],
    files: {},
  };
}

/** A failing run: failed budgets (one with no data), broken and undecided invariants, faults. */
function failingSummary(): RunSummary {
  const s = baseSummary();
  s.runId = '20250618-130000-retry-storm-7';
  s.preset = {
    name: 'retry-storm',
    file: 'scenarios/presets/retry-storm.json',
    description: 'Bank brownout & wallet outage; naive retries multiply the load.',
    variant: 'naive',
  };
  s.params.seed = 7;
  s.verdict = 'fail';
  s.exitCode = 1;
  s.checkout.mode = 'naive';
  s.metrics = {
    'pay.failure_rate': 0.137,
    'checkout.p99_ms': 2140,
    'leaks.stock': 12,
    dropped_iterations: null,
    'paid.total': 8123,
  };
  s.budgets = [
    {
      expr: 'pay.failure_rate<0.02',
      metric: 'pay.failure_rate',
      op: '<',
      threshold: 0.02,
      value: 0.137,
      ok: false,
      source: 'preset',
    },
    {
      expr: 'leaks.stock==0',
      metric: 'leaks.stock',
      op: '==',
      threshold: 0,
      value: 12,
      ok: false,
      source: 'variant',
      note: 'stock held by payments stuck in processing',
    },
    {
      expr: 'dropped_iterations==0',
      metric: 'dropped_iterations',
      op: '==',
      threshold: 0,
      value: null,
      ok: false,
      source: 'cli',
    },
    {
      expr: 'order.p99_ms<=1500',
      metric: 'order.p99_ms',
      op: '<=',
      threshold: 1500,
      value: 640,
      ok: true,
      source: 'preset',
    },
  ];
  s.invariants = INVARIANTS.map(([id, name]) => {
    if (id === 'I3')
      return {
        id,
        name,
        ok: false,
        count: 12,
        examples: Array.from({ length: 8 }, (_, i) => `ord-sku-1-${1000 + i}`),
        note: 'reservations of orders still processing after quiescence',
      };
    if (id === 'I5')
      return {
        id,
        name,
        ok: false,
        count: 2,
        examples: ['ord-<sku-2>&"9"', "ord-sku-2-'10'"],
      };
    if (id === 'I10')
      return {
        id,
        name,
        ok: null,
        count: 0,
        examples: [],
        note: 'no request reused an idempotency key',
      };
    return { id, name, ok: true, count: 0, examples: [] };
  });
  s.stock = [
    { sku: 'sku-1', initial: 3000, available: 0, reserved: 12, sold: 2988 },
    { sku: 'sku-2', initial: 500, available: 40, reserved: 0, sold: 460 },
  ];
  s.failures = [
    { step: 'pay', reason: 'upstream_timeout', count: 1840 },
    { step: 'pay', reason: 'upstream_unavailable', count: 920 },
    { step: 'order', reason: 'sold_out', count: 3010 },
  ];
  s.chaos = {
    bands: [
      { service: 'bank', label: 'brownout p99 x4 & 20% 503', fromS: 6, toS: 16 },
      { service: 'wallet', label: 'outage <all operations>', fromS: 12, toS: null },
    ],
    injected: [
      { service: 'bank', operation: 'payments.create', kind: 'latency', count: 5120 },
      { service: 'bank', operation: 'payments.create', kind: 'http_503', count: 1022 },
      { service: 'wallet', operation: 'trades.create', kind: 'outage', count: 2210 },
    ],
  };
  s.quiescence = { settled: false, waitedS: 30, note: '12 orders still processing' };
  s.warnings = [
    'scrape of http://127.0.0.1:40123/metrics failed twice: ECONNRESET',
    'k6 exited with code 99 (thresholds crossed) \u0007 ]]> <!-- -->',
  ];
  return s;
}

function series(fail: boolean): TimeSeries {
  const t = Array.from({ length: N }, (_, i) => i);
  const shape = t.map((i) => (i < 8 ? 20 : i < 18 ? 800 - (i - 8) * 50 : 300 - (i - 18) * 10));
  const out: Record<string, (number | null)[]> = {};
  const put = (name: string, labels: Record<string, string>, f: (i: number) => number | null) =>
    (out[seriesKey(name, labels)] = t.map(f));
  put('arrivals_per_s', {}, (i) => shape[i]!);
  put('dropped_per_s', {}, (i) => (fail && i >= 9 && i < 14 ? 35 : 0));
  put('requests_per_s', { route: 'POST /orders' }, (i) => shape[i]! * 0.7);
  put('requests_per_s', { route: 'POST /orders/:id/pay' }, (i) => shape[i]! * 0.6);
  put('paid_per_s', {}, (i) => shape[i]! * (fail && i >= 6 ? 0.2 : 0.55));
  // p99 with gaps: no sample in seconds 10-12, 20 and 22 (21 stands alone)
  put('latency_ms', { q: '0.5' }, (i) => 40 + (i % 5));
  put('latency_ms', { q: '0.99' }, (i) =>
    (i >= 10 && i <= 12) || i === 20 || i === 22 ? null : fail ? 900 + i * 40 : 300 + i * 3,
  );
  put('failures_per_s', { reason: 'sold_out' }, (i) => (i > 20 ? 60 : 0));
  put('failures_per_s', { reason: 'upstream_timeout' }, (i) => (fail && i >= 6 ? 80 : 0));
  for (const sku of ['sku-1', 'sku-2']) {
    const init = sku === 'sku-1' ? 3000 : 500;
    const sold = (i: number) => Math.min(init, Math.round((init / N) * i * 1.1));
    put('stock_sold', { sku }, sold);
    put('stock_reserved', { sku }, (i) => (i === 0 ? 0 : 12));
    put('stock_available', { sku }, (i) => Math.max(0, init - sold(i) - (i === 0 ? 0 : 12)));
  }
  put('dep_calls_per_s', { dependency: 'bank', outcome: 'ok' }, (i) => shape[i]! * 0.5);
  put('dep_calls_per_s', { dependency: 'bank', outcome: 'upstream_unavailable' }, (i) =>
    fail && i >= 6 && i < 16 ? 40 : 0,
  );
  put('dep_calls_per_s', { dependency: 'wallet', outcome: 'upstream_timeout' }, (i) =>
    fail && i >= 12 ? 55 : 0,
  );
  if (!fail) {
    // the failing run has no dependency latency at all: its chart must say "no data"
    put('dep_latency_ms', { dependency: 'bank', q: '0.99' }, (i) => 120 + i);
    put('dep_latency_ms', { dependency: 'bank', q: '0.5' }, () => 30);
    put('dep_latency_ms', { dependency: 'wallet', q: '0.99' }, () => null); // present, all null
  }
  return {
    schemaVersion: 1,
    startedAtMs: Date.parse('2025-06-18T12:00:00.000Z'),
    intervalS: 1,
    t,
    series: out,
    bands: fail ? failingSummary().chaos.bands : [],
    stages: STAGES,
  };
}

// ---------------------------------------------------------------- helpers

interface ParsedCase {
  suite: number;
  name: string;
  failure: boolean;
  skipped: boolean;
}

/** The test cases of our junit.xml (attribute values as escaped in the file). */
function junitCases(xml: string): ParsedCase[] {
  const out: ParsedCase[] = [];
  const suites = xml.split('<testsuite ').slice(1);
  suites.forEach((body, suite) => {
    for (const m of body.matchAll(/<testcase name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g))
      out.push({
        suite,
        name: m[1]!,
        failure: (m[3] ?? '').includes('<failure '),
        skipped: (m[3] ?? '').includes('<skipped '),
      });
  });
  return out;
}

function suiteAttrs(xml: string): Record<string, string>[] {
  return [...xml.matchAll(/<testsuite ([^>]*)>/g)].map((m) =>
    Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!])),
  );
}

async function validateJUnit(xml: string) {
  return validateXML({ xml: [{ fileName: 'junit.xml', contents: xml }], schema: [XSD] });
}

const read = (dir: string, f: string) => readFileSync(join(dir, f), 'utf8');

// ---------------------------------------------------------------- tests

describe('writeReports', () => {
  const passDir = join(tmp, 'pass');
  const failDir = join(tmp, 'fail');

  it('writes the five files and returns their names', async () => {
    const files = await writeReports(passDir, baseSummary(), series(false), { stepSummary: null });
    expect(files).toEqual(REPORT_FILES);
    expect(readdirSync(passDir).sort()).toEqual(Object.values(REPORT_FILES).sort());
    await writeReports(failDir, failingSummary(), series(true), { stepSummary: null });
    expect(readdirSync(failDir).sort()).toEqual(Object.values(REPORT_FILES).sort());
  });

  it('summary.json parses with runSummarySchema and lists the files; timeseries.json round-trips', () => {
    const s = runSummarySchema.parse(JSON.parse(read(failDir, 'summary.json')));
    expect(s.files).toEqual(REPORT_FILES);
    expect(s.verdict).toBe('fail');
    const { files: _files, ...rest } = s;
    const { files: _f2, ...want } = failingSummary();
    expect(rest).toEqual(want);
    const ts = timeSeriesSchema.parse(JSON.parse(read(failDir, 'timeseries.json')));
    expect(ts).toEqual(series(true));
  });

  it('junit.xml validates against the JUnit XSD, and the XSD rejects a broken document', async () => {
    for (const dir of [passDir, failDir]) {
      const r = await validateJUnit(read(dir, 'junit.xml'));
      expect(r.errors.map((x) => x.rawMessage)).toEqual([]);
      expect(r.valid).toBe(true);
    }
    // the validator really validates: drop a required attribute and it complains
    const broken = read(failDir, 'junit.xml').replace(/ hostname="[^"]*"/, '');
    const r = await validateJUnit(broken);
    expect(r.valid).toBe(false);
    expect(r.errors.map((x) => x.message).join('\n')).toMatch(/hostname/);
  });

  it('junit.xml has one testcase per budget and per invariant, failures and skips where expected', () => {
    const s = failingSummary();
    const xml = read(failDir, 'junit.xml');
    const cases = junitCases(xml);
    const budgets = cases.filter((c) => c.suite === 0);
    const invariants = cases.filter((c) => c.suite === 1);
    expect(budgets.map((c) => c.name)).toEqual(s.budgets.map((b) => xmlEscape(b.expr)));
    expect(budgets.filter((c) => c.failure).map((c) => c.name)).toEqual([
      xmlEscape('pay.failure_rate<0.02'),
      'leaks.stock==0',
      'dropped_iterations==0',
    ]);
    expect(invariants).toHaveLength(11);
    expect(invariants.filter((c) => c.failure).map((c) => c.name.split(' ')[0])).toEqual([
      'I3',
      'I5',
    ]);
    expect(invariants.filter((c) => c.skipped).map((c) => c.name.split(' ')[0])).toEqual(['I10']);

    const attrs = suiteAttrs(xml);
    expect(attrs).toHaveLength(2);
    expect(attrs[0]).toMatchObject({ tests: '4', failures: '3', errors: '0', skipped: '0' });
    expect(attrs[1]).toMatchObject({ tests: '11', failures: '2', errors: '0', skipped: '1' });
    expect(attrs[0]!.name).toContain('retry-storm (naive)');
    expect(attrs[0]!.timestamp).toBe('2025-06-18T12:00:00');
    expect(attrs[0]!.time).toBe('34.500');
    expect(xml).toContain('<property name="seed" value="7"/>');
    expect(xml).toContain('<property name="timeScale" value="0.025"/>');
    expect(xml).toContain('<property name="preset" value="retry-storm"/>');
    // the null-valued budget says why it failed
    expect(xml).toMatch(/dropped_iterations had no samples/);
    // special characters arrive escaped, control characters replaced
    expect(xml).toContain('ord-&lt;sku-2&gt;&amp;&quot;9&quot;');
    expect(xml).not.toContain('\u0007');

    const pass = junitCases(read(passDir, 'junit.xml'));
    expect(pass).toHaveLength(3 + 11);
    expect(pass.some((c) => c.failure || c.skipped)).toBe(false);
  });

  it('summary.md shows the verdict and names each failed budget and broken invariant', () => {
    const md = read(failDir, 'summary.md');
    expect(md.split('\n')[0]).toMatch(/^## ❌ FAIL: retry-storm \(naive\)$/);
    expect(md).toMatch(/3 of 4 budgets failed, 2 of 11 invariants broken, 1 undecided/);
    for (const b of failingSummary().budgets.filter((x) => !x.ok)) {
      const row = md.split('\n').find((l) => l.startsWith(`| \`${b.expr}\``));
      expect(row, b.expr).toBeDefined();
      expect(row).toContain('**FAIL**');
    }
    for (const id of ['I3', 'I5']) {
      const row = md.split('\n').find((l) => l.startsWith(`| ${id} |`));
      expect(row).toContain('**BROKEN**');
    }
    expect(md.split('\n').find((l) => l.startsWith('| I10 |'))).toContain('undecided');
    // formatted numbers: a rate as %, a count with separators, no data spelled out
    expect(md).toContain('| `pay.failure_rate<0.02` | 13.7% |');
    expect(md).toContain('| pay | `upstream_timeout` | 1,840 |');
    expect(md).toMatch(/\| `dropped_iterations==0` \| _no data_ \|/);
    expect(md).toContain('and 3 more'); // I3 has 8 examples, 5 shown
    expect(md).toContain('| seed | `7` |');
    // text that would be Markdown or HTML is escaped
    expect(md).toContain('outage \\<all operations\\>');
    expect(md).not.toContain('\u0007');

    const ok = read(passDir, 'summary.md');
    expect(ok.split('\n')[0]).toBe('## ✅ PASS: livestream-spike (hardened)');
    expect(ok).toContain('0 of 3 budgets failed, 0 of 11 invariants broken');
  });

  it('index.html is self-contained and well-formed, with one SVG per chart and the fault bands', async () => {
    for (const [dir, fail] of [
      [passDir, false],
      [failDir, true],
    ] as const) {
      const html = read(dir, 'index.html');
      expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
      expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
      expect(html.match(/<svg/g)).toHaveLength(CHART_DEFS.length);
      for (const def of CHART_DEFS) expect(html).toContain(`id="chart-${def.id}"`);
      expect(html).toContain(fail ? '>FAIL</span>' : '>PASS</span>');
      // an XML parser (libxml2) accepts the whole page
      const r = await validateXML({
        xml: [{ fileName: 'index.html', contents: html }],
        normalization: 'format',
      });
      expect(r.errors.map((x) => x.rawMessage)).toEqual([]);
      expect(r.valid).toBe(true);
    }
    const html = read(failDir, 'index.html');
    expect(html).toContain('class="band-label"');
    expect(html).toContain(xmlEscape('bank: brownout p99 x4 & 20% 503'));
    expect(html).toContain(xmlEscape('wallet: outage <all operations>'));
    expect(html.match(/<rect class="band"/g)).toHaveLength(2 * CHART_DEFS.length);
    for (const st of STAGES) expect(html).toContain(`font-style="italic">${st.label}</text>`);
    // the p99 line has gaps: its path restarts (M) after each run of nulls, the lone sample is a dot
    const latency = html.slice(
      html.indexOf('id="chart-latency"'),
      html.indexOf('id="chart-failures"'),
    );
    const p99 = latency.slice(latency.indexOf('<title>p99</title>'));
    expect(p99.slice(0, p99.indexOf('</g>')).match(/M/g)).toHaveLength(3);
    expect(p99.slice(0, p99.indexOf('</g>'))).toContain('<circle');
    // an absent chart says so instead of failing
    const dep = html.slice(html.indexOf('id="chart-dep-latency"'));
    expect(dep.slice(0, dep.indexOf('</svg>'))).toContain('>no data</text>');
    // a series that is present but all null is listed as such
    expect(read(passDir, 'index.html')).toContain('wallet p99 (no data)');
    // tables: broken invariants and failed budgets are marked, examples escaped
    expect(html).toContain('<span class="tag fail">BROKEN</span>');
    expect(html).toContain('<code>ord-&lt;sku-2&gt;&amp;&quot;9&quot;</code>');
    expect(html).toContain('13.7%');
  });

  it('a run without a single sample still renders every chart, saying "no data"', async () => {
    const dir = join(tmp, 'empty');
    const ts: TimeSeries = { ...series(false), t: [], series: {}, stages: [], bands: [] };
    await writeReports(dir, baseSummary(), ts, { stepSummary: null });
    const html = read(dir, 'index.html');
    expect(html.match(/<svg/g)).toHaveLength(CHART_DEFS.length);
    expect(html.match(/>no data<\/text>/g)).toHaveLength(CHART_DEFS.length);
    const r = await validateXML({
      xml: [{ fileName: 'index.html', contents: html }],
      normalization: 'format',
    });
    expect(r.valid).toBe(true);
  });

  it('renderFromDir reproduces the same Markdown, JUnit and HTML files', async () => {
    const names = [REPORT_FILES.markdown, REPORT_FILES.junit, REPORT_FILES.html];
    const before = Object.fromEntries(names.map((f) => [f, read(failDir, f)]));
    for (const f of names) rmSync(join(failDir, f));
    const written = await renderFromDir(failDir);
    expect(Object.values(written).sort()).toEqual([...names].sort());
    for (const f of names) expect(read(failDir, f), f).toBe(before[f]);
  });

  it('appends summary.md to $GITHUB_STEP_SUMMARY when it is set', async () => {
    const step = join(tmp, 'step-summary.md');
    writeFileSync(step, '# earlier step\n');
    const old = process.env.GITHUB_STEP_SUMMARY;
    process.env.GITHUB_STEP_SUMMARY = step;
    try {
      await writeReports(join(tmp, 'gh'), failingSummary(), series(true));
    } finally {
      if (old === undefined) delete process.env.GITHUB_STEP_SUMMARY;
      else process.env.GITHUB_STEP_SUMMARY = old;
    }
    const md = read(join(tmp, 'gh'), 'summary.md');
    expect(readFileSync(step, 'utf8')).toBe(`# earlier step\n\n${md}`);
  });
});

describe('bad input', () => {
  it('a summary missing a field is rejected naming the field, and nothing is written', async () => {
    const s = failingSummary() as any;
    delete s.durations.totalS;
    const dir = join(tmp, 'bad-summary');
    const err = await writeReports(dir, s, series(true), { stepSummary: null }).catch((e) => e);
    expect(err).toBeInstanceOf(ReportDataError);
    expect(err.message).toMatch(/invalid run summary:\n {2}durations\.totalS: /);
    expect(existsSync(dir)).toBe(false);
  });

  it('a series whose length does not match t is rejected naming the series', async () => {
    const ts = series(true);
    ts.series['paid_per_s'] = ts.series['paid_per_s']!.slice(0, 5);
    const err = await writeReports(join(tmp, 'bad-series'), baseSummary(), ts, {
      stepSummary: null,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ReportDataError);
    expect(err.message).toContain('series.paid_per_s: 5 values for 30 timestamps in t');
  });

  it('renderFromDir names the file and the field of a bad summary.json, and a missing one', async () => {
    const dir = join(tmp, 'bad-dir');
    await writeReports(dir, baseSummary(), series(false), { stepSummary: null });
    const raw = JSON.parse(read(dir, 'summary.json'));
    raw.verdict = 'maybe';
    writeFileSync(join(dir, 'summary.json'), JSON.stringify(raw));
    const err = await renderFromDir(dir).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain(join(dir, 'summary.json'));
    expect(err.message).toMatch(/verdict: /);
    const missing = await renderFromDir(join(tmp, 'nowhere')).catch((e) => e);
    expect(missing).toBeInstanceOf(UsageError);
    expect(missing.message).toMatch(/cannot read .*summary\.json: ENOENT/);
  });
});

describe('summary JSON Schema and formatting', () => {
  it('docs/summary.schema.json is what scripts/summary-schema.ts generates now', async () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(await summaryJsonSchemaText());
  });

  it('numbers read as rates, milliseconds, seconds and counts by metric name', () => {
    expect(fmtMetric('pay.failure_rate', 0.0312)).toBe('3.12%');
    expect(fmtMetric('pay.failure_rate', 0.00042)).toBe('0.042%');
    expect(fmtMetric('checkout.p99_ms', 1234.4)).toBe('1,234 ms');
    expect(fmtMetric('quiescence_s', 252)).toBe('4 min 12 s');
    expect(fmtMetric('leaks.stock', 1234567)).toBe('1,234,567');
    expect(fmtMetric('arrivals_per_s', 812.5)).toBe('813/s');
    expect(fmtMetric('dropped_iterations', null)).toBe('no data');
    expect(parseSeriesKey('dep_latency_ms{dependency=bank,q=0.99}')).toEqual({
      name: 'dep_latency_ms',
      labels: { dependency: 'bank', q: '0.99' },
    });
  });
});
