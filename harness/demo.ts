// `flashcrowd demo`: all three mocks under the demo chaos profile, k6 traffic
// through them for a bounded time, then a table of what the chaos did.
import { join } from 'node:path';
import { startMocks } from './mocks.ts';
import { runK6 } from './k6.ts';
import { counterRows, scrape } from './prom.ts';
import { PROJECT_ROOT } from './tools.ts';

export interface DemoOptions {
  duration: number;
  rate: number;
  seed: number;
  profile?: string;
  keep: boolean;
  onSignals(stop: () => Promise<void>): void;
}

export async function runDemo(o: DemoOptions): Promise<void> {
  const profileFile = o.profile ?? join(PROJECT_ROOT, 'mock-gateways', 'profiles', 'demo.json');
  const running = await startMocks({ target: 'all', seed: o.seed, profileFile });
  const stop = () => Promise.all(running.map((s) => s.close())).then(() => undefined);
  o.onSignals(stop);
  const urls = Object.fromEntries(running.map((s) => [s.name, s.url]));
  console.log('flashcrowd demo: mock gateways up (chaos profile %s, seed %d)', profileFile, o.seed);
  for (const s of running) console.log(`  ${s.name.padEnd(7)} ${s.url}`);
  console.log(
    `\nk6: ${o.rate} shoppers/s for ${o.duration} s against bank, wallet and coupon...\n`,
  );

  const k6 = await runK6({
    script: join(PROJECT_ROOT, 'scenarios', 'mocks-demo.ts'),
    env: {
      BANK_URL: urls.bank ?? '',
      WALLET_URL: urls.wallet ?? '',
      COUPON_URL: urls.coupon ?? '',
      RATE: o.rate,
      DURATION: o.duration,
      SEED: o.seed,
    },
  });

  console.log('\nWhat the mocks saw (from their /metrics):');
  for (const s of running) {
    const rows = counterRows(await scrape(s.url), 'flashcrowd_mock_');
    const req = rows.filter((r) => r.name === 'flashcrowd_mock_requests_total');
    const faults = rows.filter((r) => r.name === 'flashcrowd_mock_faults_injected_total');
    const total = req.reduce((a, r) => a + r.value, 0);
    console.log(`\n  ${s.name}: ${total} requests`);
    for (const r of req.sort((a, b) => b.value - a.value))
      console.log(
        `    ${r.labels.operation?.padEnd(18)} ${r.labels.outcome?.padEnd(9)} ${r.labels.reason?.padEnd(24)} ${String(r.value).padStart(7)}`,
      );
    if (faults.length) {
      console.log('    injected faults:');
      for (const f of faults)
        console.log(
          `      ${f.labels.operation?.padEnd(18)} ${f.labels.kind?.padEnd(18)} ${f.labels.source?.padEnd(8)} ${String(f.value).padStart(7)}`,
        );
    }
  }
  if (k6.code !== 0) console.log(`\nk6 exited with ${k6.code}`);
  if (o.keep) {
    console.log('\nMocks still up (--keep); Ctrl-C stops them.');
    return;
  }
  await stop();
  console.log(
    '\nDemo done. `npx flashcrowd mock all --profile mock-gateways/profiles/demo.json` keeps them up; docs/CHAOS.md has every knob.',
  );
  process.exitCode = k6.code === 0 ? 0 : 1;
}
