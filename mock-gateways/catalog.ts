// What a chaos profile may name for each mock service (its operations, its
// decline reasons and the schema of its `extra` block), without loading the
// services themselves: the harness validates presets with this and stays light.
import type { z } from 'zod';
import { BANK_DECLINE_REASONS } from './bank/cards.ts';
import { BANK_OPERATIONS, bankExtraSchema } from './bank/schema.ts';
import { COUPON_DECLINE_REASONS, COUPON_OPERATIONS, couponExtraSchema } from './coupon/schema.ts';
import type { ServiceName } from './service.ts';
import { WALLET_DECLINE_REASONS } from './wallet/reasons.ts';
import { WALLET_OPERATIONS, walletExtraSchema } from './wallet/schema.ts';

export interface ServiceCatalogEntry {
  operations: readonly string[];
  declineReasons: readonly string[];
  extraSchema: z.ZodType;
}

export const SERVICE_NAMES = ['bank', 'wallet', 'coupon'] as const satisfies readonly ServiceName[];

export const SERVICE_CATALOG: Record<(typeof SERVICE_NAMES)[number], ServiceCatalogEntry> = {
  bank: {
    operations: BANK_OPERATIONS,
    declineReasons: BANK_DECLINE_REASONS,
    extraSchema: bankExtraSchema,
  },
  wallet: {
    operations: WALLET_OPERATIONS,
    declineReasons: WALLET_DECLINE_REASONS,
    extraSchema: walletExtraSchema,
  },
  coupon: {
    operations: COUPON_OPERATIONS,
    declineReasons: COUPON_DECLINE_REASONS,
    extraSchema: couponExtraSchema,
  },
};
