// Errors that handlers throw; the service's error handler turns them into
// JSON answers that name the field and the reason.
import type { z } from 'zod';
export type FieldError = { field: string; reason: string };
import { issuesToErrors } from './chaos/profile.ts';

/** Thrown by handlers for bad input: answered as 400 (or `status`) with the fields named. */
export class ValidationError extends Error {
  constructor(
    readonly errors: FieldError[],
    readonly status = 400,
    readonly code = 'validation_failed',
  ) {
    super(errors.map((e) => `${e.field}: ${e.reason}`).join('; '));
  }
}

/** Thrown by handlers for a domain refusal that is not a decline (404, 409, 422...). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Validate `value` (a body, query or params object) with `schema`; throws
 * ValidationError naming each bad field (unknown ones one by one) and naming
 * whole-object errors `where`.
 */
export function parseInput<S extends z.ZodTypeAny>(
  schema: S,
  value: unknown,
  where: '(body)' | '(query)' | '(path)' = '(body)',
): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ValidationError(issuesToErrors(r.error.issues, where));
  return r.data;
}
