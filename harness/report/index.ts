// The run directory's files: `writeReports` validates a run's summary and time
// series, renders them and writes the five files; `renderFromDir` re-renders
// the Markdown, JUnit and HTML reports from a run directory's summary.json and
// timeseries.json (after a renderer changed, or to rebuild a deleted file).
// docs/REPORTS.md describes every file.
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { issuesToErrors } from '../../mock-gateways/chaos/profile.ts';
import { UsageError } from '../errors.ts';
import {
  runSummarySchema,
  timeSeriesSchema,
  type RunSummary,
  type TimeSeries,
} from '../summary.ts';
import { renderHtml } from './html.ts';
import { renderJUnit } from './junit.ts';
import { renderMarkdown } from './markdown.ts';

/** The files of a run directory, by kind. */
export const REPORT_FILES = {
  summary: 'summary.json',
  markdown: 'summary.md',
  junit: 'junit.xml',
  timeseries: 'timeseries.json',
  html: 'index.html',
} as const;
export type ReportKind = keyof typeof REPORT_FILES;

export interface FieldError {
  field: string;
  reason: string;
}

/** The data handed to the renderers does not match its schema: nothing was written. */
export class ReportDataError extends Error {
  constructor(
    readonly what: string,
    readonly errors: FieldError[],
  ) {
    super(`invalid ${what}:\n${errors.map((x) => `  ${x.field}: ${x.reason}`).join('\n')}`);
    this.name = 'ReportDataError';
  }
}

function parseWith<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new ReportDataError(what, issuesToErrors(r.error.issues, `(${what})`));
  return r.data;
}

/** A run summary checked against `runSummarySchema`; a ReportDataError names each bad field. */
export function checkSummary(raw: unknown): RunSummary {
  return parseWith(runSummarySchema, raw, 'run summary');
}

/**
 * A time series checked against `timeSeriesSchema`, plus what the schema cannot
 * say: every series has one value per entry of `t`.
 */
export function checkTimeSeries(raw: unknown): TimeSeries {
  const ts = parseWith(timeSeriesSchema, raw, 'time series');
  const errors: FieldError[] = [];
  for (const [key, values] of Object.entries(ts.series))
    if (values.length !== ts.t.length)
      errors.push({
        field: `series.${key}`,
        reason: `${values.length} values for ${ts.t.length} timestamps in t`,
      });
  if (errors.length) throw new ReportDataError('time series', errors);
  return ts;
}

/**
 * timeseries.json as text: the structure indented, each array on one line (a
 * 20-minute run stays diffable without one line per sample).
 */
export function stringifyTimeSeries(ts: TimeSeries): string {
  const j = (v: unknown) => JSON.stringify(v);
  const series = Object.entries(ts.series)
    .map(([k, v]) => `    ${j(k)}: ${j(v)}`)
    .join(',\n');
  const list = (xs: unknown[]) =>
    xs.length ? `[\n${xs.map((x) => `    ${j(x)}`).join(',\n')}\n  ]` : '[]';
  return [
    '{',
    `  "schemaVersion": ${j(ts.schemaVersion)},`,
    `  "startedAtMs": ${j(ts.startedAtMs)},`,
    `  "intervalS": ${j(ts.intervalS)},`,
    `  "t": ${j(ts.t)},`,
    `  "series": ${series ? `{\n${series}\n  }` : '{}'},`,
    `  "bands": ${list(ts.bands)},`,
    `  "stages": ${list(ts.stages)}`,
    '}',
    '',
  ].join('\n');
}

function renderAll(s: RunSummary, ts: TimeSeries) {
  return {
    markdown: renderMarkdown(s),
    junit: renderJUnit(s),
    html: renderHtml(s, ts),
  };
}

export interface WriteReportsOptions {
  /**
   * A file to append summary.md to. Default: $GITHUB_STEP_SUMMARY when set (the
   * job summary of a GitHub Actions step); null: never append.
   */
  stepSummary?: string | null;
}

