// `flashcrowd checkout --instances N` and `flashcrowd up --instances N` as a
// user runs them: N checkout URLs that answer, one Redis and one set of mocks
// behind them, and one SIGINT stops every instance; bad values are usage
// errors (exit 2).
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', 'bin', 'flashcrowd.js');

/** Start the command, wait for its JSON line; the process and its exit. */
async function startJson(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const rl = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    rl.on('line', (l) => l.startsWith('{') && resolve(l));
    void exited.then((code) => reject(new Error(`exited ${code} before its JSON: ${stderr}`)));
  });
  return { urls: JSON.parse(line) as Record<string, unknown>, child, exited };
}

const answers = async (url: string) =>
  fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
    (r) => r.status,
    () => 0,
  );

async function expectAllServe(checkouts: string[], n: number) {
  expect(checkouts).toHaveLength(n);
  expect(new Set(checkouts).size).toBe(n);
  for (const url of checkouts) {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await answers(url), url).toBe(200);
  }
}

describe('several checkout instances from the command line', () => {
  it('checkout --instances 3 --json: three URLs that answer, on one Redis; one SIGINT stops all', async () => {
    const { urls, child, exited } = await startJson(['checkout', '--instances', '3']);
    const checkouts = urls.checkouts as string[];
    expect(urls.checkout).toBe(checkouts[0]);
    await expectAllServe(checkouts, 3);
    // One Redis: a sale seeded on the first is seen by the third.
    const sale = await fetch(`${checkouts[0]}/admin/sale`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ skus: [{ id: 'lip', price: 9900, stock: 4, limit: 1 }] }),
    });
    expect(sale.status).toBe(201);
    const skus = (await (await fetch(`${checkouts[2]}/v1/skus`)).json()) as { data: unknown[] };
    expect(skus.data).toHaveLength(1);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const url of checkouts) expect(await answers(url), url).toBe(0);
  });

  it('up --instances 2 --json: two checkout URLs that answer; one SIGINT stops the stack', async () => {
    const { urls, child, exited } = await startJson(['up', '--instances', '2']);
    const checkouts = urls.checkouts as string[];
    expect(urls.checkout).toBe(checkouts[0]);
    await expectAllServe(checkouts, 2);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const url of checkouts) expect(await answers(url), url).toBe(0);
  });

  it.each([
    [['checkout', '--instances', '17'], /--instances must be an integer from 1 to 16/],
    [['up', '--instances', '0'], /--instances must be an integer from 1 to 16/],
    [
      ['checkout', '--instances', '2', '--public-url', 'http://127.0.0.1:9'],
      /--public-url names one checkout/,
    ],
  ])('%j is a usage error (exit 2)', (args, message) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
