// `flashcrowd tour`: all three mocks under the demo chaos profile, a loopback
// merchant for wallet notifications, shoppers through them for a bounded time
// (flashcrowd's engine; scenarios/lib/tour-journey.ts), then what each service
// saw, what the chaos did, and the ledgers.
import { join } from 'node:path';
import { startMerchant } from '../mock-gateways/wallet/merchant.ts';
import { startMocks } from './mocks.ts';
import { EmbeddedEngine } from './engine/embedded.ts';
import { counterRows, scrape } from './prom.ts';
import { PROJECT_ROOT } from './tools.ts';
import type { LoadResult } from './engine/types.ts';

export interface DemoOptions {
  duration: number;
  rate: number;
  seed: number;
  profile?: string;
  keep: boolean;
  onSignals(stop: () => Promise<void>): void;
}

const CAMPAIGN = 'demo-live';

async function getJson<T = unknown>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as T;
  if (!res.ok)
    throw new Error(
      `${init?.method ?? 'GET'} ${url} answered ${res.status}: ${JSON.stringify(body)}`,
    );
  return body;
}

export async function runDemo(o: DemoOptions): Promise<void> {
  const profileFile = o.profile ?? join(PROJECT_ROOT, 'mock-gateways', 'profiles', 'demo.json');
  const running = await startMocks({ target: 'all', seed: o.seed, profileFile });
  // The merchant acknowledges four notifications in five; the fifth gets "fail" and is retried.
  const merchant = await startMerchant((n) =>
    n.seq % 5 === 4 ? { status: 200, body: 'fail' } : { status: 200, body: 'success' },
  );
  const stop = async () => {
    await Promise.all([...running.map((s) => s.close()), merchant.close()]);
  };
  o.onSignals(stop);
  const urls = Object.fromEntries(running.map((s) => [s.name, s.url])) as Record<
    'bank' | 'wallet' | 'coupon',
    string
  >;
  console.log(`flashcrowd tour: mock gateways up (chaos profile ${profileFile}, seed ${o.seed})`);
  for (const s of running) console.log(`  ${s.name.padEnd(8)} ${s.url}`);
  console.log(`  merchant ${merchant.url}  (receives wallet notifications)`);

  // A coupon campaign that runs out before the traffic does. Created with the
  // coupon's chaos paused, so set-up itself cannot hang; the profile's clock
  // restarts when it is put back.
  const budget = Math.max(1, Math.floor(o.rate * o.duration * 0.7));
  const couponEngine = running.find((s) => s.name === 'coupon')!.engine;
  const couponProfile = couponEngine.getProfile();
  couponEngine.clearProfile();
  await getJson(`${urls.coupon}/v1/campaigns`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: CAMPAIGN,
      name: 'Livestream demo',
      budget,
      discount: { type: 'amount', value: 500 },
    }),
  });
  couponEngine.setProfile(couponProfile);
  console.log(`\nshoppers: ${o.rate}/s for ${o.duration} s (coupon budget ${budget})...`);

  const engine = new EmbeddedEngine();
  await engine.start({
    journey: {
      name: 'tour',
      config: {
        bankUrl: urls.bank,
        walletUrl: urls.wallet,
        couponUrl: urls.coupon,
        notifyUrl: merchant.url,
        campaign: CAMPAIGN,
      },
    },
    shape: { startRate: o.rate, stages: [{ durationS: o.duration, target: o.rate }] },
    preAllocatedVUs: Math.min(200, o.rate * 2),
    maxVUs: Math.max(50, o.rate * 10),
    gracefulStopS: 5,
  });
  const load = await engine.result();
  printLoad(load);

  // Let compressed notification retries and bank settlements finish.
  await new Promise((r) => setTimeout(r, 2_500));
  console.log('\nWhat the mocks saw (from their /metrics):');
  for (const s of running) {
    const rows = counterRows(await scrape(s.url), 'flashcrowd_mock_');
    const req = rows.filter((r) => r.name === 'flashcrowd_mock_requests_total');
    const faults = rows.filter((r) => r.name === 'flashcrowd_mock_faults_injected_total');
    const notes = rows.filter((r) => r.name === 'flashcrowd_mock_notifications_total');
    const total = req.reduce((a, r) => a + r.value, 0);
    console.log(`\n  ${s.name}: ${total} requests`);
    console.log(
      `    ${'operation'.padEnd(18)} ${'outcome'.padEnd(9)} ${'reason'.padEnd(24)} ${'count'.padStart(7)}`,
    );
    for (const r of req.sort((a, b) => b.value - a.value))
      console.log(
        `    ${r.labels.operation?.padEnd(18)} ${r.labels.outcome?.padEnd(9)} ${r.labels.reason?.padEnd(24)} ${String(r.value).padStart(7)}`,
      );
    if (faults.length) {
      console.log('    injected faults:');
      for (const f of faults.sort((a, b) => b.value - a.value))
        console.log(
          `      ${f.labels.operation?.padEnd(18)} ${f.labels.kind?.padEnd(18)} ${f.labels.source?.padEnd(8)} ${String(f.value).padStart(7)}`,
        );
    }
    if (notes.length)
      console.log(
        `    notifications: ${notes.map((r) => `${r.labels.event} ${r.value}`).join(', ')}`,
      );
  }

  // The traffic is over: stop the chaos so the ledgers can be read.
  for (const s of running) s.engine.clearProfile();
  type Statement = { totals: Record<string, number> };
  const bank = await getJson<Statement>(`${urls.bank}/v1/statement`);
  const wallet = await getJson<Statement>(`${urls.wallet}/v1/statement`);
  const coupon = await getJson<Statement>(`${urls.coupon}/v1/statement`);
  console.log('\nLedgers:');
  console.log(
    `  bank    captures ${bank.totals.captures}, captured ${bank.totals.captured}, refunds ${bank.totals.refunds}`,
  );
  console.log(
    `  wallet  captures ${wallet.totals.captures}, captured ${wallet.totals.captured}, refunds ${wallet.totals.refunds}`,
  );
  console.log(
    `  coupon  issued ${coupon.totals.coupons}: ${coupon.totals.USED} used, ${coupon.totals.ISSUED} back to issued, ${coupon.totals.LOCKED} still locked (a coupon leak if its order is gone)`,
  );
  const ids = new Set(merchant.received.map((n) => n.notifyId));
  console.log(
    `  merchant received ${merchant.received.length} notifications for ${ids.size} trades`,
  );

  const ran = load.started === load.scheduled && load.exitCode === 0;
  if (!ran)
    console.log(
      `\nthe engine started ${load.started} of ${load.scheduled} arrivals (${load.dropped} dropped)${load.warnings.length ? `: ${load.warnings.join('; ')}` : ''}`,
    );
  if (o.keep) {
    console.log('\nMocks still up (--keep); Ctrl-C stops them.');
    return;
  }
  await stop();
  console.log(
    '\nTour done. `npx flashcrowd mock all --profile mock-gateways/profiles/demo.json` keeps the mocks up; docs/CHAOS.md has every knob.',
  );
  process.exitCode = ran ? 0 : 1;
}

/** The engine's end-of-traffic summary: arrivals, requests, latency, answers. */
function printLoad(r: LoadResult) {
  const m = r.summary?.metrics ?? {};
  const count = (name: string) => m[name]?.values.count ?? 0;
  const d = m.http_req_duration?.values ?? {};
  const ms = (k: string) => (d[k] === undefined ? '-' : `${d[k]!.toFixed(1)} ms`);
  console.log(
    `\n${r.engine.detail}: ${r.started} arrivals started of ${r.scheduled}, ${r.dropped} dropped; ` +
      `http_reqs ${count('http_reqs')}, failed ${((m.http_req_failed?.values.rate ?? 0) * 100).toFixed(1)}%; ` +
      `http_req_duration med ${ms('med')}, p(99) ${ms('p(99)')}, max ${ms('max')}`,
  );
}
