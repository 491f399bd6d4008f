// `flashcrowd k8s`, the runners: an Indexed Job of N pods, each one
// `flashcrowd load` runner taking segment k/N of the arrival schedule, k its
// completion index + 1, registering with the harness Job's Service.
import { shellLine } from '../up.ts';
import { flashcrowdContainer, meta, podTemplate, type Manifest } from './objects.ts';
import { clusterUrls, NAMES, type K8sPlan } from './plan.ts';

/** How long a runner waits for the harness (which waits for the checkout first). */
export const RUNNER_WAIT_S = 600;

/** `flashcrowd load` but its segment (that comes from the pod's completion index). */
export function runnerArgs(plan: K8sPlan): string[] {
  return [
    'load',
    '--harness',
    clusterUrls(plan).harness,
    '--allow-remote-target',
    '--wait',
    String(RUNNER_WAIT_S),
  ];
}

/** The runner pod's shell line: Kubernetes sets JOB_COMPLETION_INDEX (0 to N-1) in an Indexed Job's pods. */
export function runnerShellLine(plan: K8sPlan): string {
  return (
    `exec node bin/flashcrowd.js ${shellLine(runnerArgs(plan))} ` +
    `--segment "$((JOB_COMPLETION_INDEX + 1))/${plan.runners}"`
  );
}

export function runnersJob(plan: K8sPlan): Manifest {
  const container = flashcrowdContainer(plan, 'runner', {
    command: ['sh', '-c', runnerShellLine(plan)],
  });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(plan, NAMES.runners),
    spec: {
      completionMode: 'Indexed',
      completions: plan.runners,
      parallelism: plan.runners,
      // A runner that dies is not replaced: the harness names it and fails the run.
      backoffLimit: 0,
      template: podTemplate(NAMES.runners, { restartPolicy: 'Never', containers: [container] }),
    },
  };
}
