// `flashcrowd prometheus-config`: a Prometheus configuration that scrapes a
// flashcrowd stack (the checkout instances, the three mocks) and a run's own
// endpoint (`flashcrowd run --metrics-port N`). Plain YAML written here (no
// dependency), checked by `promtool check config` in test/prometheus.test.ts.
// compose/prometheus.yml is the command's output with no options.
import { UsageError } from './errors.ts';

export interface PrometheusTargets {
  checkout: string[];
  bank?: string;
  wallet?: string;
  coupon?: string;
  /** The run's own endpoint (host:port of --metrics-port). */
  run?: string;
}

/** The port docs and compose use for `flashcrowd run --metrics-port`. */
export const RUN_METRICS_PORT = 9464;

/**
 * docker-compose.yml's published ports on loopback, and the harness's
 * --metrics-port 9464: the defaults of the command, and compose/prometheus.yml
 * (compose's Prometheus runs in the host's network namespace).
 */
export const DEFAULT_TARGETS: PrometheusTargets = {
  checkout: ['127.0.0.1:8100'],
  bank: '127.0.0.1:8101',
  wallet: '127.0.0.1:8102',
  coupon: '127.0.0.1:8103',
  run: `127.0.0.1:${RUN_METRICS_PORT}`,
};

/** host:port from a URL (http://127.0.0.1:8100/) or host:port, or a usage error naming the flag. */
export function hostPort(flag: string, v: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`${flag} must be host:port or an http URL, got "${v}"`);
  }
  if (u.protocol !== 'http:')
    throw new UsageError(`${flag} must be plain http (the services serve no TLS), got "${v}"`);
  if (!u.port) throw new UsageError(`${flag} needs a port, got "${v}"`);
  if (u.pathname !== '/' || u.search)
    throw new UsageError(`${flag} takes host:port only (metrics are at /metrics), got "${v}"`);
  return `${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${u.port}`;
}

/** A Prometheus duration ("1s", "500ms", "15s"), or a usage error. */
export function checkDuration(flag: string, v: string): string {
  if (!/^(\d+(ms|s|m|h))+$/.test(v) || /^0+(ms|s|m|h)$/.test(v))
    throw new UsageError(
      `${flag} must be a Prometheus duration such as 1s, 500ms or 15s, got "${v}"`,
    );
  return v;
}

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The configuration, one job per service (job label = service name). */
export function prometheusConfig(
  t: PrometheusTargets,
  o: { scrapeInterval?: string; header?: string } = {},
): string {
  const interval = o.scrapeInterval ?? '1s';
  const jobs: [string, string[]][] = [
    ['checkout', t.checkout],
    ['bank', t.bank ? [t.bank] : []],
    ['wallet', t.wallet ? [t.wallet] : []],
    ['coupon', t.coupon ? [t.coupon] : []],
    ['run', t.run ? [t.run] : []],
  ];
  const lines = [
    ...(o.header ? o.header.split('\n').map((l) => `# ${l}`.trimEnd()) : []),
    'global:',
    `  scrape_interval: ${interval}`,
    // A scrape must end before the next one starts.
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
  ];
  for (const [job, targets] of jobs) {
    if (targets.length === 0) continue;
    lines.push(
      `  - job_name: ${job}`,
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: [${targets.map(q).join(', ')}]`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The committed compose/prometheus.yml: the defaults, with a word on where they come from. */
export function composePrometheusConfig(): string {
  return prometheusConfig(DEFAULT_TARGETS, {
    scrapeInterval: '1s',
    header:
      'Written by `flashcrowd prometheus-config > compose/prometheus.yml` (test/prometheus.test.ts checks it is current).\n' +
      "docker-compose.yml's Prometheus runs in the host's network: it scrapes the ports compose publishes on\n" +
      'loopback and the harness on the host: `flashcrowd run <preset> --metrics-port 9464 --target ...` (docs/OBSERVABILITY.md).',
  });
}
