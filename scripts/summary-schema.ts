// Generates docs/summary.schema.json, the JSON Schema of a run's summary.json,
// from `runSummarySchema` (harness/summary.ts) with zod's z.toJSONSchema, and
// formats it the way prettier formats the repository (so `prettier --check .`
// stays clean).
//
//   node bin/run-ts.js scripts/summary-schema.ts           write docs/summary.schema.json
//   node bin/run-ts.js scripts/summary-schema.ts --check   exit 1 if the file is out of date
//
// test/report.test.ts fails when the committed file differs from what this
// generates, so a change to the summary format cannot leave the schema behind.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as prettier from 'prettier';
import { z } from 'zod';
import { SUMMARY_SCHEMA_VERSION, runSummarySchema } from '../harness/summary.ts';
import { PROJECT_ROOT } from '../harness/tools.ts';

export const SCHEMA_FILE = join(PROJECT_ROOT, 'docs', 'summary.schema.json');

/** The JSON Schema (draft 2020-12) of summary.json, as an object. */
export function summaryJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(runSummarySchema, { target: 'draft-2020-12' });
  const { $schema, ...rest } = generated as Record<string, unknown>;
  return {
    $schema,
    title: 'flashcrowd run summary (summary.json)',
    description: `The summary of one flashcrowd run, schemaVersion ${SUMMARY_SCHEMA_VERSION}. Generated from runSummarySchema in harness/summary.ts by scripts/summary-schema.ts; do not edit by hand. Fields are described in docs/REPORTS.md.`,
    ...rest,
  };
}

/** The file's text: the schema, formatted with the repository's prettier settings. */
export async function summaryJsonSchemaText(): Promise<string> {
  const options = (await prettier.resolveConfig(SCHEMA_FILE)) ?? {};
  return prettier.format(JSON.stringify(summaryJsonSchema(), null, 2), {
    ...options,
    filepath: SCHEMA_FILE,
  });
}

async function main(argv: string[]): Promise<number> {
  const text = await summaryJsonSchemaText();
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(SCHEMA_FILE, 'utf8');
    } catch {
      /* missing: out of date */
    }
    if (current === text) {
      console.log(`${SCHEMA_FILE} is up to date`);
      return 0;
    }
    console.error(
      `${SCHEMA_FILE} is out of date: run node bin/run-ts.js scripts/summary-schema.ts`,
    );
    return 1;
  }
  writeFileSync(SCHEMA_FILE, text);
  console.log(`wrote ${SCHEMA_FILE}`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = await main(process.argv.slice(2));
