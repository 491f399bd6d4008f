// `flashcrowd run`'s usage errors, as a user meets them: each exits 2 with a
// message naming what to change, before anything starts (no stack, no
// report folder); and `flashcrowd list` names every shipped preset. Nothing
// here drives load, so it runs beside the load files (the end-to-end runs are
// in test/run.test.ts).
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, processesMarked } from './support/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-run-usage-'));

function cli(args: string[], timeout = 30_000, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout, env });
}

describe('flashcrowd run: usage errors exit 2 before anything starts', () => {
  it('an unknown preset names the known ones', () => {
    const r = cli(['run', 'no-such-preset']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no preset "no-such-preset".*livestream-spike/s);
  });

  it('a budget naming an unknown metric is refused with a suggestion', () => {
    const r = cli([
      'run',
      'livestream-spike',
      '--variant',
      'hardened',
      '--ci',
      '--budget',
      'pay.failure_rat<0.02',
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/pay\.failure_rat/);
    expect(r.stderr).toMatch(/pay\.failure_rate/);
  });

  it('a target outside loopback is refused without --allow-remote-target', () => {
    const r = cli([
      'run',
      'livestream-spike',
      '--variant',
      'hardened',
      '--ci',
      '--target',
      'http://10.1.2.3:8080',
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a loopback address/);
    expect(r.stderr).toMatch(/--allow-remote-target/);
  });

  it('--target with a preset of several variants and no --variant is refused: the target runs one build of its own', () => {
    const r = cli(['run', 'livestream-spike', '--ci', '--target', 'http://127.0.0.1:9']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/give --variant \(naive, hardened\) with --target/);
  });

  it('a time-scale above 1 is refused naming the option', () => {
    const r = cli(['run', 'livestream-spike', '--time-scale', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--time-scale/);
  });

  // DOCKER_HOST names the engine meant: one that does not answer is "no Docker", whatever
  // other sockets this machine has.
  it('--engine k6 with FLASHCROWD_K6=docker and no Docker engine exits 2 naming k6 and Docker, before the stack starts', () => {
    const id = randomUUID();
    const out = join(tmp, 'k6-docker');
    const r = cli(
      ['run', 'livestream-spike', '--variant', 'hardened', '--ci', '--engine', 'k6', '--out', out],
      30_000,
      {
        ...process.env,
        FLASHCROWD_K6: 'docker',
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
        FLASHCROWD_TEST_MARK: id,
      },
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/FLASHCROWD_K6=docker/);
    expect(r.stderr).toMatch(/grafana\/k6:\d+\.\d+\.\d+ container/);
    expect(r.stderr).toMatch(
      /no Docker engine answered at DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock \(.+\)/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(r.stdout).not.toMatch(/redis|checkout/i); // nothing was started
    expect(existsSync(out)).toBe(false);
    expect(processesMarked(`FLASHCROWD_TEST_MARK=${id}`)).toEqual([]);
  });

  it('--engine k6 with no k6 anywhere exits 2 saying how to get k6, and starts nothing', () => {
    const out = join(tmp, 'no-k6');
    const r = cli(
      ['run', 'livestream-spike', '--variant', 'hardened', '--ci', '--engine', 'k6', '--out', out],
      30_000,
      {
        ...process.env,
        FLASHCROWD_K6: '',
        PATH: '/nonexistent',
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      },
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/no k6 on PATH, and FLASHCROWD_K6 is not set/);
    expect(r.stderr).toMatch(/install k6 yourself/);
    expect(r.stderr).toMatch(/without --engine k6/);
    expect(r.stdout).not.toMatch(/redis|checkout/i);
    expect(existsSync(out)).toBe(false);
  });

  it('FLASHCROWD_K6 naming a missing file exits 2 naming the variable', () => {
    const r = cli(
      ['run', 'livestream-spike', '--variant', 'hardened', '--ci', '--engine', 'k6'],
      30_000,
      {
        ...process.env,
        FLASHCROWD_K6: '/no/such/k6',
      },
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/FLASHCROWD_K6=\/no\/such\/k6: no such file/);
  });

  it('--runners refuses k6, a preset with several variants and no --variant, and --listen without --runners (exit 2)', () => {
    const k6 = cli([
      'run',
      'livestream-spike',
      '--variant',
      'hardened',
      '--ci',
      '--engine',
      'k6',
      '--runners',
      '2',
    ]);
    expect(k6.status, k6.stderr).toBe(2);
    expect(k6.stderr).toMatch(/--runners .*does not apply to --engine k6/);
    const variants = cli(['run', 'retry-storm', '--ci', '--runners', '2']);
    expect(variants.status, variants.stderr).toBe(2);
    expect(variants.stderr).toMatch(/give --variant \(naive, hardened\) with --runners/);
    const listen = cli([
      'run',
      'livestream-spike',
      '--variant',
      'hardened',
      '--ci',
      '--listen',
      '127.0.0.1:0',
    ]);
    expect(listen.status, listen.stderr).toBe(2);
    expect(listen.stderr).toMatch(/--listen and --runner-timeout go with --runners/);
    const bad = cli([
      'run',
      'livestream-spike',
      '--variant',
      'hardened',
      '--ci',
      '--runners',
      '2',
      '--listen',
      'nowhere',
    ]);
    expect(bad.status, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/--listen must be host:port/);
  });

  it('list shows every shipped preset', () => {
    const r = cli(['list', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const names = (JSON.parse(r.stdout) as { name: string; error?: string }[]).map((p) => {
      expect(p.error, p.name).toBeUndefined();
      return p.name;
    });
    for (const n of [
      'livestream-spike',
      'bank-brownout',
      'gateway-outage',
      'callback-chaos',
      'ambiguous-capture',
      'retry-storm',
      'coupon-contention',
      'top-of-hour',
    ])
      expect(names).toContain(n);
  });
});
