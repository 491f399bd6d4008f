// The run's own Prometheus endpoint (`flashcrowd run --metrics-port N`): what
// only the harness knows while the traffic runs (shoppers, arrivals, the stock
// it reads each second, the chaos timeline's fault bands), beside the
// checkout's and the mocks' own /metrics, for the Prometheus and Grafana of
// docs/OBSERVABILITY.md. Read at scrape time from the load engine's snapshot
// and the collector's; nothing is kept.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { UsageError } from './errors.ts';
import type { FaultBand } from './summary.ts';

export interface RunExporterSources {
  /** The load engine's latest snapshot: arrivals started and dropped so far, journeys running now. */
  load(): { started: number; dropped: number; vus: number } | undefined;
  /** The stock summed over SKUs as the collector last read it (null: not read yet). */
  stock(): { available: number; reserved: number; sold: number } | null;
  /** The chaos timeline's fault bands (seconds from the traffic's start). */
  bands: readonly FaultBand[];
  /** When the traffic started (epoch ms). */
  startMs: number;
  /** The run's preset and variant (kept for a caller's messages; not labels: a series outlives a run). */
  preset: string;
  variant: string;
}

export interface RunExporter {
  url: string;
  registry: Registry;
  /** The run being served (undefined: between runs; the counters keep their totals). */
  serve(src: RunExporterSources | undefined): void;
  close(): Promise<void>;
}

const IDLE: RunExporterSources = {
  load: () => undefined,
  stock: () => null,
  bands: [],
  startMs: 0,
  preset: '',
  variant: '',
};

/**
 * The registry of a run's metrics over `current()`. The counters count on
 * across runs (a variant after another): a counter never goes down.
 */
export function runRegistry(current: () => RunExporterSources): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'run' });
  const registers = [registry];
  // Totals of the runs before the current one, and the current run's own.
  let base = { started: 0, dropped: 0 };
  let seen: RunExporterSources | undefined;
  const own = { started: 0, dropped: 0 };
  const src = {
    load: () => {
      const c = current();
      if (c !== seen) {
        base = { started: base.started + own.started, dropped: base.dropped + own.dropped };
        own.started = 0;
        own.dropped = 0;
        seen = c;
      }
      const l = c.load();
      if (l) {
        own.started = Math.max(own.started, l.started);
        own.dropped = Math.max(own.dropped, l.dropped);
      }
      return (
        l && {
          started: base.started + own.started,
          dropped: base.dropped + own.dropped,
          vus: l.vus,
        }
      );
    },
    stock: () => current().stock(),
    get bands() {
      return current().bands;
    },
    get startMs() {
      return current().startMs;
    },
  };
  let started = 0;
  let dropped = 0;
  const arrivals: Counter = new Counter({
    name: 'flashcrowd_load_arrivals_total',
    help: 'Shopper arrivals the load engine started (each one a journey).',
    registers,
    collect: () => {
      const now = src.load()?.started ?? started;
      if (now > started) arrivals.inc(now - started);
      started = Math.max(started, now);
    },
  });
  const droppedArrivals: Counter = new Counter({
    name: 'flashcrowd_load_dropped_arrivals_total',
    help: 'Scheduled arrivals the load engine could not start (every journey slot busy).',
    registers,
    collect: () => {
      const now = src.load()?.dropped ?? dropped;
      if (now > dropped) droppedArrivals.inc(now - dropped);
      dropped = Math.max(dropped, now);
    },
  });
  const shoppers: Gauge = new Gauge({
    name: 'flashcrowd_load_shoppers',
    help: 'Shoppers whose journey is running now (the engine’s busy journey slots).',
    registers,
    collect: () => shoppers.set(src.load()?.vus ?? 0),
  });
  const stock: Gauge<'state'> = new Gauge({
    name: 'flashcrowd_run_stock_units',
    help: "The sale's units summed over its SKUs, by state (available, reserved, sold), as the harness read them last.",
    labelNames: ['state'],
    registers,
    collect: () => {
      const s = src.stock();
      if (!s) return;
      stock.set({ state: 'available' }, s.available);
      stock.set({ state: 'reserved' }, s.reserved);
      stock.set({ state: 'sold' }, s.sold);
    },
  });
  const faults: Gauge<'target' | 'fault'> = new Gauge({
    name: 'flashcrowd_run_fault_active',
    help: "1 while a fault of the run's chaos timeline is in force, by the service it hits and the fault (one series per band of the preset).",
    labelNames: ['target', 'fault'],
    registers,
    collect: () => {
      const el = (Date.now() - src.startMs) / 1000;
      // Several bands with the same labels: in force when any one is.
      const on = new Map<string, { target: string; fault: string; v: number }>();
      for (const b of src.bands) {
        const key = `${b.service}\u0000${b.label}`;
        const v = b.fromS <= el && (b.toS === null || el < b.toS) ? 1 : 0;
        const cur = on.get(key);
        on.set(key, { target: b.service, fault: b.label, v: Math.max(v, cur?.v ?? 0) });
      }
      for (const f of on.values()) faults.set({ target: f.target, fault: f.fault }, f.v);
    },
  });
  return registry;
}

/** Serve the run's metrics at http://host:port/metrics until close(). */
export async function startRunExporter(o: {
  port: number;
  host?: string;
  /** Do not keep the process alive for it. */
  unref?: boolean;
}): Promise<RunExporter> {
  let current = IDLE;
  const registry = runRegistry(() => current);
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not_found', reason: 'no_such_route' }));
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (e: Error) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: 'internal_error', reason: 'internal_error', message: e.message }),
        );
      },
    );
  });
  const host = o.host ?? '127.0.0.1';
  server.listen(o.port, host);
  try {
    await once(server, 'listening');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw err.code === 'EADDRINUSE'
      ? new UsageError(`--metrics-port ${o.port}: the port is in use on ${host}`)
      : err;
  }
  if (o.unref) {
    server.unref();
    // Prometheus keeps its connection open between scrapes: it must not keep the process either.
    server.on('connection', (socket) => socket.unref());
  }
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    registry,
    serve: (src) => (current = src ?? IDLE),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let shared: { port: number; exporter: Promise<RunExporter> } | undefined;

/**
 * The process's one exporter on `port` (started on first use, and left
 * serving until the process exits: the variants of a run share it, and
 * Prometheus reads the last values after the traffic).
 */
export async function sharedRunExporter(port: number): Promise<RunExporter> {
  if (shared && shared.port !== port)
    throw new Error(`the run exporter already listens on port ${shared.port}`);
  shared ??= { port, exporter: startRunExporter({ port, unref: true }) };
  return shared.exporter;
}
