// `flashcrowd up --json` as a user starts it: a child process holding the whole
// stack (Redis, the mocks, the checkout), its URLs from its one JSON line, its
// output kept for failure messages. stop() sends SIGTERM and waits for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { StackUrls } from '../../harness/stack.ts';
import { BIN } from './cli.ts';

export interface UpStack {
  urls: StackUrls;
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  log(): string;
  /** Whether the process is still running. */
  alive(): boolean;
  stop(): Promise<void>;
}

export async function startUp(
  args: string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): Promise<UpStack> {
  const child = spawn(process.execPath, [BIN, 'up', '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let log = '';
  let exited = false;
  child.once('exit', () => (exited = true));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const urls = await new Promise<StackUrls>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`flashcrowd up printed no URLs in 60 s:\n${log}`)),
      60_000,
    );
    lines.on('line', (l) => {
      log += `${l}\n`;
      if (l.startsWith('{')) {
        clearTimeout(t);
        resolve(JSON.parse(l) as StackUrls);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`flashcrowd up exited with ${code} before printing its URLs:\n${log}`));
    });
  });
  return {
    urls,
    child,
    log: () => log,
    alive: () => !exited,
    async stop() {
      if (exited) return;
      const done = once(child, 'exit');
      child.kill('SIGTERM');
      await done;
    },
  };
}
