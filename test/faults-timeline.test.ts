// The fault timeline's bookkeeping (harness/faults/timeline.ts) on a fake
// clock: each step starts at its offset and ends after its duration, stop()
// ends what is still in force (a killed instance due a restart is started),
// a step whose actuator fails is recorded with its error and fails the run's
// faults.failed check, and the bands say what was in force when. The
// actuators here record calls; the real ones (Toxiproxy, processes, Redis)
// are exercised by test/faults.test.ts and the matrix's fault rows.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { faultsSchema, scaleFaults, type FaultStep } from '../harness/faults/schema.ts';
import { FaultTimeline, type FaultActuators } from '../harness/faults/timeline.ts';
import { faultsBudget } from '../harness/run/faults.ts';

const steps = (raw: unknown[]): FaultStep[] => faultsSchema.parse(raw);

function recorder(fail: Set<string> = new Set()) {
  const calls: string[] = [];
  const act = (name: string) => {
    calls.push(`${Date.now()} ${name}`);
    if (fail.has(name)) return Promise.reject(new Error(`${name} refused`));
    return Promise.resolve();
  };
  const actuators: FaultActuators = {
    network: {
      addToxic: async (link, t) => (await act(`add ${link} ${t.type}`), `${t.type}_${t.stream}`),
      removeToxic: (link, name) => act(`remove ${link} ${name}`),
      setEnabled: (link, on) => act(`${on ? 'enable' : 'disable'} ${link}`),
    },
    checkout: (i) => ({ kill: () => act(`kill ${i}`), restart: () => act(`restart ${i}`) }),
    redis: {
      restart: async (how, downMs) => {
        await act(`stop redis ${how}`);
        await new Promise((r) => setTimeout(r, downMs));
        await act('start redis');
      },
      pause: (ms, mode) => act(`pause ${ms} ${mode}`),
      unpause: () => act('unpause'),
    },
  };
  return { calls, actuators };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the fault timeline', () => {
  it('plays each step at its offset, ends it after its duration, and ends the rest at stop()', async () => {
    const { calls, actuators } = recorder();
    const t = new FaultTimeline(
      steps([
        {
          action: 'toxic',
          atMs: 100,
          durationMs: 200,
          link: 'redis',
          toxic: { type: 'latency', attributes: { latency: 5 } },
        },
        { action: 'kill', atMs: 150, target: 'checkout', instance: 1, restartAfterMs: 1_000 },
        { action: 'restart', atMs: 400, target: 'redis', downMs: 50 },
        { action: 'down', atMs: 500, link: 'bank' },
      ]),
      actuators,
    );
    t.start(0);
    await vi.advanceTimersByTimeAsync(600);
    const played = await t.stop();
    expect(calls).toEqual([
      '100 add redis latency',
      '150 kill 1',
      '300 remove redis latency_downstream',
      '400 stop redis kill',
      '450 start redis',
      '500 disable bank',
      // stop(): the killed instance is restarted now, the link enabled again.
      '600 restart 1',
      '600 enable bank',
    ]);
    expect(played.map((p) => [p.target, p.fromS, p.toS, p.error])).toEqual([
      ['link:redis', 0.1, 0.3, undefined],
      ['checkout#1', 0.15, 0.6, undefined],
      ['redis', 0.4, 0.45, undefined],
      ['link:bank', 0.5, 0.6, undefined],
    ]);
    expect(t.bands().map((b) => [b.service, b.fromS, b.toS])).toEqual([
      ['redis', 0.1, 0.3],
      ['checkout', 0.15, 0.6],
      ['redis', 0.4, 0.45],
      ['bank', 0.5, 0.6],
    ]);
    expect(faultsBudget(played)).toMatchObject({ ok: true, value: 0 });
  });

  it('a step that fails is recorded with its error and fails faults.failed; a step after stop() never starts', async () => {
    const { calls, actuators } = recorder(new Set(['add bank timeout']));
    const t = new FaultTimeline(
      steps([
        {
          action: 'toxic',
          atMs: 0,
          link: 'bank',
          toxic: { type: 'timeout', attributes: { timeout: 0 } },
        },
        { action: 'pause', atMs: 1_000, durationMs: 10, target: 'redis' },
      ]),
      actuators,
    );
    t.start(0);
    await vi.advanceTimersByTimeAsync(10);
    const played = await t.stop();
    expect(calls).toEqual(['0 add bank timeout']);
    expect(played[0]).toMatchObject({ fromS: null, error: 'add bank timeout refused' });
    expect(played[1]).toMatchObject({ fromS: null, toS: null });
    const check = faultsBudget(played)!;
    expect(check.ok).toBe(false);
    expect(check.value).toBe(2);
    expect(check.note).toMatch(
      /faults\.0 \(link:bank: network: black hole down\): add bank timeout refused/,
    );
    expect(t.bands()).toEqual([]);
  });

  it('scales offsets and durations with the run, not the toxic itself', () => {
    const [toxic, kill] = scaleFaults(
      steps([
        {
          action: 'toxic',
          atMs: 240_000,
          durationMs: 360_000,
          link: 'redis',
          toxic: { type: 'latency', attributes: { latency: 1500 } },
        },
        { action: 'kill', atMs: 300_000, target: 'checkout', restartAfterMs: 60_000 },
      ]),
      0.01,
    );
    expect(toxic).toMatchObject({
      atMs: 2_400,
      durationMs: 3_600,
      toxic: { attributes: { latency: 1500 } },
    });
    expect(kill).toMatchObject({ atMs: 3_000, restartAfterMs: 600 });
  });
});
