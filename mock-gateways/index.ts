// The mock services by name. Each entry builds a fresh service definition.
import { createBank } from './bank/service.ts';
import { createWallet } from './wallet/service.ts';
import { createCoupon } from './coupon/service.ts';
import type { AnyServiceDefinition, ServiceName } from './service.ts';

export const SERVICE_FACTORIES: Partial<Record<ServiceName, () => AnyServiceDefinition>> = {
  bank: createBank,
  wallet: createWallet,
  coupon: createCoupon,
};

export { SERVICE_NAMES } from './catalog.ts';
