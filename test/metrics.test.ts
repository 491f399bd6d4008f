// Every service's /metrics passes `promtool check metrics` (Prometheus's own
// linter) after traffic that touches every outcome, and the counters count.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_FACTORIES, SERVICE_NAMES } from '../mock-gateways/index.ts';
import type { RunningService } from '../mock-gateways/service.ts';
import { counterRows } from '../harness/prom.ts';
import { findTool } from '../harness/tools.ts';
import { call, rawRequest, startMock } from './support/http.ts';

const promtool = findTool('promtool');
const services: RunningService[] = [];

beforeAll(async () => {
  for (const name of SERVICE_NAMES) {
    const factory = SERVICE_FACTORIES[name];
    if (!factory) throw new Error(`service ${name} is not registered in mock-gateways/index.ts`);
    services.push(
      await startMock(factory(), {
        profile: {
          errors: [
            { rate: 0.3, kind: 'http', status: 503 },
            { rate: 0.1, kind: 'reset' },
          ],
        },
      }),
    );
  }
  // Traffic: a mix of injected errors, resets, 404s and bad input on each service.
  for (const s of services) {
    for (let i = 0; i < 30; i++) await rawRequest(`${s.url}/v1/statement`);
    await call(s.url, 'GET', '/no/such/route');
    await call(s.url, 'POST', '/v1/payments', '{bad json');
  }
});
afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
});

describe('Prometheus metrics', () => {
  it('promtool is installed (npm test installs it through scripts/setup.mjs)', () => {
    expect(
      promtool,
      'promtool not found in .tools/bin or PATH: run `node scripts/setup.mjs --for-tests`',
    ).toBeDefined();
  });

  for (const name of SERVICE_NAMES) {
    it(`${name}: /metrics passes promtool check metrics with no findings`, async () => {
      const s = services.find((x) => x.name === name)!;
      const text = await (await fetch(`${s.url}/metrics`)).text();
      const r = spawnSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
      expect(r.status).toBe(0);
    });

    it(`${name}: requests and injected faults are counted by operation, outcome and kind`, async () => {
      const s = services.find((x) => x.name === name)!;
      const rows = counterRows(await (await fetch(`${s.url}/metrics`)).text(), 'flashcrowd_mock_');
      const stmt = rows.filter(
        (r) => r.name === 'flashcrowd_mock_requests_total' && r.labels.operation === 'statement',
      );
      expect(stmt.reduce((a, r) => a + r.value, 0)).toBe(30);
      const faults = rows.filter(
        (r) =>
          r.name === 'flashcrowd_mock_faults_injected_total' && r.labels.operation === 'statement',
      );
      const byKind = Object.fromEntries(faults.map((f) => [f.labels.kind, f.value]));
      expect((byKind.http ?? 0) + (byKind.reset ?? 0)).toBe(
        stmt.filter((r) => r.labels.outcome !== 'ok').reduce((a, r) => a + r.value, 0),
      );
      expect(
        rows.find((r) => r.name === 'flashcrowd_mock_in_flight_requests')?.labels.service,
      ).toBe(name);
    });
  }
});
