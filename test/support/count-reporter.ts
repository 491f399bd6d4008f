// Prints plain closing lines after vitest's own summary: the slowest test
// files with their project (the "load" project runs its files one at a time,
// so its sum is the suite's critical path; keep a fresh run under 20 minutes),
// then "tests: N passed, N failed, N skipped", so CI systems that read closing
// lines can count.
import type { Reporter, TestModule } from 'vitest/node';

const SLOWEST = 12;

export default class CountReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      let failedHere = 0;
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed += 1;
        else if (s === 'failed') failedHere += 1;
        else skipped += 1;
      }
      // A file that failed outside its tests (a failing beforeAll, an import error) counts as a failure.
      if (m.state() === 'failed' && failedHere === 0) failedHere = 1;
      failed += failedHere;
    }
    if (errors.length) failed += errors.length;
    process.stdout.write(durations(modules));
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}

function durations(modules: ReadonlyArray<TestModule>): string {
  const rows = modules.map((m) => ({
    file: m.moduleId.replace(`${process.cwd()}/`, ''),
    project: m.project.name,
    s: m.diagnostic().duration / 1000,
  }));
  const perProject = new Map<string, number>();
  for (const r of rows) perProject.set(r.project, (perProject.get(r.project) ?? 0) + r.s);
  const lines = [...rows]
    .sort((a, b) => b.s - a.s)
    .slice(0, SLOWEST)
    .map((r) => `  ${r.s.toFixed(0).padStart(5)} s  ${r.project.padEnd(5)} ${r.file}`);
  const sums = [...perProject].map(([p, s]) => `${p} ${s.toFixed(0)} s`).join(', ');
  return `\nslowest test files (sum per project: ${sums}):\n${lines.join('\n')}\n`;
}
