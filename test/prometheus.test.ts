// Prometheus and the Grafana dashboard, really: the configuration flashcrowd
// ships passes `promtool check config`; the real Prometheus server (installed
// by set-up into .tools/bin) scrapes a running stack (`flashcrowd up`) and the
// run's own endpoint (`flashcrowd run --metrics-port`) during a short, small
// run of a preset with faults; then, through Prometheus's HTTP API, every
// series the dashboard queries has samples and every query of every panel and
// annotation evaluates without error and returns data. The committed
// dashboard JSON is what `npm run dashboard` generates, and the run's metrics
// pass `promtool check metrics` as the services' do (test/metrics.test.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { UsageError } from '../harness/errors.ts';
import {
  checkDuration,
  composePrometheusConfig,
  hostPort,
  prometheusConfig,
} from '../harness/prometheus-config.ts';
import { freePort } from '../harness/redis.ts';
import { runRegistry } from '../harness/run-exporter.ts';
import { findTool, PROJECT_ROOT } from '../harness/tools.ts';
import { DASHBOARD_FILE, dashboardText } from '../scripts/dashboard.ts';
import { runCli } from './support/cli.ts';
import { startUp, type UpStack } from './support/up.ts';

const promtool = findTool('promtool');
const prometheusBin = findTool('prometheus');
const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-prometheus-'));
const COMPOSE_PROMETHEUS = join(PROJECT_ROOT, 'compose', 'prometheus.yml');

function promtoolCheckConfig(file: string) {
  return spawnSync(promtool!, ['check', 'config', file], { encoding: 'utf8' });
}

interface Dashboard {
  panels: { title: string; type: string; targets?: { expr: string }[] }[];
  annotations: { list: { name: string; expr?: string }[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;

/** Every query of the dashboard: [where, PromQL]. */
function dashboardQueries(d: Dashboard): [string, string][] {
  return [
    ...d.panels.flatMap((p) =>
      (p.targets ?? []).map((t, i): [string, string] => [`panel "${p.title}" #${i}`, t.expr]),
    ),
    ...d.annotations.list
      .filter((a) => a.expr)
      .map((a): [string, string] => [`annotation "${a.name}"`, a.expr!]),
  ];
}

/** The metric names a query reads (a histogram's by its _bucket series). */
function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bflashcrowd_[a-z_]+\b/g) ?? [])];
}

describe('the configuration and the dashboard as committed', () => {
  it('compose/prometheus.yml is `flashcrowd prometheus-config`, and promtool checks it', () => {
    expect(promtool, 'promtool: run `node scripts/setup.mjs --for-tests`').toBeDefined();
    expect(readFileSync(COMPOSE_PROMETHEUS, 'utf8')).toBe(composePrometheusConfig());
    const r = promtoolCheckConfig(COMPOSE_PROMETHEUS);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // promtool can fail: a timeout longer than the interval is refused.
    const bad = join(tmp, 'bad.yml');
    writeFileSync(
      bad,
      composePrometheusConfig().replace('scrape_timeout: 1s', 'scrape_timeout: 5s'),
    );
    expect(promtoolCheckConfig(bad).status).not.toBe(0);
  });

  it('the command refuses targets and intervals Prometheus would not take', () => {
    expect(hostPort('--bank', 'http://127.0.0.1:8101/')).toBe('127.0.0.1:8101');
    expect(hostPort('--bank', 'localhost:9')).toBe('localhost:9');
    expect(() => hostPort('--bank', '127.0.0.1')).toThrow(UsageError);
    expect(() => hostPort('--bank', 'https://x:1')).toThrow(/plain http/);
    expect(() => hostPort('--bank', 'http://x:1/metrics')).toThrow(/host:port only/);
    expect(checkDuration('--scrape-interval', '500ms')).toBe('500ms');
    expect(() => checkDuration('--scrape-interval', '1')).toThrow(/duration/);
    expect(() => checkDuration('--scrape-interval', '0s')).toThrow(/duration/);
  });

  it('the committed dashboard is what `npm run dashboard` generates', async () => {
    expect(readFileSync(DASHBOARD_FILE, 'utf8')).toBe(await dashboardText());
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThanOrEqual(15);
    const titles = dashboard.panels.map((p) => p.title);
    for (const t of [
      'Shoppers and arrivals',
      'Latency by route (p50, p99)',
      'Errors by route',
      'Calls by dependency and outcome',
      'Errors by dependency',
      'Dependency latency (p99, as the mocks answer)',
      'Breaker state',
      'Retries',
      'Stock',
      'Coupons locked',
      'Notify backlog',
    ])
      expect(titles).toContain(t);
    expect(dashboard.annotations.list.map((a) => a.name)).toContain('Faults in force');
  });

  it('docker-compose.yml mounts these files into Prometheus and Grafana (its optional profile)', () => {
    const doc = parse(readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), {
      merge: true,
    }) as { services: Record<string, { profiles?: string[]; volumes?: string[] }> };
    const { prometheus, grafana } = doc.services;
    expect(prometheus?.profiles).toBeUndefined();
    expect(prometheus?.volumes).toContain(
      './compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    );
    expect(grafana?.profiles).toEqual(['grafana']);
    for (const v of grafana!.volumes!)
      expect(existsSync(join(PROJECT_ROOT, v.split(':')[0]!)), v).toBe(true);
    expect(
      existsSync(join(PROJECT_ROOT, 'compose/grafana/provisioning/dashboards/flashcrowd.yml')),
    ).toBe(true);
  });

  it("the run's metrics pass promtool check metrics", async () => {
    const registry = runRegistry(() => ({
      load: () => ({ started: 10, dropped: 1, vus: 3 }),
      stock: () => ({ available: 5, reserved: 2, sold: 3 }),
      bands: [{ service: 'bank', label: 'http 503 20%', fromS: 0, toS: null }],
      startMs: Date.now(),
      preset: 'p',
      variant: '',
    }));
    const text = await registry.metrics();
    expect(text).toMatch(/^flashcrowd_load_arrivals_total\{service="run"\} 10$/m);
    expect(text).toMatch(
      /^flashcrowd_run_fault_active\{target="bank",fault="http 503 20%",service="run"\} 1$/m,
    );
    const r = spawnSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect((r.stdout + r.stderr).trim()).toBe('');
  });
});

