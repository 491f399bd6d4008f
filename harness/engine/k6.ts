// The user's k6 as an engine: runs the plan's k6 script (the same journey
// through scenarios/k6-driver.ts) with harness/k6.ts, reads k6's REST API
// each second for the snapshot, and its summary file for the result.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import { describeK6, resolveK6, runK6, type K6Result, type K6Runner } from '../k6.ts';
import { UsageError } from '../errors.ts';
import { freePort } from '../redis.ts';
import type { EngineSummary } from './metrics.ts';
import { scheduledCount } from './schedule.ts';
import {
  EngineStartError,
  type LoadEngine,
  type LoadPlan,
  type LoadResult,
  type LoadSnapshot,
} from './types.ts';

const k6MetricsSchema = z.object({
  data: z.array(
    z.object({
      id: z.string(),
      attributes: z.object({ sample: z.record(z.string(), z.number()).optional() }).passthrough(),
    }),
  ),
});

/** Which k6 (binary or container), resolved before the stack starts; exit 2 when none. */
export async function resolveK6Engine(): Promise<K6Engine> {
  try {
    return new K6Engine(await resolveK6());
  } catch (e) {
    if (e instanceof UsageError) throw new EngineStartError(e.message);
    throw e;
  }
}

/** Outputs whose value after `=` is a file k6 writes (`json=results.json`, `csv=out.csv.gz`). */
const FILE_OUTPUTS = new Set(['json', 'csv']);

/**
 * The k6 arguments for the user's outputs (`--k6-out VALUE`, repeatable): each
 * one `--out VALUE`, in order, with a file output's relative path made
 * absolute from the working directory (k6 in a container runs in the
 * script's folder) and its folder in `mounts` (bind-mounted read-write there).
 * Everything else (`experimental-prometheus-rw`, `web-dashboard`,
 * `opentelemetry`, `influxdb=http://...`) passes as given; its settings come
 * from K6_* variables, which reach k6 as they are (docs/SCENARIOS.md).
 */
export function k6OutArgs(
  outputs: readonly string[],
  cwd = process.cwd(),
): { args: string[]; mounts: string[] } {
  const args: string[] = [];
  const mounts: string[] = [];
  for (const raw of outputs) {
    const v = raw.trim();
    if (!v || v.startsWith('-'))
      throw new UsageError(
        `--k6-out takes a k6 output such as json=results.json or experimental-prometheus-rw, got "${raw}"`,
      );
    const eq = v.indexOf('=');
    const kind = eq < 0 ? v : v.slice(0, eq);
    if (eq > 0 && FILE_OUTPUTS.has(kind)) {
      const file = resolvePath(cwd, v.slice(eq + 1));
      mounts.push(dirname(file));
      args.push('--out', `${kind}=${file}`);
    } else args.push('--out', v);
  }
  return { args, mounts: [...new Set(mounts)] };
}

const versions = new Map<string, string>();

/** The k6's version, asked once per binary (a run makes one engine per variant). */
function k6Version(k6: K6Runner): string {
  if (k6.kind === 'container') return k6.image.split(':')[1] ?? 'unknown';
  let v = versions.get(k6.path);
  if (v === undefined) {
    const out = spawnSync(k6.path, ['version'], { encoding: 'utf8' }).stdout ?? '';
    v = out.match(/v\d+\.\d+\.\d+\S*/)?.[0] ?? 'unknown';
    versions.set(k6.path, v);
  }
  return v;
}

export class K6Engine implements LoadEngine {
  readonly name = 'k6' as const;
  private run: Promise<K6Result> | undefined;
  private plan: LoadPlan | undefined;
  private latest: LoadSnapshot | undefined;
  private poller: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private readonly version: string;

  /** `outputs`: the user's k6 outputs (--k6-out), each forwarded as `--out` (k6OutArgs). */
  constructor(
    readonly k6: K6Runner,
    private readonly outputs: readonly string[] = [],
  ) {
    this.version = k6Version(k6);
  }

  describe(): string {
    return `k6 ${this.version}: ${describeK6(this.k6)}`;
  }

  /** k6 starts its scenario as soon as it has read the script: the instant it is spawned. */
  async start(plan: LoadPlan): Promise<number> {
    if (!plan.k6) throw new EngineStartError(`the ${plan.journey.name} journey has no k6 script`);
    this.plan = plan;
    const port = await freePort();
    this.startedAt = Date.now();
    const out = k6OutArgs(this.outputs);
    this.run = runK6({
      k6: this.k6,
      script: plan.k6.script,
      mounts: [...(plan.k6.mounts ?? []), ...out.mounts],
      args: out.args,
      address: `127.0.0.1:${port}`,
      env: plan.k6.env,
      capture: true,
    });
    this.run.catch(() => undefined);
    this.poller = setInterval(() => void this.poll(`http://127.0.0.1:${port}`), 1_000);
    return this.startedAt;
  }

  private async poll(base: string) {
    try {
      const res = await fetch(`${base}/v1/metrics`, { signal: AbortSignal.timeout(900) });
      const body = k6MetricsSchema.parse(await res.json());
      const get = (id: string, f: string) =>
        body.data.find((m) => m.id === id)?.attributes.sample?.[f] ?? 0;
      const started = get('iterations', 'count');
      this.latest = {
        started,
        dropped: get('dropped_iterations', 'count'),
        vus: get('vus', 'value'),
        elapsedS: (Date.now() - this.startedAt) / 1000,
      };
    } catch {
      /* k6 not up yet, or already gone: keep the last snapshot */
    }
  }

  snapshot(): LoadSnapshot | undefined {
    return this.latest;
  }

  async result(): Promise<LoadResult> {
    if (!this.run || !this.plan?.k6) throw new Error('k6 was not started');
    let r: K6Result;
    try {
      r = await this.run;
    } finally {
      clearInterval(this.poller);
    }
    const warnings: string[] = [];
    if (r.code !== 0 && r.code !== 99)
      warnings.push(`k6 exited with code ${r.code} (its output: k6.log)`);
    let summary: EngineSummary | undefined;
    try {
      summary = JSON.parse(readFileSync(this.plan.k6.summaryFile, 'utf8')) as EngineSummary;
    } catch {
      warnings.push('k6 wrote no summary: k6 metrics are missing (see k6.log)');
    }
    const count = (name: string) => summary?.metrics[name]?.values.count;
    const iterations = count('iterations');
    return {
      engine: { name: 'k6', version: this.version, detail: describeK6(this.k6) },
      summary,
      scheduled: scheduledCount(this.plan.shape),
      started: iterations ?? null,
      dropped: count('dropped_iterations') ?? 0,
      exitCode: r.code,
      log: `${r.stdout}\n${r.stderr}`,
      logFile: 'k6.log',
      warnings,
    };
  }

  async stop(): Promise<void> {
    // k6 got the terminal's SIGINT (or the container its forwarded one) and stops itself.
    await this.run?.catch(() => undefined);
  }
}
