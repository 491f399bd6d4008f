// Run the user's k6 (`flashcrowd run --engine k6`): the binary named by
// FLASHCROWD_K6, else k6 on PATH, else the grafana/k6 image of the pinned
// version through testcontainers where a Docker engine answers, else a
// UsageError saying how to get k6. flashcrowd never downloads, builds or
// installs k6 (AGPL-3.0; flashcrowd is MIT): a k6 left in .tools/bin by an
// older set-up is not used unless FLASHCROWD_K6 names it.
//
// The container shares this machine's network (`--network host`), so the
// loopback URLs the harness passes (the stack, k6's REST API) mean the same
// thing inside it; the script's folder and the folders k6 reads or writes
// (`mounts`) are bind-mounted at the same absolute paths, and k6 runs as this
// user so the files it writes are ours. Host networking reaches this machine's
// 127.0.0.1 only with a Linux engine on Linux: Docker Desktop (a VM) and remote
// engines are refused with a message saying to install k6.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import { delimiter, dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { K6_IMAGE, K6_VERSION } from '../scripts/versions.mjs';
import { UsageError } from './errors.ts';
import { freePort } from './redis.ts';
import { findToolIn, TOOLS_BIN } from './tools.ts';

export { K6_IMAGE };

export interface K6RunOptions {
  script: string;
  env?: Record<string, string | number>;
  /** Extra k6 arguments (e.g. --summary-export FILE). */
  args?: string[];
  /** Inherit stdio (default) or capture it. */
  capture?: boolean;
  /** k6's REST API address (default 127.0.0.1:0, a free port nobody reads). */
  address?: string;
  /**
   * Folders k6 reads or writes files in besides the script's own (the files
   * given in `env`): bind-mounted read-write at the same path when k6 runs in a
   * container; unused by the binary.
   */
  mounts?: string[];
  /** Which k6 (from resolveK6); resolved here when not given. */
  k6?: K6Runner;
}

export interface K6Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** How k6 runs: a binary, or the pinned grafana/k6 image through testcontainers. */
export type K6Runner =
  | { kind: 'binary'; path: string; from: 'FLASHCROWD_K6' | 'PATH' }
  | { kind: 'container'; image: string; from: 'FLASHCROWD_K6' | 'fallback' };

/** One line saying which k6 a run uses. */
export function describeK6(k6: K6Runner): string {
  if (k6.kind === 'binary')
    return k6.from === 'FLASHCROWD_K6' ? `${k6.path} (FLASHCROWD_K6)` : k6.path;
  return (
    `the ${k6.image} container through testcontainers` +
    (k6.from === 'FLASHCROWD_K6' ? ' (FLASHCROWD_K6=docker)' : ' (no k6 binary on PATH)')
  );
}

const DOCKER_PROBE_MS = 15_000;
/** Longest wait for k6's REST API to answer from this machine once its container runs. */
const API_PROBE_MS = 120_000;

type DockerCheck = { ok: true } | { ok: false; reason: string };

/**
 * Whether the engine a `unix://` DOCKER_HOST names answers its ping. Given
 * DOCKER_HOST, that engine is the one meant: testcontainers would go on to
 * /var/run/docker.sock and the other usual sockets when it does not answer.
 */
function pingSocket(socketPath: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: DOCKER_PROBE_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? undefined : `HTTP ${res.statusCode} to /_ping`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${DOCKER_PROBE_MS / 1000} s`)));
    req.on('error', (e) => resolve(e.message));
  });
}

/**
 * Whether a k6 container can load this machine's loopback: a Linux host, a
 * Docker engine that answers (the one a `unix://` DOCKER_HOST names, else
 * testcontainers' own discovery: DOCKER_HOST, ~/.testcontainers.properties,
 * the usual sockets), on this machine and not in Docker Desktop's VM.
 */
