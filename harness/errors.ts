// Errors the CLI reports as a message and exit code 2 (usage or set-up), without a stack trace.
export class UsageError extends Error {
  readonly exitCode = 2;
}
