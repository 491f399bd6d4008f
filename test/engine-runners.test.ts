// The harness side of runner processes, without load (so beside the load
// files): a runner that never comes fails the start naming the missing
// segment and the command to run; bad and taken segments are refused with a
// JSON error naming the field. The runs with runners are in
// test/engine-http.test.ts.
import { describe, expect, it } from 'vitest';
import { RemoteEngine } from '../harness/engine/remote.ts';
import { EngineStartError, type LoadPlan } from '../harness/engine/types.ts';

/** A plan whose target is never called: no runner ever starts it. */
function plan(rate: number, seconds: number): LoadPlan {
  return {
    journey: { name: 'get', config: { url: 'http://127.0.0.1:9/hit', withIndex: true } },
    shape: { startRate: rate, stages: [{ durationS: seconds, target: rate }] },
    preAllocatedVUs: 10,
    maxVUs: 200,
    gracefulStopS: 5,
  };
}

describe('runner processes: the harness', () => {
  it('a runner that never comes fails the start with exit-2 error naming the missing segment', async () => {
    const e = new RemoteEngine({ runners: 2, registerTimeoutS: 1 });
    const err = await e.start(plan(10, 1)).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(EngineStartError);
    expect((err as Error).message).toMatch(/0 registered, segment\(s\) 1\/2, 2\/2 missing/);
    expect((err as Error).message).toMatch(
      /flashcrowd load --harness http:\/\/127\.0\.0\.1:\d+ --segment k\/2/,
    );
  });

  it('the harness refuses a bad segment and a taken one with a JSON error naming the field', async () => {
    const e = new RemoteEngine({ runners: 2, registerTimeoutS: 5 });
    const started = e.start(plan(10, 1)).catch((x: unknown) => x);
    await new Promise((r) => setTimeout(r, 50));
    const post = async (body: unknown) => {
      const res = await fetch(`${e.harnessUrl()}/v1/runners`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { error: string; field: string } };
    };
    expect(await post({ segment: '3/2' })).toEqual({
      status: 400,
      body: { error: 'k must be 1 to 2 (got 3)', field: 'segment' },
    });
    expect((await post({ segment: '1/4' })).body.error).toMatch(/this run has 2 segments, not 4/);
    expect((await post({ segment: 1 })).body.field).toBe('segment');
    expect((await post({ segment: '1/2', name: 'a' })).status).toBe(200);
    expect(await post({ segment: '1/2', name: 'b' })).toEqual({
      status: 409,
      body: { error: 'segment 1/2 is taken by a', field: 'segment' },
    });
    expect(await started).toBeInstanceOf(EngineStartError);
  });
});
