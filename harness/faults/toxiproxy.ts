// A real Toxiproxy server (toxiproxy-server, built by set-up; MIT) for network
// faults: proxies on loopback in front of Redis or a gateway, and toxics
// (latency, black hole, resets...) on them, driven through its HTTP API.
//
// The API is called directly with undici rather than through the npm client
// toxiproxy-node-client (ISC, typed): on any answer that is not 2xx that client
// throws "Request failed with status code N" and drops the body, and the body
// is where Toxiproxy says what is wrong ("toxic already exists", "proxy not
// found"), which our errors must quote. The API is five routes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { TOXIPROXY_BUILD, TOXIPROXY_VERSION } from '../../scripts/versions.mjs';
import { UsageError } from '../errors.ts';
import { freePort } from '../redis.ts';
import { findToolIn, PROJECT_ROOT, toolDirs } from '../tools.ts';
import { describeToxic, parseToxic, type ToxicInput } from './toxics.ts';

export { describeToxic, parseToxic, toxicSchema, TOXIC_TYPES } from './toxics.ts';
export type { Toxic, ToxicInput, ToxicType } from './toxics.ts';

const GUARD = join(PROJECT_ROOT, 'harness', 'guard.mjs');
/** What a stock release's `-version` prints (its `-seed` is ignored: docs/CHAOS.md). */
const STOCK_VERSION = TOXIPROXY_VERSION.replace(/^v/, '');
const START_TIMEOUT_MS = 10_000;
const API_TIMEOUT_MS = 10_000;

export interface ToxiproxyOptions {
  /** Seeds Toxiproxy's draws (toxicity, jitter, slicer sizes): the run's seed. */
  seed: number;
  /** Toxiproxy's log (JSON lines, info level) goes to `<logDir>/toxiproxy.log`. */
  logDir?: string;
  /** Folders searched for toxiproxy-server (default: .tools/bin, then PATH). */
  toolDirs?: string[];
}

/** A proxy: connect to `listen` to reach `upstream` through the toxics. */
export interface ToxiProxy {
  name: string;
  /** `127.0.0.1:port`, the port picked free by the OS. */
  listen: string;
  upstream: string;
}

type ProxyRef = string | { name: string };

export interface ToxiproxyServer {
  apiUrl: string;
  /** The process started (the guard whose child is toxiproxy-server), for CPU accounting. */
  pid: number;
  /** What the binary's `-version` printed. */
  version: string;
  /** False for a stock release: its draws are not a function of the seed. */
  seeded: boolean;
  /** A proxy on a free loopback port in front of `upstream` ('host:port'). */
  proxy(name: string, upstream: string): Promise<ToxiProxy>;
  /** Validate `toxic` and put it on `proxy`, on links open now and to come; returns its name. */
  addToxic(proxy: ProxyRef, toxic: ToxicInput): Promise<string>;
  removeToxic(proxy: ProxyRef, name: string): Promise<void>;
  /** Disabled, the proxy's port is closed (connections refused) and its open links are closed. */
  setEnabled(proxy: ProxyRef, enabled: boolean): Promise<void>;
  /** Every toxic removed, every proxy enabled. */
  resetAll(): Promise<void>;
  close(): Promise<void>;
}

/** An answer from Toxiproxy's API that is not 2xx, or no answer. */
export class ToxiproxyError extends Error {
  constructor(
    message: string,
    /** The HTTP status, undefined when the API did not answer. */
    readonly status?: number,
    /** Toxiproxy's own message ("toxic not found"). */
    readonly toxiproxyMessage?: string,
  ) {
    super(message);
    this.name = 'ToxiproxyError';
  }
}

export function noToxiproxyMessage(): string {
  return (
    'toxiproxy-server not found in .tools/bin or on PATH (network faults need it). ' +
    `Run \`npm run setup\`: it builds Toxiproxy ${TOXIPROXY_VERSION} with Go (1.23+) into .tools/bin; ` +
    `or put toxiproxy-server ${TOXIPROXY_VERSION} on PATH yourself.`
  );
}

/** The version `bin -version` prints, checked against the pin. */
function binaryVersion(bin: string): string {
  const r = spawnSync(bin, ['-version'], { encoding: 'utf8', timeout: 10_000 });
  const version = r.stdout?.match(/toxiproxy-server version (\S+)/)?.[1];
  if (version !== TOXIPROXY_BUILD && version !== STOCK_VERSION)
    throw new UsageError(
      `${bin} is toxiproxy-server ${version ?? `of unknown version (${r.error?.message ?? r.stderr?.trim()})`}; ` +
        `flashcrowd is pinned to ${TOXIPROXY_VERSION} (${TOXIPROXY_BUILD}): run \`npm run setup\` to build it into .tools/bin.`,
    );
  return version;
}

/** The last `n` lines written to a stream, for error messages. */
function tail(n: number) {
  const lines: string[] = [];
  return {
    push(chunk: Buffer) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      lines.splice(0, Math.max(0, lines.length - n));
    },
    text: () => lines.join('\n'),
  };
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<unknown>;
  log: ReturnType<typeof tail>;
  file?: WriteStream;
}

/**
 * toxiproxy-server in a process group of its own under harness/guard.mjs (as
 * harness/redis.ts starts redis-server): a Ctrl-C to the run does not stop it
 * before the run has cleaned up, and the guard stops it when this process ends.
 * GOMAXPROCS=1: each link and each toxic on it draws from one generator in a
 * goroutine of its own; on one OS thread their order, and so which connection
 * draws which number, is fixed for connections made one after another.
 */
