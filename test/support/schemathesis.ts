// schemathesis (installed by `node scripts/setup.mjs --for-tests` into
// .tools/venv) run against a service's GET /openapi.json with flashcrowd's own
// checks (test/fuzz/flashcrowd_checks.py), its JSON report read back.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
export const SCHEMATHESIS = join(ROOT, '.tools', 'venv', 'bin', 'schemathesis');
const HOOKS_DIR = join(ROOT, 'test', 'fuzz');

export function schemathesisProblem(): string | undefined {
  return existsSync(SCHEMATHESIS)
    ? undefined
    : `${SCHEMATHESIS} not found: run \`node scripts/setup.mjs --for-tests\` (it installs schemathesis into .tools/venv)`;
}

/**
 * The built-in checks left out, each for its reason:
 * - not_a_server_error: flashcrowd_checks.no_uninjected_server_error replaces it
 *   (a 5xx the chaos engine injected, with X-Flashcrowd-Fault, is no bug);
 * - positive_data_acceptance: constraints JSON Schema cannot state (a card number's
 *   Luhn check, an Idempotency-Key already used with another body, a minMs above
 *   maxMs) make schema-valid requests rightly refused.
 */
export const EXCLUDED_CHECKS = ['not_a_server_error', 'positive_data_acceptance'];

export interface FuzzReport {
  exit_code: number;
  running_time: number;
  operations: { selected: number; tested: number; errored: number };
  test_cases: {
    generated: number;
    with_failures: number;
    unique_failures: number;
    errored: number;
  };
  failures: unknown[];
  errors: unknown[];
}

export interface FuzzRun {
  report: FuzzReport;
  /** schemathesis's own text output (its failures, how to reproduce them). */
  output: string;
}

export async function fuzz(
  openapiUrl: string,
  o: {
    seed: number;
    maxExamples: number;
    /** Bearer token sent on every request (none: the run without the token). */
    token?: string;
    /** Only the admin routes (/__*, /admin/*). */
    adminOnly?: boolean;
    phases?: string[];
  },
): Promise<FuzzRun> {
  const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-fuzz-'));
  const reportPath = join(dir, 'report.json');
  const args = [
    'run',
    openapiUrl,
    '--checks',
    'all',
    '--exclude-checks',
    EXCLUDED_CHECKS.join(','),
    '--max-examples',
    String(o.maxExamples),
    '--seed',
    String(o.seed),
    '--workers',
    '1',
    '--request-timeout',
    '10',
    '--report',
    'json',
    '--report-json-path',
    reportPath,
    '--output-sanitize',
    'false',
    ...(o.token ? ['--header', `Authorization: Bearer ${o.token}`] : []),
    ...(o.adminOnly ? ['--include-path-regex', '^/(__|admin/)'] : []),
    ...(o.phases ? ['--phases', o.phases.join(',')] : []),
  ];
  const child = spawn(SCHEMATHESIS, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PYTHONPATH: HOOKS_DIR,
      SCHEMATHESIS_HOOKS: 'flashcrowd_checks',
      FLASHCROWD_FUZZ_NO_TOKEN: o.token ? '0' : '1',
      NO_COLOR: '1',
    },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  await once(child, 'exit');
  try {
    if (!existsSync(reportPath)) throw new Error(`schemathesis wrote no report:\n${output}`);
    return { report: JSON.parse(readFileSync(reportPath, 'utf8')) as FuzzReport, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The names of the checks that failed, from schemathesis's text output ("ST901 ... `name`"). */
export function failedChecks(output: string): string[] {
  const names = new Set<string>();
  for (const m of output.matchAll(/Custom check failed: `([a-z_]+)`/g)) names.add(m[1]!);
  for (const m of output.matchAll(/^ {2}❌ (ST\d+ [^:]+):/gm)) names.add(m[1]!);
  return [...names].sort();
}
