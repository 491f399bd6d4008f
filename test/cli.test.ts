// The flashcrowd CLI as a user runs it: help, usage errors with exit code 2,
// `mock` printing its URLs and stopping cleanly on SIGINT, and the tour
// driving the engine's traffic through all three mocks (the run command has test/run.test.ts).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-cli-'));

function cli(args: string[], timeout = 30_000) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout });
}

/** Start `flashcrowd mock ... --json`, wait for its JSON line, return URLs and the process. */
async function startCli(args: string[]) {
  const child = spawn(process.execPath, [BIN, 'mock', ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const rl = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`flashcrowd mock exited ${code}: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { urls: JSON.parse(line) as Record<string, string>, child, exited, stderr: () => stderr };
}

describe('flashcrowd CLI', () => {
  it('--help lists the commands and exits 0', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/mock \[options\] <service>/);
    expect(r.stdout).toMatch(/demo/);
  });

  it('mock --help documents every option', () => {
    const r = cli(['mock', '--help']);
    expect(r.status).toBe(0);
    for (const opt of ['--port', '--host', '--seed', '--profile', '--admin-remote', '--json'])
      expect(r.stdout).toContain(opt);
  });

  it('an unknown service is a usage error: exit 2 and the allowed choices', () => {
    const r = cli(['mock', 'bnak']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Allowed choices are bank, wallet, coupon, all/);
  });

  it('a bad --port is a usage error naming the option', () => {
    const r = cli(['mock', 'bank', '--port', 'eighty']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--port must be an integer/);
  });

  it('an invalid profile file is exit 2 with each bad field named', () => {
    const f = join(tmp, 'bad.json');
    writeFileSync(
      f,
      JSON.stringify({ errors: [{ rate: 3, kind: 'http' }], latency: { dist: 'gaussian' } }),
    );
    const r = cli(['mock', 'bank', '--profile', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/errors\.0\.rate/);
    expect(r.stderr).toMatch(/latency\.dist/);
  });

  it('a missing or non-JSON profile file is exit 2 with the file named', () => {
    expect(cli(['mock', 'bank', '--profile', join(tmp, 'nope.json')]).stderr).toMatch(
      /cannot read profile file .*nope\.json/,
    );
    const f = join(tmp, 'text.json');
    writeFileSync(f, 'latency: 5ms');
    const r = cli(['mock', 'bank', '--profile', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not valid JSON/);
  });

  it('mock all prints three loopback URLs that answer /healthz, and SIGINT stops it with exit 0', async () => {
    const { urls, child, exited } = await startCli(['all', '--port', '0', '--seed', '7']);
    expect(Object.keys(urls).sort()).toEqual(['bank', 'coupon', 'wallet']);
    for (const [name, url] of Object.entries(urls)) {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const h = await (await fetch(`${url}/healthz`)).json();
      expect(h).toMatchObject({ status: 'ok', service: name, seed: 7 });
    }
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it.each([
    ['naive', /^\(every resilience feature is off: the naive build\)$/],
    ['hardened', /^\(features on: .*idempotency.*\)$/],
  ])('checkout --mode %s says which resilience features are on', async (mode, line) => {
    const child = spawn(process.execPath, [BIN, 'checkout', '--mode', mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    const lines: string[] = [];
    const rl = createInterface({ input: child.stdout });
    const found = await new Promise<string | undefined>((resolve) => {
      rl.on('line', (l) => {
        lines.push(l);
        if (l.startsWith('(')) resolve(l);
      });
      void exited.then(() => resolve(undefined));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(found, lines.join('\n')).toMatch(line);
  });

  it('mock bank --profile applies the profile (keyed-by-service file)', async () => {
    const f = join(tmp, 'keyed.json');
    writeFileSync(
      f,
      JSON.stringify({ bank: { errors: [{ rate: 1, kind: 'http', status: 418 }] } }),
    );
    const { urls, child, exited } = await startCli(['bank', '--profile', f]);
    const r = await fetch(`${urls.bank}/v1/statement`);
    expect(r.status).toBe(418);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it("tour runs flashcrowd's engine through all three mocks and reports what the chaos did", () => {
    const r = cli(['tour', '--duration', '3', '--rate', '20'], 120_000);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/What the mocks saw/);
    for (const name of ['bank', 'wallet', 'coupon'])
      expect(r.stdout).toMatch(new RegExp(`\\n  ${name}: \\d+ requests`));
    expect(r.stdout).toMatch(/injected faults:/);
    // The engine's end-of-traffic line: every arrival of 3 s x 20/s started or dropped.
    expect(r.stdout).toMatch(
      /flashcrowd engine .*: (\d+) arrivals started of 60, (\d+) dropped; http_reqs \d+/,
    );
    const [, started, dropped] = /(\d+) arrivals started of 60, (\d+) dropped/.exec(r.stdout)!;
    expect(Number(started) + Number(dropped)).toBe(60);
  }, 150_000);
});