async function checkDocker(env: NodeJS.ProcessEnv): Promise<DockerCheck> {
  const dockerHost = env.DOCKER_HOST;
  if (process.platform !== 'linux')
    return {
      ok: false,
      reason:
        `a k6 container reaches this machine's 127.0.0.1 only with a Linux Docker engine on Linux ` +
        `(host networking), and this is ${process.platform}`,
    };
  if (dockerHost?.startsWith('unix://')) {
    const failed = await pingSocket(dockerHost.slice('unix://'.length));
    if (failed)
      return {
        ok: false,
        reason: `no Docker engine answered at DOCKER_HOST=${dockerHost} (${failed})`,
      };
  }
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
  } catch (e) {
    return {
      ok: false,
      reason: `the testcontainers package cannot be loaded (${(e as Error).message}); run \`npm install\``,
    };
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const client = await Promise.race([
      tc.getContainerRuntimeClient(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${DOCKER_PROBE_MS / 1000} s`)),
          DOCKER_PROBE_MS,
        );
        timer.unref();
      }),
    ]);
    const rt = client.info.containerRuntime;
    if (/docker desktop/i.test(rt.operatingSystem))
      return {
        ok: false,
        reason:
          "the Docker engine is Docker Desktop, whose host network is its VM's, not this machine's 127.0.0.1, " +
          'so a k6 container could not reach the stack',
      };
    if (!['localhost', '127.0.0.1', '::1'].includes(rt.host))
      return {
        ok: false,
        reason: `the Docker engine runs on ${rt.host}, not on this machine, so a k6 container could not reach its 127.0.0.1`,
      };
    return { ok: true };
  } catch (e) {
    return {
      ok: false,
      reason:
        `no Docker engine answered (testcontainers: ${(e as Error).message}` +
        `${dockerHost ? `; DOCKER_HOST=${dockerHost}` : ''})`,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Which k6 to run. FLASHCROWD_K6 names a k6 binary (e.g. an xk6 build) or is
 * `docker` (the container, even with k6 installed); else k6 on PATH; else the container where a suitable Docker engine answers; else a
 * UsageError naming both what is missing. `dirs`: the folders searched for
 * k6 (default env.PATH); `leftover`: where an older set-up built k6 (named in
 * the error, never used). The Docker engine is found from
 * this process's environment (testcontainers reads it).
 */
export async function resolveK6(
  env: NodeJS.ProcessEnv = process.env,
  dirs: string[] = (env.PATH ?? '').split(delimiter),
  leftover: string = join(TOOLS_BIN, 'k6'),
): Promise<K6Runner> {
  const wanted = env.FLASHCROWD_K6?.trim();
  if (wanted === 'docker') {
    const d = await checkDocker(env);
    if (!d.ok)
      throw new UsageError(
        `FLASHCROWD_K6=docker asks for k6 in the ${K6_IMAGE} container, but ${d.reason}. ` +
          'Unset FLASHCROWD_K6 to use k6 from PATH.',
      );
    return { kind: 'container', image: K6_IMAGE, from: 'FLASHCROWD_K6' };
  }
  if (wanted) {
    const path = resolve(wanted);
    const hint =
      'Set FLASHCROWD_K6 to a k6 binary (e.g. an xk6 build) or to `docker`, or unset it to use k6 from PATH.';
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      throw new UsageError(`FLASHCROWD_K6=${wanted}: no such file. ${hint}`);
    }
    if (!isFile) throw new UsageError(`FLASHCROWD_K6=${wanted}: not a file. ${hint}`);
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new UsageError(`FLASHCROWD_K6=${wanted}: not executable. ${hint}`);
    }
    return { kind: 'binary', path, from: 'FLASHCROWD_K6' };
  }
  const found = findToolIn('k6', dirs);
  if (found) return { kind: 'binary', path: found, from: 'PATH' };
  const d = await checkDocker(env);
  if (d.ok) return { kind: 'container', image: K6_IMAGE, from: 'fallback' };
  throw new UsageError(
    `--engine k6: no k6 on PATH, and FLASHCROWD_K6 is not set. flashcrowd does not install k6 (it is AGPL-3.0): ` +
      `install k6 yourself (https://grafana.com/docs/k6/latest/set-up/install-k6/; flashcrowd is tested with ${K6_VERSION}) ` +
      "and put it on PATH, or set FLASHCROWD_K6 to a k6 binary, or run without --engine k6 (flashcrowd's own engine). " +
      (existsSync(leftover)
        ? `A k6 in ${leftover} was left by an older flashcrowd set-up; it is not used unless FLASHCROWD_K6 names it. `
        : '') +
      `No container fallback either (the ${K6_IMAGE} image through testcontainers): ${d.reason}.`,
  );
}

export async function runK6(opts: K6RunOptions): Promise<K6Result> {
  const k6 = opts.k6 ?? (await resolveK6());
  const envArgs = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const address = opts.address ?? '127.0.0.1:0';
  // No usage report (this machine reaches no such host), and the REST API on a
  // free loopback port so parallel runs never collide on 6565.
  const args = (addr: string, script: string) => [
    'run',
    '--no-usage-report',
    '--address',
    addr,
    ...envArgs,
    ...(opts.args ?? []),
    script,
  ];
  if (k6.kind === 'container') return runInContainer(k6.image, args, address, opts);
  return new Promise((resolve, reject) => {
    const child = spawn(k6.path, args(address, opts.script), {
      stdio: opts.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
      env: { ...process.env, K6_NO_USAGE_REPORT: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** True when anything answers HTTP at http://address/v1/status (k6's REST API). */
async function apiAnswers(address: string): Promise<boolean> {
  try {
    await fetch(`http://${address}/v1/status`, { signal: AbortSignal.timeout(1_000) });
    return true;
  } catch {
    return false;
  }
}

async function runInContainer(
  image: string,
  args: (address: string, script: string) => string[],
  address: string,
  opts: K6RunOptions,
): Promise<K6Result> {
  const { GenericContainer, getContainerRuntimeClient } = await import('testcontainers');
  // Port 0 would leave nothing to probe: pick the free port here.
  const [host = '127.0.0.1', port = '0'] = address.split(/:(?=\d+$)/);
  const apiAddress = port === '0' ? `${host}:${await freePort()}` : address;
  const script = resolve(opts.script);
  const scriptDir = dirname(script);
  const rw = [...new Set((opts.mounts ?? []).map((m) => resolve(m)))].filter(
    (m) => m !== scriptDir,
  );
  // k6's own K6_* settings (K6_OUT, K6_WEB_DASHBOARD...) pass through as they do to the binary.
  const k6Env = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[0].startsWith('K6_') && e[1] !== undefined,
    ),
  );
  const client = await getContainerRuntimeClient();
  if (!opts.capture)
    process.stderr.write(`k6: running ${image} through testcontainers (pulled on first use)\n`);
  const started = await new GenericContainer(image)
    .withNetworkMode('host')
    .withUser(`${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`)
    .withEnvironment({ ...k6Env, K6_NO_USAGE_REPORT: 'true', HOME: '/tmp' })
    .withBindMounts([
      { source: scriptDir, target: scriptDir, mode: 'ro' },
      ...rw.map((m) => ({ source: m, target: m, mode: 'rw' as const })),
    ])
    .withWorkingDir(scriptDir)
    // The image's entrypoint is k6.
    .withCommand(args(apiAddress, script))
    // Kept after exit so its exit code and logs can be read; removed below
    // (and by testcontainers' reaper if this process dies first).
    .withAutoRemove(false)
    .start();
  const container = client.container.getById(started.getId());
  let stdout = '';
  let stderr = '';
  const out = new PassThrough();
  const err = new PassThrough();
  out.on('data', (d: Buffer) => {
    if (opts.capture) stdout += d.toString();
    else process.stdout.write(d);
  });
  err.on('data', (d: Buffer) => {
    if (opts.capture) stderr += d.toString();
    else process.stderr.write(d);
  });
  // Ctrl-C reaches a k6 binary through the terminal, not a container: pass it on.
  const interrupt = () => void container.kill({ signal: 'SIGINT' }).catch(() => undefined);
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    const logs = await container.logs({ follow: true, stdout: true, stderr: true });
    const logsEnded = new Promise<void>((r) => {
      logs.on('end', () => r());
      logs.on('error', () => r());
    });
    client.container.dockerode.modem.demuxStream(logs, out, err);
    let exited = false;
    const waited = container.wait().then((w: { StatusCode?: number }) => {
      exited = true;
      return w.StatusCode ?? 1;
    });
    waited.catch(() => undefined); // awaited below, unless the probe gives up first
    // Host networking that is not this machine's (rootless Docker, a VM the
    // checks above missed) shows as a REST API that never answers here.
    const since = Date.now();
    let answered = false;
    while (!exited && !(answered = await apiAnswers(apiAddress))) {
      if (Date.now() - since > API_PROBE_MS) {
        await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
        throw new UsageError(
          `the k6 container's REST API (${apiAddress}) did not answer from this machine within ${API_PROBE_MS / 1000} s: ` +
            "its host network is not this machine's loopback (rootless Docker or a VM?), so it cannot load the stack. " +
            `Install k6 on PATH or set FLASHCROWD_K6 to a k6 binary.`,
        );
      }
      await sleep(250);
    }
    const code = await waited;
    await Promise.race([logsEnded, sleep(5_000)]);
    if (!answered) {
      const note =
        `\nflashcrowd: k6's REST API (${apiAddress}) never answered from this machine while the container ran; ` +
        "if every request failed, the container's host network is not this machine's loopback.\n";
      if (opts.capture) stderr += note;
      else process.stderr.write(note);
    }
    return { code, stdout, stderr };
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await started.stop({ remove: true, timeout: 0 }).catch(() => undefined);
  }
}