async function appendStepSummary(file: string, markdown: string): Promise<void> {
  let sep = '';
  try {
    if ((await stat(file)).size > 0) sep = '\n';
  } catch {
    /* not there yet: appendFile creates it */
  }
  await appendFile(file, sep + markdown);
}

/**
 * Validate, render and write the run directory: summary.json, summary.md,
 * junit.xml, timeseries.json and index.html. Both inputs are checked against
 * their schemas first and every report is rendered before the first write, so
 * a bug throws (ReportDataError naming the fields) instead of leaving a broken
 * report. summary.json gets `files` filled in. Returns the files written, by
 * kind, relative to `dir`.
 */
export async function writeReports(
  dir: string,
  summary: RunSummary,
  series: TimeSeries,
  opts: WriteReportsOptions = {},
): Promise<Record<ReportKind, string>> {
  const checked = checkSummary(summary);
  const ts = checkTimeSeries(series);
  const files: Record<ReportKind, string> = { ...REPORT_FILES };
  const summaryText = `${JSON.stringify({ ...checked, files: { ...checked.files, ...files } }, null, 2)}\n`;
  const seriesText = stringifyTimeSeries(ts);
  // Render from the JSON as written, so `renderFromDir` reproduces these files byte for byte.
  const out = renderAll(JSON.parse(summaryText), JSON.parse(seriesText));
  await mkdir(dir, { recursive: true });
  await Promise.all([
    writeFile(join(dir, files.summary), summaryText),
    writeFile(join(dir, files.timeseries), seriesText),
    writeFile(join(dir, files.markdown), out.markdown),
    writeFile(join(dir, files.junit), out.junit),
    writeFile(join(dir, files.html), out.html),
  ]);
  const step = opts.stepSummary === undefined ? process.env.GITHUB_STEP_SUMMARY : opts.stepSummary;
  if (step) await appendStepSummary(step, out.markdown);
  return files;
}

async function readJson(dir: string, name: string): Promise<unknown> {
  const file = join(dir, name);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is ${dir} a flashcrowd run directory?)`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Re-render summary.md, junit.xml and index.html of a run directory from its
 * summary.json and timeseries.json (those two are read, never written). Bad or
 * missing files are a UsageError naming the file and the fields. Returns the
 * files written, by kind.
 */
export async function renderFromDir(
  dir: string,
  opts: WriteReportsOptions = {},
): Promise<Record<'markdown' | 'junit' | 'html', string>> {
  // One after the other: a folder missing both is reported as missing its summary, every time.
  const rawSummary = await readJson(dir, REPORT_FILES.summary);
  const rawSeries = await readJson(dir, REPORT_FILES.timeseries);
  let s: RunSummary;
  let ts: TimeSeries;
  try {
    s = checkSummary(rawSummary);
    ts = checkTimeSeries(rawSeries);
  } catch (err) {
    if (err instanceof ReportDataError)
      throw new UsageError(
        `${join(dir, err.what === 'run summary' ? REPORT_FILES.summary : REPORT_FILES.timeseries)}: ${err.message}`,
      );
    throw err;
  }
  const out = renderAll(s, ts);
  const files = {
    markdown: REPORT_FILES.markdown,
    junit: REPORT_FILES.junit,
    html: REPORT_FILES.html,
  };
  await Promise.all([
    writeFile(join(dir, files.markdown), out.markdown),
    writeFile(join(dir, files.junit), out.junit),
    writeFile(join(dir, files.html), out.html),
  ]);
  // Only when asked: a re-render is not a CI step of its own by default.
  if (opts.stepSummary) await appendStepSummary(opts.stepSummary, out.markdown);
  return files;
}

export { renderHtml } from './html.ts';
export { renderJUnit } from './junit.ts';
export { renderMarkdown } from './markdown.ts';
