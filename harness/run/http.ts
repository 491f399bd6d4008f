// The run's calls to the stack's admin and chaos routes (with
// FLASHCROWD_ADMIN_TOKEN as a bearer token when it is set).
import { UsageError } from '../errors.ts';

type Init = { method?: string; body?: unknown };

/** One JSON request; the body parsed when it is JSON, else its text. */
export async function http<T = unknown>(
  url: string,
  init: Init = {},
): Promise<{ status: number; body: T }> {
  const token = process.env.FLASHCROWD_ADMIN_TOKEN;
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: body as T };
}

/**
 * GET `path` from the first checkout instance that answers (state is in
 * Redis: any instance answers for all, whichever were killed); undefined when
 * none does.
 */
export async function fromAnyInstance<T = unknown>(
  checkouts: readonly string[],
  path: string,
): Promise<{ status: number; body: T } | undefined> {
  for (const url of checkouts) {
    const r = await http<T>(`${url}${path}`).catch(() => undefined);
    if (r && r.status < 500) return r;
  }
  return undefined;
}

/** A request that must succeed: a status of 300 or more is a set-up error (exit 2). */
export async function must<T = unknown>(what: string, url: string, init: Init = {}): Promise<T> {
  const r = await http<T>(url, init);
  if (r.status >= 300)
    throw new UsageError(
      `${what}: ${init.method ?? 'GET'} ${url} answered ${r.status}: ${JSON.stringify(r.body)}`,
    );
  return r.body;
}
