// Runs one command for `flashcrowd run`, in a process group of its own (the
// run spawns this file detached): Ctrl-C at the terminal and a SIGTERM to the
// run's process group do not reach it, so after an interrupt the run can still
// audit Redis and write its reports. It stops the command when its stdin
// closes (the run ended, or died even by SIGKILL), or on SIGTERM/SIGINT sent
// to it, and exits with the command's code.
import { spawn } from 'node:child_process';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: node harness/guard.mjs <command> [args...]');
  process.exit(2);
}
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
const stop = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
process.stdin.on('close', () => stop('SIGTERM'));
process.stdin.on('end', () => stop('SIGTERM'));
process.stdin.resume();
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGTERM'));
child.on('error', (e) => {
  console.error(`guard: cannot run ${cmd}: ${e.message}`);
  process.exit(127);
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