function spawnServer(bin: string, port: number, opts: ToxiproxyOptions): Spawned {
  const args = ['-host', '127.0.0.1', '-port', String(port), '-seed', String(opts.seed)];
  const child = spawn(process.execPath, [GUARD, bin, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, GOMAXPROCS: '1', LOG_LEVEL: 'info' },
  });
  const log = tail(20);
  let file: WriteStream | undefined;
  if (opts.logDir) {
    mkdirSync(opts.logDir, { recursive: true });
    file = createWriteStream(join(opts.logDir, 'toxiproxy.log'));
  }
  for (const s of [child.stdout, child.stderr])
    s?.on('data', (d: Buffer) => {
      log.push(d);
      file?.write(d);
    });
  return { child, exited: once(child, 'exit'), log, ...(file ? { file } : {}) };
}

/** Start toxiproxy-server on a free loopback port and wait for its API. */
export async function startToxiproxy(opts: ToxiproxyOptions): Promise<ToxiproxyServer> {
  if (!Number.isSafeInteger(opts.seed))
    throw new UsageError(`toxiproxy: seed must be a whole number, not ${String(opts.seed)}`);
  const bin = findToolIn('toxiproxy-server', opts.toolDirs ?? toolDirs());
  if (!bin) throw new UsageError(noToxiproxyMessage());
  const version = binaryVersion(bin);
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const agent = new Agent({ headersTimeout: API_TIMEOUT_MS, bodyTimeout: API_TIMEOUT_MS });
  const server = spawnServer(bin, port, opts);
  const stop = async () => {
    const { child } = server;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await server.exited;
    }
    server.file?.end();
    await agent.close();
  };
  try {
    await waitForApi(apiUrl, version, agent, server);
  } catch (e) {
    server.child.kill('SIGKILL');
    await stop();
    throw e;
  }
  return {
    apiUrl,
    pid: server.child.pid!,
    version,
    seeded: version === TOXIPROXY_BUILD,
    ...client(apiUrl, agent),
    close: stop,
  };
}

/** Poll GET /version until this server (its version) answers; fail if it exits or never does. */
async function waitForApi(
  apiUrl: string,
  version: string,
  agent: Agent,
  server: Spawned,
): Promise<void> {
  let exited = false;
  void server.exited.then(() => (exited = true));
  const until = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < until && !exited) {
    try {
      const r = await request(`${apiUrl}/version`, { dispatcher: agent });
      const body = await r.body.text();
      if (r.statusCode === 200 && body.includes(`"${version}"`)) return;
      last = `GET /version answered ${r.statusCode} ${body.trim()} (another server on the port?)`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `toxiproxy-server ${exited ? 'exited' : `did not answer on ${apiUrl} within ${START_TIMEOUT_MS} ms`} (${last})` +
      (server.log.text() ? `; its output:\n${server.log.text()}` : ''),
  );
}

const nameOf = (p: ProxyRef) => (typeof p === 'string' ? p : p.name);

/** The API calls, each error naming what was asked and quoting Toxiproxy. */
function client(apiUrl: string, agent: Agent) {
  let toxics = 0;
  async function call(what: string, method: string, path: string, body?: unknown) {
    let r;
    try {
      r = await request(apiUrl + path, {
        method: method as 'GET',
        dispatcher: agent,
        ...(body !== undefined
          ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
          : {}),
      });
    } catch (e) {
      throw new ToxiproxyError(
        `toxiproxy: ${what}: its API at ${apiUrl} did not answer (${(e as Error).message})`,
      );
    }
    const text = await r.body.text();
    if (r.statusCode >= 200 && r.statusCode < 300)
      return text ? (JSON.parse(text) as unknown) : undefined;
    let message = text.trim();
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? message;
    } catch {
      /* not JSON: quote it as it came */
    }
    throw new ToxiproxyError(
      `toxiproxy: ${what}: ${message} (HTTP ${r.statusCode})`,
      r.statusCode,
      message,
    );
  }
  const seg = encodeURIComponent;
  return {
    async proxy(name: string, upstream: string): Promise<ToxiProxy> {
      const p = (await call(`create proxy "${name}" to ${upstream}`, 'POST', '/proxies', {
        name,
        listen: '127.0.0.1:0',
        upstream,
        enabled: true,
      })) as ToxiProxy;
      return { name: p.name, listen: p.listen, upstream: p.upstream };
    },
    async addToxic(proxy: ProxyRef, toxic: ToxicInput): Promise<string> {
      const t = parseToxic(toxic);
      const name = `${t.type}_${t.stream}_${++toxics}`;
      await call(
        `add toxic "${name}" (${describeToxic(t)}) to proxy "${nameOf(proxy)}"`,
        'POST',
        `/proxies/${seg(nameOf(proxy))}/toxics`,
        { name, ...t },
      );
      return name;
    },
    async removeToxic(proxy: ProxyRef, name: string): Promise<void> {
      await call(
        `remove toxic "${name}" from proxy "${nameOf(proxy)}"`,
        'DELETE',
        `/proxies/${seg(nameOf(proxy))}/toxics/${seg(name)}`,
      );
    },
    async setEnabled(proxy: ProxyRef, enabled: boolean): Promise<void> {
      await call(
        `${enabled ? 'enable' : 'disable'} proxy "${nameOf(proxy)}"`,
        'PATCH',
        `/proxies/${seg(nameOf(proxy))}`,
        { enabled },
      );
    },
    async resetAll(): Promise<void> {
      await call('reset (remove every toxic, enable every proxy)', 'POST', '/reset');
    },
  };
}
