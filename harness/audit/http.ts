// Reading the mocks over HTTP: a JSON GET that retries (the mocks may still be
// under chaos), the pages of a paged statement one at a time, and a bounded
// fan-out for the gateway probes.

/** A mock's base URL without its trailing slash. */
export const baseUrl = (u: string) => u.replace(/\/$/, '');

export async function getJson<T>(url: string, attempts: number): Promise<T> {
  let last = '';
  for (let i = 0; i < attempts; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (res.status === 200) return JSON.parse(text) as T;
      last = `HTTP ${res.status}: ${text.slice(0, 200)}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50 * (i + 1)));
  }
  throw new Error(`GET ${url} failed after ${attempts} attempts (${last})`);
}

/** Every page of a paged statement (`limit`, `cursor`, `next`), one at a time. */
export async function* pages<P extends { next?: number }>(
  url: string,
  query: Record<string, string | undefined>,
  pageSize: number,
  attempts: number,
): AsyncGenerator<P> {
  let cursor: number | undefined = 0;
  while (cursor !== undefined) {
    const q = new URLSearchParams({ limit: String(pageSize), cursor: String(cursor) });
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, v);
    const page: P = await getJson<P>(`${url}?${q}`, attempts);
    if (page.next !== undefined && !(page.next > cursor))
      throw new Error(`GET ${url}: the page at cursor ${cursor} says next ${page.next}`);
    cursor = page.next;
    yield page;
  }
}

/** Run `fn` over `xs` with at most `n` at once. */
export async function eachLimit<T>(xs: readonly T[], n: number, fn: (x: T) => Promise<void>) {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, xs.length) }, async () => {
      while (i < xs.length) await fn(xs[i++]!);
    }),
  );
}
