// Which k6 runs: FLASHCROWD_K6 (a binary, or `docker`), else .tools/bin or
// PATH, else the grafana/k6 container through testcontainers, else a clear
// error. Real k6 and real processes: the "xk6 build" here is a shell script
// that notes it ran and execs the real k6. The container path itself needs a
// Docker engine, which the development machine does not have: what is tested
// is that it is chosen and refused with a clear message when none answers
// (here and in run.test.ts).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../harness/errors.ts';
import { K6_IMAGE, describeK6, resolveK6, runK6 } from '../harness/k6.ts';
import { findTool } from '../harness/tools.ts';
import { K6_VERSION } from '../scripts/versions.mjs';

const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-k6-'));

function realK6(): string {
  const k6 = findTool('k6');
  expect(k6, 'k6 not found: run `node scripts/setup.mjs` (npm test does)').toBeDefined();
  return k6!;
}

/** A k6 "build" at another path: notes each run in `marker`, then runs the real k6. */
function wrapper(marker: string): string {
  const path = join(tmp, `my-k6-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, `#!/bin/sh\necho "$@" >> '${marker}'\nexec '${realK6()}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

describe('resolveK6', () => {
  it('FLASHCROWD_K6 naming a k6 binary is used as is', async () => {
    const k6 = realK6();
    const r = await resolveK6({ ...process.env, FLASHCROWD_K6: k6 });
    expect(r).toEqual({ kind: 'binary', path: k6, from: 'FLASHCROWD_K6' });
    expect(describeK6(r)).toBe(`${k6} (FLASHCROWD_K6)`);
  });

  it('without FLASHCROWD_K6, k6 from .tools/bin or PATH', async () => {
    const r = await resolveK6({ ...process.env, FLASHCROWD_K6: '' });
    expect(r).toEqual({ kind: 'binary', path: realK6(), from: 'tools' });
  });

  it('FLASHCROWD_K6 naming a missing, a non-executable file or a folder is a usage error naming the variable', async () => {
    const plain = join(tmp, 'not-executable');
    writeFileSync(plain, 'not k6');
    chmodSync(plain, 0o644);
    for (const [v, what] of [
      ['/no/such/k6', 'no such file'],
      [plain, 'not executable'],
      [tmp, 'not a file'],
    ]) {
      const e = await resolveK6({ ...process.env, FLASHCROWD_K6: v }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message).toContain(`FLASHCROWD_K6=${v}: ${what}`);
    }
  });

  it('the container image is the pinned k6 version', () => {
    expect(K6_IMAGE).toBe(`grafana/k6:${K6_VERSION.replace(/^v/, '')}`);
    expect(K6_IMAGE).toMatch(/^grafana\/k6:\d+\.\d+\.\d+$/);
  });

  // DOCKER_HOST names the engine meant: one that does not answer is "no Docker", whatever
  // other sockets this machine has.
  describe('with no Docker engine', () => {
    const saved = process.env.DOCKER_HOST;
    beforeAll(() => {
      process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    });
    afterAll(() => {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    });

    it('k6 nowhere: the error says both that k6 is missing (npm run setup) and that no Docker engine answered', async () => {
      const e = await resolveK6({ ...process.env, FLASHCROWD_K6: '' }, [tmp]).catch(
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UsageError);
      const m = (e as Error).message;
      expect(m).toMatch(/k6 not found in \.tools\/bin or on PATH/);
      expect(m).toMatch(/npm run setup/);
      expect(m).toContain(K6_IMAGE);
      expect(m).toMatch(
        /no Docker engine answered at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock \([^)]+\)/,
      );
    });

    it('FLASHCROWD_K6=docker is refused the same way even with k6 installed', async () => {
      const e = await resolveK6({ ...process.env, FLASHCROWD_K6: 'docker' }).catch(
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message).toMatch(/FLASHCROWD_K6=docker .* no Docker engine answered/);
    });
  });
});

describe('runK6 with FLASHCROWD_K6', () => {
  it('runs the named binary, captures its output and passes on its exit code (99: thresholds failed)', async () => {
    const marker = join(tmp, 'ran-1');
    const k6 = await resolveK6({ ...process.env, FLASHCROWD_K6: wrapper(marker) });
    const script = join(tmp, 'tiny.js');
    writeFileSync(
      script,
      `export const options = { iterations: 1, thresholds: { iterations: [\`count<\${__ENV.LIMIT}\`] } };
export default function () { console.log('tiny ran'); }
`,
    );
    const pass = await runK6({ k6, script, env: { LIMIT: 5 }, capture: true });
    expect(pass.code, pass.stderr).toBe(0);
    expect(pass.stderr + pass.stdout).toMatch(/tiny ran/);
    const fail = await runK6({ k6, script, env: { LIMIT: 1 }, capture: true });
    expect(fail.code, fail.stderr).toBe(99);
    const runs = readFileSync(marker, 'utf8').trim().split('\n');
    expect(runs).toHaveLength(2);
    expect(runs[0]).toMatch(
      /^run --no-usage-report --address 127\.0\.0\.1:0 -e LIMIT=5 .*tiny\.js$/,
    );
  });

  it('the CLI uses it: `flashcrowd tour` runs k6 through FLASHCROWD_K6', () => {
    const marker = join(tmp, 'ran-tour');
    const r = spawnSync(process.execPath, [BIN, 'tour', '--duration', '1', '--rate', '5'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, FLASHCROWD_K6: wrapper(marker) },
    });
    expect(r.status, r.stderr.slice(-3_000)).toBe(0);
    expect(readFileSync(marker, 'utf8')).toMatch(/scenarios\/mocks-demo\.ts/);
  });
});
