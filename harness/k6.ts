// Run the real k6 binary.
import { spawn } from 'node:child_process';
import { requireTool } from './tools.ts';

export interface K6RunOptions {
  script: string;
  env?: Record<string, string | number>;
  /** Extra k6 arguments (e.g. --summary-export FILE). */
  args?: string[];
  /** Inherit stdio (default) or capture it. */
  capture?: boolean;
  /** k6's REST API address (default 127.0.0.1:0, a free port nobody reads). */
  address?: string;
}

export interface K6Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function runK6(opts: K6RunOptions): Promise<K6Result> {
  const k6 = requireTool('k6');
  const envArgs = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  // No usage report (this machine reaches no such host), and the REST API on a
  // free loopback port so parallel runs never collide on 6565.
  const args = [
    'run',
    '--no-usage-report',
    '--address',
    opts.address ?? '127.0.0.1:0',
    ...envArgs,
    ...(opts.args ?? []),
    opts.script,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(k6, args, {
      stdio: opts.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
      env: { ...process.env, K6_NO_USAGE_REPORT: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
