// Render a bench:mocks JSON report as the Markdown tables docs/PERFORMANCE.md quotes,
// so the figures in the docs are copied by a program, not by hand.
//
//   node bin/run-ts.js bench/report-md.ts [reports/bench-mocks.json]
import { readFileSync } from 'node:fs';
import { cores, fmtInt, signed } from './common.ts';
import type {
  EventLoopDelay,
  KindSummary,
  LatencyBaseline,
  LatencyResult,
  PairSummary,
  Ratio,
  ThroughputRun,
} from './mocks.ts';

// The report's parts are the runner's own types (a type-only import: nothing of bench/mocks.ts runs).
type Run = ThroughputRun;
type Server = KindSummary;
type Eld = EventLoopDelay;
const eld = (e?: Eld) =>
  e ? `event-loop delay p50 ${e.p50Ms.toFixed(2)} ms, p99 ${e.p99Ms.toFixed(2)} ms` : '';

interface Report {
  generatedAt: string;
  command: string;
  machine: {
    nproc: number;
    cpuModel: string;
    node: string;
    k6?: string;
    generators?: Record<string, string>;
    pinning: { note: string };
    code?: { commit?: string; mockGatewaysModified?: boolean };
  };
  parameters: Record<string, unknown>;
  throughput: { runs: Run[]; servers: Server[]; ratios: Ratio[]; discarded: Run[] };
  paired?: { pairs: PairSummary[]; discarded: unknown[] };
  latency?: LatencyResult;
  latencyBaseline?: LatencyBaseline;
  wallS: number;
  quietWaitS?: number;
}

const int = fmtInt;
const f2 = cores;
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
const head = (cells: string[]) =>
  [row(cells), row(cells.map((_, i) => (i === 0 ? '---' : '---:')))].join('\n');

const file = process.argv[2] ?? 'reports/bench-mocks.json';
const r = JSON.parse(readFileSync(file, 'utf8')) as Report;
const out: string[] = [];
const code = r.machine.code?.commit
  ? `, commit ${r.machine.code.commit.slice(0, 7)}${r.machine.code.mockGatewaysModified ? ' (mock-gateways modified)' : ''}`
  : '';
out.push(
  `Run of ${r.generatedAt.slice(0, 16).replace('T', ' ')} UTC${code}: \`${r.command}\`, ` +
    `${int(r.wallS)} s; ${r.throughput.discarded.length + (r.paired?.discarded.length ?? 0)} disturbed measurement(s) redone` +
    (r.quietWaitS ? `, ${int(r.quietWaitS)} s spent waiting for other work` : '') +
    '.',
  '',
);
if (r.throughput.servers.length) {
  out.push(
    head([
      'server',
      'req/s median',
      'per round',
      'req per server CPU-s',
      'non-2xx',
      'p50 ms',
      'p99 ms',
      'CPU server / generator / other',
      'limit',
    ]),
  );
  for (const s of r.throughput.servers)
    out.push(
      row([
        s.kind,
        int(s.medianReqPerS),
        s.rounds.map(int).join(' / '),
        s.meanReqPerServerCpuS === undefined ? 'n/a' : int(s.meanReqPerServerCpuS),
        `${(s.failedShare * 100).toFixed(1)}%`,
        s.p50Ms.toFixed(1),
        s.p99Ms.toFixed(1),
        `${f2(s.serverCores)} / ${f2(s.genCores)} / ${f2(s.otherCores)}${s.disturbedRounds ? ` (${s.disturbedRounds} disturbed)` : ''}`,
        [...new Set(s.limits)].join(', '),
      ]),
    );
  out.push('', head(['ratio', 'median of rounds', 'per round', 'of means', 'goal', 'met']));
  for (const x of r.throughput.ratios)
    out.push(
      row([
        x.name,
        x.value.toFixed(2),
        x.perRound.map((v) => v.toFixed(2)).join(' / '),
        x.ofMeans.toFixed(2),
        x.goal === undefined ? '' : `>= ${x.goal}`,
        x.met === undefined ? '' : x.met ? 'yes' : '**no**',
      ]),
    );
  out.push('');
}
if (r.paired?.pairs.length) {
  out.push(
    head([
      'paired on one core',
      'ratio (median)',
      'per round',
      'per CPU-s',
      'CPU a + b',
      'goal',
      'met',
    ]),
  );
  for (const p of r.paired.pairs)
    out.push(
      row([
        p.name,
        p.value.toFixed(2),
        p.perRound.map((v) => v.toFixed(2)).join(' / ') +
          (p.unsaturatedRounds ? ` (${p.unsaturatedRounds} not saturated)` : '') +
          (p.disturbedRounds ? ` (${p.disturbedRounds} disturbed)` : ''),
        p.perCpuValue === undefined ? 'n/a' : p.perCpuValue.toFixed(2),
        `${f2(p.coresA)} + ${f2(p.coresB)}`,
        p.goal === undefined ? '' : `>= ${p.goal}`,
        p.met === undefined ? '' : p.met ? 'yes' : '**no**',
      ]),
    );
  out.push('');
}
if (r.latency) {
  const l = r.latency;
  const b = r.latencyBaseline;
  if (b)
    out.push(
      `Baseline, bank without faults at ${l.rate} req/s: p50 ${b.p50Ms.toFixed(2)} ms, p99 ${b.p99Ms.toFixed(2)} ms ` +
        `(server CPU ${f2(b.serverCores)}, other ${f2(b.otherCores)}${b.disturbed ? ', disturbed' : ''}` +
        `${b.eventLoopDelay ? `; ${eld(b.eventLoopDelay)}` : ''}).`,
      '',
    );
  out.push(
    `Latency profile at ${l.rate} req/s for ${l.durationS} s: ${int(l.requests)} requests, ${l.dropped} dropped, ` +
      `server CPU ${f2(l.serverCores)}, other ${f2(l.otherCores)}${l.disturbed ? ' (disturbed)' : ''}` +
      `${l.eventLoopDelay ? `; ${eld(l.eventLoopDelay)}` : ''}.`,
    '',
    head([
      'quantile',
      'profile ms',
      'observed ms',
      'deviation',
      'seed replay ms',
      '99.9% sampling interval',
      'within 5%',
    ]),
  );
  for (const q of l.quantiles)
    out.push(
      row([
        `p${q.q * 100}`,
        q.profileMs.toFixed(1),
        q.observedMs.toFixed(1),
        signed(q.deviationPct),
        `${q.drawnMs.toFixed(1)} (${signed(q.drawnDeviationPct)})`,
        `${q.interval999.lo.toFixed(1)} to ${q.interval999.hi.toFixed(1)} (${signed(q.interval999.loPct)} to ${signed(q.interval999.hiPct)})`,
        q.withinGoal ? 'yes' : '**no**',
      ]),
    );
  out.push('');
}
console.log(out.join('\n'));
