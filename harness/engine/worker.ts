// A worker thread running one segment of the schedule (runner.ts): says it is
// ready, waits for the shared start instant, posts a report each second and
// the final one. `stop` from the parent cuts the segment short.
import { parentPort, workerData } from 'node:worker_threads';
import { runSegment, type SegmentPlan } from './runner.ts';

export type ToWorker = { type: 'go'; startAtMs: number } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'report'; report: import('./runner.ts').SegmentReport }
  | { type: 'final'; report: import('./runner.ts').SegmentReport };

const port = parentPort!;
const plan = (workerData as { plan: Omit<SegmentPlan, 'startAtMs'> }).plan;
const ac = new AbortController();
port.on('message', (m: ToWorker) => {
  if (m.type === 'stop') ac.abort();
  else if (m.type === 'go')
    void runSegment(
      { ...plan, startAtMs: m.startAtMs },
      {
        signal: ac.signal,
        onReport: (report) => port.postMessage({ type: 'report', report } satisfies FromWorker),
      },
    ).then((report) => {
      port.postMessage({ type: 'final', report } satisfies FromWorker);
      port.close();
    });
});
port.postMessage({ type: 'ready' } satisfies FromWorker);
