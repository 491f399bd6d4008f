// A run starts from a clean target: `flashcrowd run --target` resets the
// checkout (POST /admin/reset) and every mock it is given (POST /__reset,
// reseeded with the run's seed) and checks nothing is left. Two runs in a row
// on one running stack both pass (the second used to inherit the first's
// coupon campaign, limits and counters); a mock whose reset does nothing (a
// proxy that swallows /__reset in front of a bank holding a payment) is refused
// with exit 2 naming what is left, and --no-reset runs on it with a warning.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../harness/stack.ts';
import type { RunSummary } from '../harness/summary.ts';
import { HALF_CI, HALF_CI_TIME_SCALE, runCli } from './support/cli.ts';
import { startProxy } from './support/proxy.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-reset-'));

const run = (args: string[]) => runCli(args, { timeoutMs: 200_000 });

const summaryOf = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;

/** A proxy in front of a mock that answers POST /__reset itself (a reset that does nothing) and forwards the rest. */
const resetSwallower = (upstream: string) =>
  startProxy(upstream, {
    intercept: (req) =>
      req.method === 'POST' && req.url?.startsWith('/__reset')
        ? [200, { status: 'reset' }]
        : undefined,
  });

describe('flashcrowd run --target starts from a clean target', () => {
  let stack: Stack;
  beforeAll(async () => {
    // The runs' time-scale (half of livestream-spike's --ci one), so the checkout's deadlines match the run's.
    stack = await startStack({
      seed: 2,
      mode: 'hardened',
      set: [`timeScale=${HALF_CI_TIME_SCALE}`],
      logDir: tmp,
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const targetArgs = (bank: string) => [
    ...['--target', stack.urls.checkout, '--redis', stack.urls.redis, '--bank', bank],
    ...['--wallet', stack.urls.wallet, '--coupon', stack.urls.coupon],
  ];

  it('two runs in a row on one running stack both reset it, say so, and pass', async () => {
    for (const k of [1, 2]) {
      const out = join(tmp, `again-${k}`);
      const r = await run([
        ...[
          'run',
          'livestream-spike',
          '--variant',
          'hardened',
          ...HALF_CI,
          '--seed',
          '3',
          '--progress',
          'none',
          '--out',
          out,
        ],
        ...targetArgs(stack.urls.bank),
      ]);
      expect(r.code, `run ${k}:\n${r.log.slice(-4_000)}`).toBe(0);
      expect(r.log).toMatch(
        /reset: checkout, bank, wallet, coupon \(mocks reseeded with 3, time-scale 0\.00833\): clean/,
      );
      expect(summaryOf(out).warnings).toEqual([]);
    }
  }, 420_000);

  it('a mock whose reset does nothing is refused (exit 2) naming what is left; --no-reset runs on it with a warning', async () => {
    // Dirt the reset cannot remove: a captured payment in the bank, behind a proxy that swallows /__reset.
    const pay = await fetch(`${stack.urls.bank}/v1/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        orderId: 'left-over-1',
        amount: 990,
        currency: 'CNY',
        card: { number: '4242424242424242' },
      }),
    });
    expect(pay.status).toBe(200);
    const proxy = await resetSwallower(stack.urls.bank);
    try {
      const refused = await run([
        ...[
          'run',
          'livestream-spike',
          '--variant',
          'hardened',
          ...HALF_CI,
          '--progress',
          'none',
          '--out',
          join(tmp, 'dirty'),
        ],
        ...targetArgs(proxy.url),
      ]);
      expect(refused.code, refused.log.slice(-3_000)).toBe(2);
      expect(refused.log).toMatch(
        /the target is not clean after its reset: .*bank: its ledger has entries/,
      );
      expect(refused.log).toMatch(/--no-reset/);
      expect(refused.log).not.toMatch(/traffic:/);

      const out = join(tmp, 'no-reset');
      const r = await run([
        ...[
          'run',
          'livestream-spike',
          '--variant',
          'hardened',
          ...HALF_CI,
          '--no-reset',
          // No settling: what is checked is that it ran and said why its numbers may be off.
          '--quiescence',
          '0',
          '--progress',
          'none',
          '--out',
          out,
        ],
        ...targetArgs(proxy.url),
      ]);
      expect(r.log).toMatch(/traffic:/);
      const s = summaryOf(out);
      expect(s.warnings.join('\n')).toMatch(
        /not reset \(--no-reset\) and not clean: .*bank: its ledger has entries.*include what came before/,
      );
    } finally {
      proxy.close();
    }
  }, 420_000);
});
