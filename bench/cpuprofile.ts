// Summarise a V8 .cpuprofile (from `node --cpu-prof`, or `npm run bench:mocks -- --cpu-prof DIR`):
// where the time went, by function (self and inclusive) and by module.
//
//   node bin/run-ts.js bench/cpuprofile.ts FILE.cpuprofile [--top N] [--from S] [--json]
//
// --from S counts only samples from S seconds after the first HTTP request.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../harness/tools.ts';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  /** Share of samples the VM spent idle (waiting in epoll). */
  idleShare: number;
  self: Row[];
  inclusive: Row[];
  modules: Row[];
}

function shortUrl(url: string): string {
  if (!url) return '';
  let p = url;
  if (p.startsWith('file://')) {
    try {
      p = fileURLToPath(p);
    } catch {
      /* keep it */
    }
  }
  if (p.startsWith('/')) p = relative(PROJECT_ROOT, p);
  return p;
}

/** The module a frame belongs to: an npm package, a project folder, node internals or the VM. */
export function moduleOf(cf: CallFrame): string {
  const url = shortUrl(cf.url);
  if (!url) {
    if (cf.functionName === '(garbage collector)') return '(gc)';
    if (cf.functionName === '(idle)') return '(idle)';
    if (cf.functionName === '(program)') return '(program: VM, native)';
    return '(native)';
  }
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) {
    const parts = url.split('/');
    return parts.slice(0, Math.min(parts.length - 1, 3)).join('/') || url;
  }
  return url;
}

function frameName(cf: CallFrame): string {
  const fn = cf.functionName || '(anonymous)';
  const url = shortUrl(cf.url);
  return url ? `${fn} ${url}:${cf.lineNumber + 1}` : fn;
}

export interface SummariseOptions {
  top?: number;
  /**
   * Count only samples from `skipMs` after the first sample whose stack holds a frame
   * named `startFrame` (e.g. 'parserOnIncoming': the first HTTP request). Leaves out
   * start-up (module loading, compiling) and the warm-up.
   */
  startFrame?: string;
  skipMs?: number;
}

export function summarise(profile: CpuProfile, opts: SummariseOptions = {}): ProfileSummary {
  const top = opts.top ?? 25;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample times (µs) and the first one under startFrame.
  const times: number[] = [];
  let t = profile.startTime;
  for (const d of profile.timeDeltas) times.push((t += d));
  let fromUs = -Infinity;
  if (opts.startFrame) {
    fromUs = Infinity;
    for (let i = 0; i < profile.samples.length && fromUs === Infinity; i++) {
      for (
        let cur: number | undefined = profile.samples[i];
        cur !== undefined;
        cur = parent.get(cur)
      )
        if (byId.get(cur)?.callFrame.functionName === opts.startFrame) {
          fromUs = times[i]! + (opts.skipMs ?? 0) * 1000;
          break;
        }
    }
  }

  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const mods = new Map<string, number>();
  let total = 0;
  let idle = 0;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

  profile.samples.forEach((id, i) => {
    if (times[i]! < fromUs) return;
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000; // ms
    const node = byId.get(id);
    if (!node) return;
    total += dt;
    if (node.callFrame.functionName === '(idle)') idle += dt;
    add(self, frameName(node.callFrame), dt);
    add(mods, moduleOf(node.callFrame), dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const name = frameName(n.callFrame);
      if (name === '(root)' || seen.has(name)) continue;
      seen.add(name);
      add(incl, name, dt);
    }
  });
  const busy = total - idle;
  const rows = (m: Map<string, number>, skipIdle = true) =>
    [...m.entries()]
      .filter(([k]) => !(skipIdle && (k === '(idle)' || k.startsWith('(idle)'))))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }));
  return {
    totalMs: total,
    busyMs: busy,
    idleShare: total > 0 ? idle / total : 0,
    self: rows(self),
    inclusive: rows(incl),
    modules: rows(mods),
  };
}

/** CPU per unit of work (an answer, an order), µs, by module and function. */
export interface UnitCosts {
  file: string;
  busyUs: number;
  modules: { name: string; us: number }[];
  functions: { name: string; us: number }[];
  inclusive: { name: string; us: number }[];
}

/**
 * CPU per unit of work from a server's main-thread profile in `dir` (the
 * largest .cpuprofile there: `node --cpu-prof` also profiles worker threads),
 * counted from its first HTTP request after `skipMs` of warm-up.
 */
export function costsPerUnit(
  dir: string,
  units: number,
  opts: { top: number; skipMs: number },
): UnitCosts | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return undefined;
  }
  const main = files
    .map((f) => ({ f, size: statSync(join(dir, f)).size }))
    .sort((a, b) => b.size - a.size)[0];
  if (!main || units === 0) return undefined;
  const file = join(dir, main.f);
  const sum = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, {
    top: opts.top,
    startFrame: 'parserOnIncoming',
    skipMs: opts.skipMs,
  });
  const us = (ms: number) => (ms * 1000) / units;
  const rows = (rs: Row[]) => rs.map((m) => ({ name: m.name, us: us(m.ms) }));
  return {
    file: relative(process.cwd(), file),
    busyUs: us(sum.busyMs),
    modules: rows(sum.modules),
    functions: rows(sum.self),
    inclusive: rows(sum.inclusive),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const fmt = (title: string, rows: Row[]) =>
    [
      `${title} (share of busy time)`,
      ...rows.map(
        (r) =>
          `  ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}`,
      ),
    ].join('\n');
  return [
    `profile: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.idleShare * 100).toFixed(1)}% idle`,
    fmt('self time by module', s.modules),
    fmt('self time by function', s.self),
    fmt('inclusive time by function', s.inclusive),
  ].join('\n\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '25' },
      json: { type: 'boolean', default: false },
      /** Seconds after the first HTTP request to start counting (skip start-up and warm-up). */
      from: { type: 'string' },
    },
  });
  const file = positionals[0];
  if (!file) {
    console.error(
      'usage: node bin/run-ts.js bench/cpuprofile.ts FILE.cpuprofile [--top N] [--from S] [--json]',
    );
    process.exit(2);
  }
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, {
    top: Number(values.top),
    ...(values.from ? { startFrame: 'parserOnIncoming', skipMs: Number(values.from) * 1000 } : {}),
  });
  console.log(values.json ? JSON.stringify(s, null, 2) : formatSummary(s));
}
