// `flashcrowd run`, a clean start: every part of the target the run can reach
// goes back to a fresh start before the sale is seeded (the checkout:
// `POST /admin/reset`, its Redis keys, metrics, breakers and retry budgets;
// each mock: `POST /__reset?seed=<run seed>&timeScale=<run time-scale>`, its
// domain state, ledger and metrics, its random streams reseeded with the run's
// seed, its world durations on the run's clock), then the run
// looks for anything left: an SKU in stock, a counted request, a ledger entry.
// A target still dirty after its reset (a refused admin call, a server that
// is not flashcrowd's, traffic from someone else) is refused, exit 2. With
// --no-reset nothing is reset and what is found is a warning: the run's
// counts and audit then include what came before.
import { UsageError } from '../errors.ts';
import { counterRows, scrape } from '../prom.ts';
import { http } from './http.ts';
import type { RunContext } from './preset.ts';
import { SERVICES, type Target } from './target.ts';

/** Reset the target (unless --no-reset), then refuse it, or warn, if anything is left. */
export async function resetTarget(ctx: RunContext, target: Target): Promise<void> {
  const { urls } = target;
  const checkouts = urls.checkouts ?? [urls.checkout];
  const parts = [
    checkouts.length > 1 ? `checkout (${checkouts.length} instances)` : 'checkout',
    ...SERVICES.filter((s) => urls[s]),
  ];
  const failed: string[] = [];
  if (ctx.o.reset !== false) {
    // Each instance: its Redis keys (the same for all) and what it holds in memory
    // (stock cache, breakers, retry budgets, metrics).
    for (const [i, url] of checkouts.entries()) {
      const checkout = await call(`${url}/admin/reset`);
      if (checkout)
        failed.push(
          `checkout${checkouts.length > 1 ? ` instance ${i}` : ''}: POST /admin/reset ${checkout}`,
        );
    }
    for (const s of SERVICES) {
      if (!urls[s]) continue;
      const r = await call(`${urls[s]}/__reset?seed=${ctx.r.seed}&timeScale=${ctx.r.timeScale}`);
      if (r) failed.push(`${s}: POST /__reset ${r}`);
    }
  }
  const dirt = [...failed, ...(await dirtOf(target))];
  const reset = ctx.o.reset !== false;
  if (!dirt.length) {
    ctx.print(
      reset
        ? `reset: ${parts.join(', ')} (mocks reseeded with ${ctx.r.seed}, time-scale ${ctx.r.timeScale}): clean`
        : `not reset (--no-reset): ${parts.join(', ')} found clean`,
    );
    return;
  }
  if (!reset) {
    ctx.warnings.push(
      `not reset (--no-reset) and not clean: ${dirt.join('; ')}; this run's counts and audit include what came before`,
    );
    return;
  }
  throw new UsageError(
    `the target is not clean after its reset: ${dirt.join('; ')}. ` +
      'flashcrowd resets the checkout (POST /admin/reset) and every mock it is given (POST /__reset) so that a run starts ' +
      'from nothing; check FLASHCROWD_ADMIN_TOKEN and that nothing else sends traffic to it, or run with --no-reset ' +
      'to accept a dirty target (its earlier orders, payments and counters then count in this run)',
  );
}

/** A POST that must answer 2xx: undefined when it did, else what came back. */
async function call(url: string): Promise<string | undefined> {
  try {
    const r = await http(url, { method: 'POST', body: {} });
    return r.status < 300
      ? undefined
      : `answered ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
  } catch (err) {
    return `failed: ${(err as Error).message}`;
  }
}

/** What an earlier run (or another client) left in the target, one phrase each. */
export async function dirtOf({ urls }: Target): Promise<string[]> {
  const dirt: string[] = [];
  const stock = await http<{ data?: unknown[] }>(`${urls.checkout}/admin/stock`).catch(
    () => undefined,
  );
  const skus = stock?.body.data?.length ?? 0;
  if (skus) dirt.push(`checkout: ${skus} SKU(s) of an earlier sale`);
  const checkouts = urls.checkouts ?? [urls.checkout];
  for (const [i, url] of checkouts.entries()) {
    const counted = await requestsCounted(url, 'flashcrowd_checkout_requests_total');
    const name = checkouts.length > 1 ? `checkout instance ${i}` : 'checkout';
    if (counted) dirt.push(`${name}: ${counted} request(s) counted`);
  }
  for (const s of SERVICES) {
    const url = urls[s];
    if (!url) continue;
    // The metrics first: reading the statement is a request the mock counts.
    const n = await requestsCounted(url, 'flashcrowd_mock_requests_total');
    if (n) dirt.push(`${s}: ${n} request(s) counted`);
    const st = await http<{ entries?: unknown[] }>(`${url}/v1/statement?limit=1`).catch(
      () => undefined,
    );
    if (st?.body.entries?.length) dirt.push(`${s}: its ledger has entries`);
  }
  return dirt;
}

/** The sum of a counter on `url`'s /metrics (0 when unreadable: the reset said why). */
async function requestsCounted(url: string, name: string): Promise<number> {
  const text = await scrape(url).catch(() => undefined);
  if (text === undefined) return 0;
  return counterRows(text, name)
    .filter((r) => r.name === name)
    .reduce((s, r) => s + r.value, 0);
}
