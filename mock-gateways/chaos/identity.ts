// Helpers for the identities services give their operations (engine.identify):
// read a string field of a request part that has not been validated yet.
import type { IdentitySource } from './engine.ts';

/** `obj[name]` when obj is an object and that field a non-empty string; else undefined. */
export function stringField(obj: unknown, name: string): string | undefined {
  if (!obj || typeof obj !== 'object') return undefined;
  const v = (obj as Record<string, unknown>)[name];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** A string field of the body, the path parameters or the query. */
export const bodyField = (req: IdentitySource, name: string) => stringField(req.body, name);
export const paramField = (req: IdentitySource, name: string) => stringField(req.params, name);
export const queryField = (req: IdentitySource, name: string) => stringField(req.query, name);

/** `prefix:value`, or undefined without a value. */
export const tagged = (prefix: string, value: string | undefined) =>
  value === undefined ? undefined : `${prefix}:${value}`;
