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
import { mdText } from '../harness/report/markdown.ts';
import {
  REPORT_FILES,
  ReportDataError,
  renderFromDir,
  writeReports,
} from '../harness/report/index.ts';
import { runSummarySchema, timeSeriesSchema, type TimeSeries } from '../harness/summary.ts';
import { SCHEMA_FILE, summaryJsonSchemaText } from '../scripts/summary-schema.ts';
import { baseSummary, failingSummary, series, STAGES } from './support/report-fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const XSD = readFileSync(join(import.meta.dirname, 'fixtures', 'junit.xsd'), 'utf8');

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
    // "and N more" counts the breaks (I3: 12, 8 examples kept), not the kept examples.
    expect(md).toContain('and 7 more');
    expect(read(failDir, 'index.html')).toContain('and 4 more'); // 8 of 12 shown (up to 10)
    expect(md).toContain('| seed | `7` |');
    // order events and gateway declines (risk control), from the checkout's and the mocks' metrics
    for (const row of ['| `expired` | 212 |', '| `failover` | 57 |', '| `late_refunded` | 9 |'])
      expect(md).toContain(row);
    expect(md).toContain('| bank | `payments.create` | `card_velocity_exceeded` | 41 |');
    expect(md).toContain('| `lost` | 31 |'); // wallet notifications lost for good
    const html = read(failDir, 'index.html');
    expect(html).toMatch(/<section id="events">[\s\S]*<code>failover<\/code>[\s\S]*57/);
    expect(html).toMatch(/<code>card_velocity_exceeded<\/code><\/td><td[^>]*>41/);
    expect(read(passDir, 'summary.md')).toContain('The gateways declined nothing.');
    // text that would be Markdown or HTML is escaped
    expect(md).toContain('outage \\<all operations\\>');
    expect(md).not.toContain('\u0007');

    // the cascade: its story, one row per onset in time order; a summary without one says so
    const story = failingSummary().cascade!.story;
    expect(story).toMatch(/^bank errors 80% at 6 s -> .* -> wallet errors 100% at 12 s$/);
    expect(md).toContain(`### Cascade\n\n**${mdText(story)}**`);
    expect(md).toContain('| 1 | bank error rate | 6 s | +0 s | 0% | 5% | 80% | +80% |');
    expect(md).toMatch(/\| 3 \| wallet error rate \| 12 s \| \+6 s \|/);
    expect(md).toContain('| end to end | x1.54 | 3,700 payment gateway calls / 2,400 pay clicks |');
    expect(read(passDir, 'summary.md')).toContain(
      '### Cascade\n\nNot recorded (a summary from before the cascade timeline).',
    );

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
    // the cascade section, and charts of the hardened checkout's internals
    const cascade = html.slice(html.indexOf('<section id="cascade">'));
    expect(cascade.slice(0, cascade.indexOf('</section>'))).toContain(
      `<strong>${xmlEscape(failingSummary().cascade!.story)}</strong>`,
    );
    expect(cascade).toMatch(/^[^]*?<td>bank error rate<\/td><td class="num">6 s<\/td>/);
    expect(CHART_DEFS.map((d) => d.id)).toEqual(
      expect.arrayContaining(['retries', 'breakers', 'shed']),
    );
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
