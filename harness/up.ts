// `flashcrowd up`: what it seeds and prints besides starting the stack. The
// sale of a preset (default the demo's, livestream-spike) at that preset's CI
// scales, so that the k6 command line it prints works as printed: the script
// plays the same preset at the same scales against SKUs that exist. The
// checkout's and the mocks' durations follow the same time-scale.
import { join } from 'node:path';
import { isIP } from 'node:net';
import { UsageError } from './errors.ts';
import { loadPreset, resolvePreset } from './preset.ts';
import type { ResolvedPreset } from '../scenarios/lib/preset.ts';
import type { StackUrls } from './stack.ts';
import { PROJECT_ROOT } from './tools.ts';
import { http } from './run/http.ts';

export const UP_DEFAULT_PRESET = 'livestream-spike';
export const LIVESTREAM_SCRIPT = join(PROJECT_ROOT, 'scenarios', 'livestream.ts');

export interface UpPlan {
  /** The preset's name (PRESET=) or file. */
  preset: string;
  seed: number;
  timeScale: number;
  loadScale: number;
  resolved: ResolvedPreset;
}

/** The preset `up` seeds and prints the k6 line for, at its CI scales unless given. */
export function upPlan(o: {
  preset?: string;
  seed: number;
  timeScale?: number;
  loadScale?: number;
}): UpPlan {
  const name = o.preset ?? UP_DEFAULT_PRESET;
  const { preset } = loadPreset(name);
  const byName = /^[a-z0-9-]+$/.test(name);
  if (!byName)
    throw new UsageError(
      `--preset ${name}: \`up\` takes a preset name from scenarios/presets (the k6 script it prints reads the preset by name); ` +
        'for a preset file, use `flashcrowd run FILE --target ...`',
    );
  const timeScale = o.timeScale ?? preset.ci.timeScale;
  const loadScale = o.loadScale ?? preset.ci.loadScale;
  return {
    preset: name,
    seed: o.seed,
    timeScale,
    loadScale,
    resolved: resolvePreset(preset, { seed: o.seed, timeScale, loadScale }),
  };
}

/** Seed the plan's sale (SKUs, stock, coupon campaign) through the checkout's POST /admin/sale. */
export async function seedUpSale(checkout: string, plan: UpPlan): Promise<string> {
  const { sale } = plan.resolved;
  const r = await http(`${checkout}/admin/sale`, {
    method: 'POST',
    body: { skus: sale.skus, ...(sale.coupon ? { coupon: sale.coupon } : {}) },
  });
  if (r.status !== 201)
    throw new Error(`seeding the sale failed: ${r.status} ${JSON.stringify(r.body)}`);
  return (
    `sale of ${plan.preset} seeded (time-scale ${plan.timeScale}, load-scale ${plan.loadScale}): ` +
    sale.skus.map((s) => `${s.id} x${s.stock}`).join(', ') +
    (sale.coupon ? `; coupons ${sale.coupon.budget}` : '')
  );
}

/** The k6 command line that plays the plan against the stack, as argv. */
export function k6CommandArgs(urls: StackUrls, plan: UpPlan, script = LIVESTREAM_SCRIPT): string[] {
  const checkouts = urls.checkouts ?? [urls.checkout];
  return [
    'k6',
    'run',
    '--no-usage-report',
    '-e',
    checkouts.length > 1 ? `TARGET_URLS=${checkouts.join(',')}` : `TARGET_URL=${urls.checkout}`,
    '-e',
    `COUPON_URL=${urls.coupon}`,
    '-e',
    `PRESET=${plan.preset}`,
    '-e',
    `TIME_SCALE=${plan.timeScale}`,
    '-e',
    `LOAD_SCALE=${plan.loadScale}`,
    '-e',
    `SEED=${plan.seed}`,
    script,
  ];
}

/** argv as a POSIX shell line (single quotes where needed). */
export function shellLine(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/** Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}

/**
 * `--host` outside loopback exposes the admin routes (seeding the sale,
 * resetting, the chaos profiles): refused without FLASHCROWD_ADMIN_TOKEN.
 */
export function checkHostToken(command: string, host: string, env = process.env): void {
  if (isLoopbackHost(host)) return;
  if (env.FLASHCROWD_ADMIN_TOKEN) return;
  throw new UsageError(
    `${command} --host ${host}: a non-loopback address exposes the admin routes (/admin/*, /__chaos, /__reset) to the network; ` +
      'set FLASHCROWD_ADMIN_TOKEN (clients then send "Authorization: Bearer <token>"), or listen on 127.0.0.1',
  );
}
