// Start one or all mock services from the CLI: read a profile file, pick
// ports, print URLs, stop cleanly on a signal.
import { readFileSync } from 'node:fs';
import { SERVICE_FACTORIES, SERVICE_NAMES } from '../mock-gateways/index.ts';
import { startService, type RunningService, type ServiceName } from '../mock-gateways/service.ts';
import { createWallet } from '../mock-gateways/wallet/service.ts';
import { UsageError } from './errors.ts';

export type MockTarget = ServiceName | 'all';

/**
 * Read a profile file. It holds either one service's profile, or an object
 * keyed by service name (`{"bank": {...}, "wallet": {...}}`) for several.
 */
export function readProfileFile(
  file: string,
): Partial<Record<ServiceName, unknown>> | { single: unknown } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read profile file ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`profile file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new UsageError(`profile file ${file} must hold a JSON object`);
  const keys = Object.keys(json);
  if (keys.length > 0 && keys.every((k) => (SERVICE_NAMES as readonly string[]).includes(k)))
    return json as Partial<Record<ServiceName, unknown>>;
  return { single: json };
}

export interface StartMocksOptions {
  target: MockTarget;
  port?: number;
  host?: string;
  seed?: number;
  profileFile?: string;
  adminRemote?: boolean;
  /** The wallet accepts notifyUrls outside loopback (its clients are elsewhere: a non-loopback --host). */
  allowRemoteNotify?: boolean;
  /** The run's time-scale (0 < x <= 1, default 1): multiplies the services' world durations (docs/MOCKS.md). */
  timeScale?: number;
}

/** Start the requested services. With `all` and a non-zero port, services take port, port+1, port+2. */
export async function startMocks(opts: StartMocksOptions): Promise<RunningService[]> {
  const names: ServiceName[] = opts.target === 'all' ? [...SERVICE_NAMES] : [opts.target];
  const profiles = opts.profileFile ? readProfileFile(opts.profileFile) : {};
  if ('single' in profiles && opts.target === 'all')
    throw new UsageError(
      `with "mock all", the profile file must be keyed by service: {"bank": {...}, "wallet": {...}, "coupon": {...}}`,
    );
  const started: RunningService[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const factory = SERVICE_FACTORIES[name];
      if (!factory) throw new UsageError(`the ${name} service is not available in this build`);
      const profile = 'single' in profiles ? profiles.single : profiles[name];
      const port = opts.port ? opts.port + i : 0;
      const def =
        name === 'wallet' && opts.allowRemoteNotify
          ? createWallet({ allowRemoteNotify: true })
          : factory();
      try {
        started.push(
          await startService(def, {
            port,
            host: opts.host ?? '127.0.0.1',
            seed: opts.seed ?? 1,
            profile,
            adminRemote: opts.adminRemote,
            ...(opts.timeScale !== undefined ? { timeScale: opts.timeScale } : {}),
          }),
        );
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { errors?: { field: string; reason: string }[] };
        if (err.code === 'EADDRINUSE')
          throw new UsageError(
            `port ${port} on ${opts.host ?? '127.0.0.1'} is in use (try --port 0 for a free one)`,
          );
        if (err.errors)
          throw new UsageError(
            `invalid ${name} profile in ${opts.profileFile}:\n${err.errors.map((x) => `  ${x.field}: ${x.reason}`).join('\n')}`,
          );
        throw e;
      }
    }
  } catch (e) {
    await Promise.all(started.map((s) => s.close()));
    throw e;
  }
  return started;
}
