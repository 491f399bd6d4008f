// The Grafana dashboard of a flashcrowd run, built with Grafana's foundation
// SDK (@grafana/grafana-foundation-sdk, Apache-2.0) rather than hand-written
// JSON, and written to compose/grafana/dashboards/flashcrowd-run.json, which
// docker-compose.yml's optional `grafana` profile provisions.
//
//   npm run dashboard              write the JSON
//   npm run dashboard -- --check   exit 1 if the committed JSON is out of date
//
// test/prometheus.test.ts fails when the committed file differs from what this
// generates, and evaluates every query of it against a real Prometheus that
// scraped a run. docs/OBSERVABILITY.md describes the panels.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AnnotationQueryBuilder,
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  MappingType,
  RowBuilder,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StateTimelineBuilder } from '@grafana/grafana-foundation-sdk/statetimeline';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import * as prettier from 'prettier';
import { PROJECT_ROOT } from '../harness/tools.ts';

export const DASHBOARD_FILE = join(
  PROJECT_ROOT,
  'compose',
  'grafana',
  'dashboards',
  'flashcrowd-run.json',
);

const ds = { type: 'prometheus', uid: '${datasource}' };
const RATE = '[$__rate_interval]';

const q = (expr: string, legend: string, refId: string) =>
  new DataqueryBuilder().datasource(ds).expr(expr).legendFormat(legend).refId(refId).range();

type Query = [expr: string, legend: string];

/** A time series panel of `queries`, `w` columns wide (of 24). */
function series(
  title: string,
  description: string,
  unit: string,
  queries: Query[],
  pos: { x: number; y: number; w?: number },
) {
  const p = new TimeseriesBuilder()
    .title(title)
    .description(description)
    .datasource(ds)
    .unit(unit)
    .min(0)
    .fillOpacity(10)
    .gridPos({ x: pos.x, y: pos.y, w: pos.w ?? 12, h: 8 });
  queries.forEach(([expr, legend], i) =>
    p.withTarget(q(expr, legend, String.fromCharCode(65 + i))),
  );
  return p;
}

