// `flashcrowd run`, the sale: read the checkout's settings and seed the sale
// (SKUs and stock, the coupon campaign) the preset describes.
import { must } from './http.ts';
import type { RunContext } from './preset.ts';
import type { Target } from './target.ts';

/** The checkout's `GET /admin/config`: its build, reported in summary.json `checkout`. */
export interface CheckoutConfig {
  mode: 'naive' | 'hardened';
  features: Record<string, boolean | string>;
  params: Record<string, number | string>;
  keyPrefix?: string;
}

export interface Sale {
  config: CheckoutConfig;
  skuIds: string[];
}

export async function seedSale(ctx: RunContext, { urls }: Target): Promise<Sale> {
  const { sale } = ctx.resolved;
  const config = await must<CheckoutConfig>(
    'reading the checkout settings',
    `${urls.checkout}/admin/config`,
  );
  await must('seeding the sale', `${urls.checkout}/admin/sale`, {
    method: 'POST',
    body: { skus: sale.skus, ...(sale.coupon ? { coupon: sale.coupon } : {}) },
  });
  ctx.print(
    `sale: ${sale.skus.map((s) => `${s.id} x${s.stock}`).join(', ')}` +
      (sale.coupon ? `; coupons ${sale.coupon.budget}` : ''),
  );
  return { config, skuIds: sale.skus.map((s) => s.id) };
}
