// A stack bound outside loopback, for load generators on other hosts: `run
// --host` refuses what cannot work before anything starts (exit 2 naming
// --host), and the wallet such a stack starts (`mock --allow-remote-notify`)
// accepts its checkout's notifyUrl on that address, which a wallet for
// loopback clients refuses. The runs across hosts: test/multihost-netns.test.ts.
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startMocks } from '../harness/mocks.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { BIN } from './support/cli.ts';
import { call } from './support/http.ts';

function run(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(
    process.execPath,
    [BIN, 'run', 'livestream-spike', '--variant', 'hardened', '--ci', ...args],
    { encoding: 'utf8', timeout: 30_000, env },
  );
}

describe('flashcrowd run --host: refused before anything starts', () => {
  const token = { ...process.env, FLASHCROWD_ADMIN_TOKEN: 'stack-host-test' };
  const noToken = { ...process.env };
  delete noToken.FLASHCROWD_ADMIN_TOKEN;

  it.each([
    [
      'a name',
      ['--host', 'sut.example'],
      token,
      /--host must be an IP address .* got "sut\.example"/,
    ],
    [
      'a wildcard',
      ['--host', '0.0.0.0'],
      token,
      /--host must be an IP address .* got "0\.0\.0\.0"/,
    ],
    [
      'a non-loopback address without FLASHCROWD_ADMIN_TOKEN',
      ['--host', '10.213.0.1'],
      noToken,
      /run --host 10\.213\.0\.1: a non-loopback address exposes the admin routes.*FLASHCROWD_ADMIN_TOKEN/,
    ],
    [
      'with --target',
      ['--host', '10.213.0.1', '--target', 'http://127.0.0.1:9'],
      token,
      /--host binds the stack the run starts; with --target it starts none/,
    ],
  ])('%s: exit 2 naming --host', (_what, args, env, message) => {
    const r = run(args, env);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toMatch(/starting Redis/);
  });
});

describe("the wallet of a stack bound outside loopback takes its checkout's notifyUrl there", () => {
  const started: RunningService[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.close()));
  });
  const trade = (url: string) =>
    call(url, 'POST', '/v1/trades', {
      outTradeNo: `o-${Math.random()}`,
      amount: 1234,
      notifyUrl: 'http://10.213.0.1:8100/v1/notify/wallet',
      style: 'alipay',
    });

  it('with --allow-remote-notify 201; without it 400 naming notifyUrl', async () => {
    for (const allowRemoteNotify of [true, false])
      started.push(...(await startMocks({ target: 'wallet', allowRemoteNotify })));
    const [open, closed] = started;
    expect((await trade(open!.url)).status).toBe(201);
    const r = await trade(closed!.url);
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ field: 'notifyUrl', reason: expect.any(String) }]);
  });
});
