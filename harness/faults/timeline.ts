// The fault timeline as played: each step of a preset's `faults` (scaled) is
// started at its offset from the start of the traffic and, when it has a
// duration, ended; what happened (when, and any error) is recorded and becomes
// the run's fault bands. stop() at the end of the traffic cancels what has not
// started, ends what is in force (toxics removed, links up, Redis unpaused, a
// killed instance with a restart still due started now) and waits for actions
// still running (a Redis restart).
import type { FaultBand } from '../summary.ts';
import type { FaultStep, Link } from './schema.ts';
import { describeToxic, type Toxic } from './toxiproxy.ts';

/** What the steps act on; the run stage (harness/run/faults.ts) builds them from its stack. */
export interface FaultActuators {
  network?: {
    addToxic(link: Link, toxic: Toxic): Promise<string>;
    removeToxic(link: Link, name: string): Promise<void>;
    setEnabled(link: Link, enabled: boolean): Promise<void>;
  };
  checkout?: (instance: number) => { kill(): Promise<void>; restart(): Promise<void> };
  redis?: {
    restart(how: 'kill' | 'shutdown', downMs: number): Promise<void>;
    pause(ms: number, mode: 'all' | 'write'): Promise<void>;
    unpause(): Promise<void>;
  };
}

/** One step as played (summary.json `chaos.timeline`). */
export interface PlayedStep {
  /** Its index in the preset's `faults`. */
  step: number;
  action: FaultStep['action'];
  /** What it acted on: `redis` (the process), `link:bank`, `checkout#1`. */
  target: string;
  label: string;
  /** Seconds from the start of traffic when it took effect (null: it never did). */
  fromS: number | null;
  /** When it ended (null: in force when the traffic ended, or never started). */
  toS: number | null;
  /** Why it did not take effect, or did not end cleanly. */
  error?: string;
}

type Undo = () => Promise<void>;

export class FaultTimeline {
  private readonly played: PlayedStep[];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  /** How to end each step in force (by step index). */
  private readonly undo = new Map<number, Undo>();
  private t0 = 0;
  private stopped = false;

  constructor(
    private readonly steps: readonly FaultStep[],
    private readonly act: FaultActuators,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.played = steps.map((s, i) => ({
      step: i,
      action: s.action,
      target: targetOf(s),
      label: labelOf(s),
      fromS: null,
      toS: null,
    }));
  }

  /** Schedule every step from `t0` (epoch ms, the start of traffic). */
  start(t0 = Date.now()): void {
    this.t0 = t0;
    this.steps.forEach((s, i) => this.at(s.atMs, () => this.begin(s, i)));
  }

  private now(): number {
    return Math.round(Date.now() - this.t0) / 1000;
  }

  private at(offsetMs: number, fn: () => Promise<void>): void {
    if (this.stopped) return;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        if (this.stopped) return;
        const p = fn().finally(() => this.running.delete(p));
        this.running.add(p);
      },
      Math.max(0, this.t0 + offsetMs - Date.now()),
    );
    this.timers.add(t);
  }

  private fail(i: number, e: unknown) {
    const p = this.played[i]!;
    p.error = (e as Error).message ?? String(e);
    this.log(`fault ${i} (${p.target}: ${p.label}) failed: ${p.error}`);
  }

  private async begin(s: FaultStep, i: number): Promise<void> {
    const p = this.played[i]!;
    try {
      if (s.action === 'restart') {
        // Down from the moment it is stopped; apply() returns once it is back up.
        p.fromS = this.now();
        this.log(`fault at ${p.fromS.toFixed(1)} s: ${p.target}: ${p.label}`);
        await this.apply(s);
        p.toS = this.now();
        return;
      }
      const undo = await this.apply(s);
      p.fromS = this.now();
      this.log(`fault at ${p.fromS.toFixed(1)} s: ${p.target}: ${p.label}`);
      if (!undo) return;
      this.undo.set(i, undo);
      const end = s.action === 'kill' ? s.restartAfterMs : s.durationMs;
      if (end !== undefined) this.at(s.atMs + end, () => this.end(i));
    } catch (e) {
      this.fail(i, e);
    }
  }

  /** Put one step in force; what ends it (undefined: it ends by itself). */
  private async apply(s: FaultStep): Promise<Undo | undefined> {
    const { network, checkout, redis } = this.act;
    switch (s.action) {
      case 'toxic': {
        const name = await need(network, 'no proxy').addToxic(s.link, s.toxic);
        return () => network!.removeToxic(s.link, name);
      }
      case 'down':
        await need(network, 'no proxy').setEnabled(s.link, false);
        return () => network!.setEnabled(s.link, true);
      case 'kill': {
        const inst = need(checkout, 'no checkout instances')(s.instance);
        await inst.kill();
        // An instance without a restart in the timeline stays down.
        return s.restartAfterMs === undefined ? undefined : () => inst.restart();
      }
      case 'restart':
        await need(redis, 'no Redis started by the harness').restart(s.how, s.downMs);
        return undefined;
      case 'pause': {
        const r = need(redis, 'no Redis');
        await r.pause(s.durationMs, s.mode);
        return () => r.unpause();
      }
    }
  }

  private async end(i: number): Promise<void> {
    const undo = this.undo.get(i);
    if (!undo) return;
    this.undo.delete(i);
    try {
      await undo();
      this.played[i]!.toS = this.now();
    } catch (e) {
      this.fail(i, e);
    }
  }

  /** End of traffic: nothing more starts, what is in force ends; the steps as played. */
  async stop(): Promise<PlayedStep[]> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    while (this.running.size) await Promise.all([...this.running]);
    await Promise.all([...this.undo.keys()].map((i) => this.end(i)));
    return this.result();
  }

  result(): PlayedStep[] {
    return this.played.map((p) => ({ ...p }));
  }

  /** The report's bands: each step that took effect, from when it did to when it ended. */
  bands(): FaultBand[] {
    return this.played.flatMap((p) =>
      p.fromS === null
        ? []
        : [
            {
              service: bandService(this.steps[p.step]!),
              label: p.label,
              fromS: p.fromS,
              toS: p.toS,
            },
          ],
    );
  }
}

function need<T>(x: T | undefined, why: string): T {
  if (x === undefined) throw new Error(why);
  return x;
}

function targetOf(s: FaultStep): string {
  switch (s.action) {
    case 'toxic':
    case 'down':
      return `link:${s.link}`;
    case 'kill':
      return `checkout#${s.instance}`;
    default:
      return 'redis';
  }
}

/** One line for a step: what a reader of the report sees on its band. */
export function labelOf(s: FaultStep): string {
  switch (s.action) {
    case 'toxic':
      return `network: ${describeToxic(s.toxic)}`;
    case 'down':
      return 'network: link down';
    case 'kill':
      return `instance ${s.instance} killed${s.restartAfterMs === undefined ? '' : ', restarted after'}`;
    case 'restart':
      return `restart (${s.how === 'kill' ? 'SIGKILL' : 'SHUTDOWN'}, append-only file)`;
    case 'pause':
      return `CLIENT PAUSE ${s.mode.toUpperCase()}`;
  }
}

function bandService(s: FaultStep): FaultBand['service'] {
  if (s.action === 'toxic' || s.action === 'down') return s.link;
  return s.action === 'kill' ? 'checkout' : 'redis';
}