/** The dashboard, as Grafana's JSON model. */
export function buildDashboard() {
  const d = new DashboardBuilder('flashcrowd run')
    .uid('flashcrowd-run')
    .description(
      'One flashcrowd run: the shoppers, the checkout, its dependencies, the stock and the chaos in force. ' +
        'Prometheus scrapes the checkout, the mocks and `flashcrowd run --metrics-port` (docs/OBSERVABILITY.md).',
    )
    .tags(['flashcrowd'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('5s')
    .time({ from: 'now-15m', to: 'now' })
    .timezone('browser')
    .withVariable(
      new DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus'),
    )
    .annotation(
      new AnnotationQueryBuilder()
        .name('Faults in force')
        .datasource(ds)
        .enable(true)
        .iconColor('red')
        .expr('flashcrowd_run_fault_active == 1')
        .step('1s')
        .titleFormat('{{target}}: {{fault}}')
        .tagKeys('target'),
    )
    .annotation(
      new AnnotationQueryBuilder()
        .name('Faults injected by the mocks')
        .datasource(ds)
        .enable(true)
        .iconColor('orange')
        .expr('sum by (service, kind) (increase(flashcrowd_mock_faults_injected_total[1m])) > 0')
        .step('5s')
        .titleFormat('{{service}}: {{kind}} injected')
        .tagKeys('service,kind'),
    );

  d.withRow(new RowBuilder('Shoppers'));
  d.withPanel(
    series(
      'Shoppers and arrivals',
      'Shoppers whose journey is running, and arrivals per second (started and dropped) from the load engine.',
      'short',
      [
        ['sum(flashcrowd_load_shoppers)', 'shoppers'],
        [`sum(rate(flashcrowd_load_arrivals_total${RATE}))`, 'arrivals/s'],
        [`sum(rate(flashcrowd_load_dropped_arrivals_total${RATE}))`, 'dropped/s'],
      ],
      { x: 0, y: 1, w: 24 },
    ),
  );

  d.withRow(new RowBuilder('Checkout'));
  d.withPanel(
    series(
      'Requests by route',
      "The checkout's answers per second, by route.",
      'reqps',
      [[`sum by (route) (rate(flashcrowd_checkout_requests_total${RATE}))`, '{{route}}']],
      { x: 0, y: 10 },
    ),
  );
  d.withPanel(
    series(
      'Latency by route (p50, p99)',
      'Quantiles of the checkout request duration histogram, by route.',
      's',
      [
        [
          `histogram_quantile(0.5, sum by (route, le) (rate(flashcrowd_checkout_request_duration_seconds_bucket${RATE})))`,
          'p50 {{route}}',
        ],
        [
          `histogram_quantile(0.99, sum by (route, le) (rate(flashcrowd_checkout_request_duration_seconds_bucket${RATE})))`,
          'p99 {{route}}',
        ],
      ],
      { x: 12, y: 10 },
    ),
  );
  d.withPanel(
    series(
      'Errors by route',
      'Answers of 400 and above per second, by route and reason (sold_out and limit_reached are refusals by design; see docs/CHECKOUT.md).',
      'reqps',
      [
        [
          `sum by (route, reason) (rate(flashcrowd_checkout_requests_total{status=~"[45].."}${RATE}))`,
          '{{route}} {{reason}}',
        ],
      ],
      { x: 0, y: 18, w: 24 },
    ),
  );

  d.withRow(new RowBuilder('Dependencies'));
  d.withPanel(
    series(
      'Calls by dependency and outcome',
      "The checkout's call attempts per second to the bank, the wallet and the coupon service, by outcome (ok or the failure).",
      'reqps',
      [
        [
          `sum by (dependency, outcome) (rate(flashcrowd_checkout_dependency_calls_total${RATE}))`,
          '{{dependency}} {{outcome}}',
        ],
      ],
      { x: 0, y: 27 },
    ),
  );
  d.withPanel(
    series(
      'Errors by dependency',
      'Failed call attempts per second, by dependency.',
      'reqps',
      [
        [
          `sum by (dependency) (rate(flashcrowd_checkout_dependency_calls_total{outcome!="ok"}${RATE}))`,
          '{{dependency}}',
        ],
      ],
      { x: 12, y: 27 },
    ),
  );
  d.withPanel(
    series(
      'Dependency latency (p99, as the mocks answer)',
      "p99 of each mock's request duration, injected latency included.",
      's',
      [
        [
          `histogram_quantile(0.99, sum by (service, le) (rate(flashcrowd_mock_request_duration_seconds_bucket${RATE})))`,
          '{{service}}',
        ],
      ],
      { x: 0, y: 35 },
    ),
  );
  d.withPanel(
    series(
      'Retries',
      'Retried call attempts per second, by dependency (hardened build: within the retry budget).',
      'reqps',
      [
        [
          `sum by (dependency) (rate(flashcrowd_checkout_dependency_retries_total${RATE}))`,
          '{{dependency}}',
        ],
      ],
      { x: 12, y: 35 },
    ),
  );
  d.withPanel(
    new StateTimelineBuilder()
      .title('Breaker state')
      .description(
        'Each circuit breaker: 0 closed, 1 open, 2 half-open, 3 isolated (hardened build).',
      )
      .datasource(ds)
      .gridPos({ x: 0, y: 43, w: 24, h: 6 })
      .mappings([
        {
          type: MappingType.ValueToText,
          options: {
            '0': { text: 'closed', color: 'green', index: 0 },
            '1': { text: 'open', color: 'red', index: 1 },
            '2': { text: 'half-open', color: 'yellow', index: 2 },
            '3': { text: 'isolated', color: 'purple', index: 3 },
          },
        },
      ])
      .withTarget(
        q(
          'max by (dependency, key) (flashcrowd_checkout_breaker_state)',
          '{{dependency}} {{key}}',
          'A',
        ),
      ),
  );

  d.withRow(new RowBuilder('Stock, coupons, notifications'));
  d.withPanel(
    series(
      'Stock',
      "The sale's units summed over its SKUs: available, reserved (held by unpaid orders), sold.",
      'short',
      [['sum by (state) (flashcrowd_run_stock_units)', '{{state}}']],
      { x: 0, y: 50, w: 8 },
    ),
  );
  d.withPanel(
    series(
      'Coupons locked',
      'Coupons an order holds now (the coupon service).',
      'short',
      [['sum(flashcrowd_mock_level{level="coupons_locked"})', 'locked']],
      { x: 8, y: 50, w: 8 },
    ),
  );
  d.withPanel(
    series(
      'Notify backlog',
      'Wallet payment notifications not yet acknowledged or given up.',
      'short',
      [['sum(flashcrowd_mock_level{level="notify_backlog"})', 'backlog']],
      { x: 16, y: 50, w: 8 },
    ),
  );
  d.withPanel(
    series(
      'Faults injected',
      'Faults the mocks’ chaos engines injected per second, by service and kind (the annotations mark them too).',
      'short',
      [
        [
          `sum by (service, kind) (rate(flashcrowd_mock_faults_injected_total${RATE}))`,
          '{{service}} {{kind}}',
        ],
      ],
      { x: 0, y: 58, w: 24 },
    ),
  );
  return d.build();
}

/** The file's text, formatted with the repository's prettier settings. */
export async function dashboardText(): Promise<string> {
  const options = (await prettier.resolveConfig(DASHBOARD_FILE)) ?? {};
  return prettier.format(JSON.stringify(buildDashboard(), null, 2), {
    ...options,
    filepath: DASHBOARD_FILE,
  });
}

async function main(argv: string[]): Promise<number> {
  const text = await dashboardText();
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(DASHBOARD_FILE, 'utf8');
    } catch {
      /* missing: out of date */
    }
    if (current === text) {
      console.log(`${DASHBOARD_FILE} is up to date`);
      return 0;
    }
    console.error(`${DASHBOARD_FILE} is out of date: run npm run dashboard`);
    return 1;
  }
  writeFileSync(DASHBOARD_FILE, text);
  console.log(`wrote ${DASHBOARD_FILE}`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = await main(process.argv.slice(2));
