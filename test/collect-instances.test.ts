// The collector over several checkout instances, against real loopback HTTP
// servers serving /metrics texts the test writes: every instance's counts
// summed, a restarted instance counted from 0 again (told by its process
// start time, even when its new count is above the old one), a dead instance
// a warning rather than a null tick, stock read from an instance that
// answers, gauges summed or max'ed; and the final readings, which count what
// a killed instance had counted by its last scrape.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from '../harness/collect.ts';
import { counterRows } from '../harness/prom.ts';
import { finalReadings } from '../harness/run/metrics.ts';
import { waitFor } from './support/checkout.ts';

/** What one fake instance serves: its process (start time), its counts, its gauges; down: 500s. */
interface State {
  start: number;
  created: number;
  paid: number;
  loopDelayS: number;
  bulkhead: number;
  down: boolean;
}

function metricsText(s: State): string {
  return [
    '# TYPE flashcrowd_checkout_process_start_time_seconds gauge',
    `flashcrowd_checkout_process_start_time_seconds{service="checkout"} ${s.start}`,
    '# TYPE flashcrowd_checkout_requests_total counter',
    `flashcrowd_checkout_requests_total{route="orders.create",status="201",reason="none"} ${s.created}`,
    '# TYPE flashcrowd_checkout_order_events_total counter',
    `flashcrowd_checkout_order_events_total{event="paid"} ${s.paid}`,
    '# TYPE flashcrowd_checkout_event_loop_delay_seconds gauge',
    `flashcrowd_checkout_event_loop_delay_seconds ${s.loopDelayS}`,
    '# TYPE flashcrowd_checkout_bulkhead_queued gauge',
    `flashcrowd_checkout_bulkhead_queued{dependency="bank"} ${s.bulkhead}`,
    '',
  ].join('\n');
}

async function fakeInstance(state: State) {
  const server = http.createServer((req, res) => {
    if (state.down) {
      res.writeHead(500).end();
      return;
    }
    if (req.url === '/metrics') res.writeHead(200).end(metricsText(state));
    else if (req.url === '/admin/stock')
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          data: [{ sku: 'lip', initial: 10, available: 7, reserved: 1, sold: 2 }],
        }),
      );
    else res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const a: State = { start: 1000, created: 10, paid: 1, loopDelayS: 0.02, bulkhead: 3, down: false };
const b: State = { start: 2000, created: 5, paid: 0, loopDelayS: 0.05, bulkhead: 4, down: false };
let servers: Awaited<ReturnType<typeof fakeInstance>>[] = [];

beforeAll(async () => {
  servers = [await fakeInstance(a), await fakeInstance(b)];
});
afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('the collector over two checkout instances, one restarted', () => {
  it('sums every process of every instance exactly, warns for a dead one, and the final readings keep its counts', async () => {
    const urls = servers.map((s) => s.url);
    const c = new Collector({
      intervalMs: 60,
      checkoutUrl: urls[0]!,
      checkoutUrls: urls,
      startedAtMs: Date.now(),
    });
    const settle = async () => {
      // Two more ticks: the one in flight may have read the state before the change.
      const n = c.snapshot().ticks + 2;
      await waitFor(`tick ${n}`, async () => c.snapshot().ticks >= n);
    };
    await c.start();
    await settle();
    const level = (k: string) => c.timeSeries().series[k]?.at(-1);
    expect(level('loop_delay_ms')).toBeCloseTo(50, 9); // the max of 20 and 50 ms
    expect(level('bulkhead_queued{dependency=bank}')).toBe(7); // summed
    Object.assign(a, { created: 30, paid: 4 });
    Object.assign(b, { created: 15, paid: 2 });
    await settle();
    // A dies: B still answers, so the ticks are not null; A's counts are carried.
    a.down = true;
    await settle();
    expect(level('bulkhead_queued{dependency=bank}')).toBe(4); // A's left the sum
    // A restarted: a new process counting from 0, up to 12.
    Object.assign(a, { down: false, start: 1500, created: 12, paid: 3 });
    b.created = 25;
    await settle();
    // Restarted again; its new count (45) is above the last one (12): still all new.
    Object.assign(a, { start: 1700, created: 45, paid: 5 });
    await settle();
    // Killed for good after its last scrape.
    a.down = true;
    await settle();
    const series = await c.stop();

    const totals = c.totals();
    // (30 - 10) + 12 + 45 from A's three processes, (25 - 5) from B.
    expect(totals['requests{route=orders.create}']).toBe(97);
    // (4 - 1) + 3 + 5 from A, 2 from B.
    expect(totals.paid).toBe(13);
    expect(c.warnings().some((w) => /checkout: instance 0 .* failed: HTTP 500/.test(w))).toBe(true);
    const rates = series.series['requests_per_s{route=orders.create}']!;
    expect(
      rates.slice(1).every((v) => v !== null),
      'no null tick while B answered',
    ).toBe(true);
    expect(series.series['stock_available{sku=lip}']!.at(-1)).toBe(7);

    // The final readings: B now, and every process of A by its last scrape.
    const readings = await finalReadings(
      {
        urls: { checkout: urls[0]!, checkouts: urls, bank: '', wallet: '', coupon: '', redis: '' },
        haveMocks: false,
      },
      c,
    );
    const sum = (name: string) =>
      counterRows(readings.checkoutProm!, name)
        .filter((r) => r.name === name)
        .reduce((n, r) => n + r.value, 0);
    expect(sum('flashcrowd_checkout_requests_total')).toBe(30 + 12 + 45 + 25);
    expect(sum('flashcrowd_checkout_order_events_total')).toBe(4 + 3 + 5 + 2);
    expect(readings.instanceRequests).toEqual([30 + 12 + 45, 25]);
    expect(readings.stock).toEqual([
      { sku: 'lip', initial: 10, available: 7, reserved: 1, sold: 2 },
    ]);
  });
});