// ----------------------------------------------------------------- a real Prometheus, a real run
describe('Prometheus scraping a run', () => {
  let up: UpStack;
  let prom: ChildProcess;
  let promUrl = '';
  let promLog = '';
  const window = { start: 0, end: 0 };
  let run = { code: null as number | null, log: '' };

  beforeAll(async () => {
    expect(prometheusBin, 'prometheus: run `node scripts/setup.mjs --for-tests`').toBeDefined();
    // The checkout's own durations (payment deadline) at the run's time-scale.
    up = await startUp(['--set', 'timeScale=0.01']);
    const runPort = await freePort();
    const config = join(tmp, 'prometheus.yml');
    writeFileSync(
      config,
      prometheusConfig({
        checkout: [hostPort('--checkout', up.urls.checkout)],
        bank: hostPort('--bank', up.urls.bank),
        wallet: hostPort('--wallet', up.urls.wallet),
        coupon: hostPort('--coupon', up.urls.coupon),
        run: `127.0.0.1:${runPort}`,
      }),
    );
    const check = promtoolCheckConfig(config);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    prom = spawn(
      prometheusBin!,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(tmp, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prom.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    for (let i = 0; ; i++) {
      const ok = await fetch(`${promUrl}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 100) throw new Error(`prometheus not ready after 20 s:\n${promLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // A short, small run of a preset with faults at the bank (retries, breakers,
    // injected faults, coupons, wallet notifications), against the `up` stack.
    window.start = Date.now() / 1000 - 2;
    run = await runCli(
      [
        'run',
        'retry-storm',
        '--variant',
        'hardened',
        '--time-scale',
        '0.01',
        '--load-scale',
        '0.06',
        '--target',
        up.urls.checkout,
        '--bank',
        up.urls.bank,
        '--wallet',
        up.urls.wallet,
        '--coupon',
        up.urls.coupon,
        '--redis',
        up.urls.redis,
        '--metrics-port',
        String(runPort),
        '--out',
        join(tmp, 'run'),
        '--progress',
        'none',
      ],
      { timeoutMs: 120_000 },
    );
    // Two more scrapes of the stack after the run.
    await new Promise((r) => setTimeout(r, 2_500));
    window.end = Date.now() / 1000;
  }, 180_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const done = once(prom, 'exit');
      prom.kill('SIGTERM');
      await done;
    }
    await up?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function api(path: string, params: Record<string, string>) {
    const r = await fetch(`${promUrl}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await r.json()) as {
      status: string;
      error?: string;
      data: { resultType: string; result: { metric: Record<string, string> }[] };
    };
    return body;
  }

  it('the run ran (exit 0 or 1: its budgets are not what this test is about)', () => {
    expect([0, 1], run.log).toContain(run.code);
    expect(run.log).toMatch(/traffic: /);
  });

  it('every target was up', async () => {
    const r = await api('query', { query: 'max_over_time(up[5m])', time: String(window.end) });
    expect(r.status, r.error).toBe('success');
    const jobs = Object.fromEntries(r.data.result.map((s) => [s.metric.job, s]));
    expect(Object.keys(jobs).sort(), promLog).toEqual([
      'bank',
      'checkout',
      'coupon',
      'run',
      'wallet',
    ]);
  });

  it('every series the dashboard queries has samples', async () => {
    const names = [...new Set(dashboardQueries(dashboard).flatMap(([, e]) => metricNames(e)))];
    expect(names.length).toBeGreaterThanOrEqual(12);
    const missing: string[] = [];
    for (const name of names) {
      const r = await api('query', {
        query: `count_over_time({__name__="${name}"}[5m])`,
        time: String(window.end),
      });
      expect(r.status, `${name}: ${r.error}`).toBe('success');
      if (r.data.result.length === 0) missing.push(name);
    }
    expect(missing, run.log).toEqual([]);
  });

  it("every panel's and annotation's PromQL evaluates without error and returns data", async () => {
    const empty: string[] = [];
    for (const [where, expr] of dashboardQueries(dashboard)) {
      // Grafana's $__rate_interval at a 1 s scrape interval: four intervals.
      const query = expr.replaceAll('$__rate_interval', '4s');
      const r = await api('query_range', {
        query,
        start: String(window.start),
        end: String(window.end),
        step: '1',
      });
      expect(r.status, `${where}: ${query}: ${r.error}`).toBe('success');
      if (r.data.result.length === 0) empty.push(`${where}: ${query}`);
    }
    expect(empty, run.log).toEqual([]);
  });

  it('a query of a series nobody exports returns nothing (the check above can fail)', async () => {
    const r = await api('query_range', {
      query: 'sum(rate(flashcrowd_checkout_no_such_series_total[4s]))',
      start: String(window.start),
      end: String(window.end),
      step: '1',
    });
    expect(r.status).toBe('success');
    expect(r.data.result).toEqual([]);
  });
});
