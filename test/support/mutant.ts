// Mutants of the checkout, for the audit's mutation tests: a copy of the
// repository's source folders in a fresh temporary directory (node_modules
// linked, not copied), with one named bug planted by an exact string
// replacement, and that copy's own checkout started in this process (its
// checkout/service.ts imported from the copy, so its Lua scripts are the
// copy's too). A replacement must match exactly once: a mutation whose string
// is gone or ambiguous throws naming itself, so mutations cannot rot silently
// when the checkout changes.
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CheckoutOptions, RunningCheckout } from '../../checkout/service.ts';

/** The repository this file lives in. */
const ROOT = resolve(import.meta.dirname, '../..');
/** What a copy needs to run the checkout (and its CLI). */
const COPIED = [
  'checkout',
  'mock-gateways',
  'harness',
  'scenarios',
  'bin',
  'scripts',
  'package.json',
  'tsconfig.json',
];

/** One planted bug: in `file` (relative to the repository), `find` becomes `replace`. */
export interface Mutation {
  name: string;
  file: string;
  find: string;
  replace: string;
}

export interface Copy {
  dir: string;
  mutation?: Mutation;
  /** The copy's own startCheckout (its module graph, its Lua scripts). */
  startCheckout(opts: CheckoutOptions): Promise<RunningCheckout>;
  /**
   * A module of the copy (`harness/stack.ts`...), from the copy's module graph:
   * its stack starts the copy's CLI as child processes, so a planted bug runs
   * in real checkout processes.
   */
  importModule<T>(file: string): Promise<T>;
  remove(): void;
}

/** How often `needle` occurs in `hay` (non-overlapping). */
function occurrences(hay: string, needle: string): number {
  return needle === '' ? 0 : hay.split(needle).length - 1;
}

/** Apply `m` to the tree at `dir`; throws naming the mutation unless its string occurs exactly once. */
export function applyMutation(dir: string, m: Mutation): void {
  const path = join(dir, m.file);
  const text = readFileSync(path, 'utf8');
  const n = occurrences(text, m.find);
  if (n !== 1)
    throw new Error(
      `mutation "${m.name}": ${m.file} contains its string ${n} times, not exactly once; update the mutation to the current code:\n${m.find}`,
    );
  writeFileSync(
    path,
    text.replace(m.find, () => m.replace),
  );
}

/** A fresh copy of the repository's source folders, with `mutation` applied (none: the control). */
export function copyCheckout(mutation?: Mutation): Copy {
  const dir = mkdtempSync(join(tmpdir(), 'flashcrowd-mutant-'));
  try {
    for (const entry of COPIED)
      cpSync(join(ROOT, entry), join(dir, entry), {
        recursive: true,
        filter: (src) =>
          !/[\\/](node_modules|reports|\.tools)([\\/]|$)/.test(src.slice(ROOT.length)),
      });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    if (mutation) applyMutation(dir, mutation);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    ...(mutation ? { mutation } : {}),
    async startCheckout(opts) {
      const service = (await import(
        pathToFileURL(join(dir, 'checkout', 'service.ts')).href
      )) as typeof import('../../checkout/service.ts');
      return service.startCheckout(opts);
    },
    async importModule<T>(file: string) {
      return (await import(pathToFileURL(join(dir, file)).href)) as T;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface AmbiguousProxy {
  url: string;
  /** Requests answered 503 after the upstream took them. */
  faked: number;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of `upstream` that lets the first `times` requests
 * matching `method path` take effect upstream and then answers them 503: the
 * "charged, but the app was told it failed" case, at a chosen request rather
 * than at a random draw. Everything else passes through unchanged.
 */
export async function ambiguousProxy(
  upstream: string,
  method: string,
  path: string,
  times = 1,
): Promise<AmbiguousProxy> {
  const state = { faked: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k))
          headers[k] = v;
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      fetch(upstream.replace(/\/$/, '') + req.url, {
        method: req.method ?? 'GET',
        headers,
        ...(body && req.method !== 'GET' ? { body } : {}),
      })
        .then(async (up) => {
          const text = await up.text();
          const fake =
            req.method === method && req.url?.split('?')[0] === path && state.faked < times;
          if (fake) {
            state.faked += 1;
            res.writeHead(503, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                error: 'injected_fault',
                reason: 'upstream_unavailable',
                status: 503,
              }),
            );
            return;
          }
          res.writeHead(up.status, {
            'content-type': up.headers.get('content-type') ?? 'application/json',
          });
          res.end(text);
        })
        .catch((e: Error) => {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ reason: 'proxy_error', message: e.message }));
        });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get faked() {
      return state.faked;
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
