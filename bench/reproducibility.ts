// `npm run bench:repro`: the reproducibility table of docs/REPRODUCIBILITY.md.
// Every shipped preset at its CI scale, with the hardened build and the naive
// one, run twice with one seed (`flashcrowd run --repeat 2`), side by side in
// one invocation; each pair compared by harness/compare.ts. Each preset runs
// each of its variants (every shipped one has naive and hardened; a preset
// file without variants runs as it is).
// Prints one Markdown row per run pair: values compared, identical, within
// tolerance, out of tolerance, whether the exact class (audit, schedule, and
// for the naive build injected faults) was identical, and the largest
// differences of the count and rate classes.
//
//   npm run bench:repro                            every preset, seed 1
//   npm run bench:repro -- --preset callback-chaos --seed 3
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Comparison } from '../harness/compare.ts';
import { listPresetNames, loadPreset } from '../harness/preset.ts';
import { PROJECT_ROOT } from '../harness/tools.ts';

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', multiple: true },
    seed: { type: 'string', default: '1' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('npm run bench:repro [-- --preset NAME ... --seed N]');
  process.exit(0);
}

const BIN = join(PROJECT_ROOT, 'bin', 'flashcrowd.js');
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-repro-bench-'));

/** `flashcrowd run <what> --ci --repeat 2`; resolves to the run directory. */
async function repeatRun(what: string, out: string): Promise<number | null> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'run',
      what,
      '--ci',
      '--seed',
      args.seed!,
      '--repeat',
      '2',
      '--progress',
      'none',
      '--out',
      out,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  writeFileSync(`${out}.log`, log);
  return code;
}

function row(label: string, c: Comparison): string {
  const exact = c.rows.filter((r) => r.class === 'exact');
  const exactSame = exact.every((r) => r.diff === '');
  const faults = c.rows.filter((r) => r.name.startsWith('faults.'));
  const faultClass = faults[0]?.class ?? '-';
  const worst = (cls: string) =>
    c.rows
      .filter((r) => r.class === cls && r.diff !== '')
      .sort((x, y) => spread(y) - spread(x))
      .slice(0, 2)
      .map((r) => `${r.name} ${r.diff}`)
      .join('; ') || '-';
  return `| ${label} | ${c.rows.length} | ${c.identical} | ${c.withinTolerance} | ${c.outOfTolerance} | ${exactSame ? 'yes' : 'NO'} (${exact.length}) | ${faultClass} | ${worst('count')} | ${worst('rate')} |`;
}

function spread(r: Comparison['rows'][number]): number {
  if (r.a === null || r.b === null) return Infinity;
  const m = Math.max(Math.abs(r.a), Math.abs(r.b));
  return m === 0 ? 0 : Math.abs(r.b - r.a) / m;
}

const names = args.preset?.length ? args.preset : listPresetNames();
const lines = [
  '| preset / build | values | identical | within tolerance | out of tolerance | exact class identical | faults class | largest count differences | largest rate differences |',
  '|---|---|---|---|---|---|---|---|---|',
];
let allOk = true;
for (const name of names) {
  const { preset } = loadPreset(name);
  // Each variant in its own folder; a preset without variants (a file of yours) runs as it is.
  const runs = [
    {
      label: preset.variants?.length ? name : `${name} / ${preset.checkout.mode}`,
      what: name,
      dirs: preset.variants?.map((v) => v.name) ?? [''],
    },
  ];
  for (const r of runs) {
    const out = join(tmp, r.label.replace(/[^a-z0-9-]+/gi, '_'));
    const started = Date.now();
    process.stderr.write(`${r.label}: running twice... `);
    const code = await repeatRun(r.what, out);
    process.stderr.write(`exit ${code} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    for (const d of r.dirs) {
      let c: Comparison;
      try {
        [c] = JSON.parse(readFileSync(join(out, d, 'compare.json'), 'utf8')) as [Comparison];
      } catch {
        lines.push(
          `| ${r.label}${d ? ` / ${d}` : ''} | run failed (exit ${code}, log ${out}.log) | | | | | | | |`,
        );
        allOk = false;
        continue;
      }
      allOk &&= c.ok;
      lines.push(row(d ? `${r.label} / ${d}` : r.label, c));
    }
  }
}
console.log(`\nseed ${args.seed}, --ci, flashcrowd's engine; runs in ${tmp}\n`);
console.log(lines.join('\n'));
process.exitCode = allOk ? 0 : 1;
