// The shoppers of a run, written once before the traffic (SHOPPERS_FILE) and
// read by the k6 scenario into a SharedArray: shopper n serves arrival n.
// Every behaviour decision comes from scenarios/lib/shopper.ts (the same
// draws the script makes when it runs without this file); this adds a name,
// a phone number and a city from faker's zh_CN locale, seeded with the run's
// seed. Same seed, same file, byte for byte.
import { closeSync, openSync, writeSync } from 'node:fs';
import { fakerZH_CN as faker } from '@faker-js/faker';
import { shopperCount, type ResolvedPreset } from '../scenarios/lib/preset.ts';
import { drawShopper, type Shopper } from '../scenarios/lib/shopper.ts';

export type { Shopper };

export interface ShoppersFile {
  /** The run's seed. */
  seed: number;
  /** The preset (and variant) the shoppers were drawn for. */
  preset: string;
  variant?: string;
  count: number;
  shoppers: Shopper[];
}

export interface WriteShoppersOptions {
  seed: number;
  /** How many (default: the arrivals of the preset's shape plus a margin, `shopperCount`). */
  count?: number;
  preset: ResolvedPreset;
}

/** Shopper n of a run, with faker's name, phone and city (call in order n = 0, 1, ... after seeding faker). */
function shopper(seed: number, n: number, preset: ResolvedPreset): Shopper {
  const { id, ...decisions } = drawShopper(seed, n, preset);
  return {
    id,
    name: faker.person.fullName(),
    phone: faker.phone.number({ style: 'national' }),
    city: faker.location.city(),
    ...decisions,
  };
}

/** The shoppers of a run, in memory (for tests and small runs). */
export function makeShoppers(o: WriteShoppersOptions): Shopper[] {
  const count = checkCount(o);
  faker.seed(o.seed);
  return Array.from({ length: count }, (_, n) => shopper(o.seed, n, o.preset));
}

function checkCount(o: WriteShoppersOptions): number {
  const count = o.count ?? shopperCount(o.preset);
  if (!Number.isInteger(count) || count < 1 || count > 10_000_000)
    throw new RangeError(`shoppers count: must be an integer from 1 to 10000000 (got ${count})`);
  if (!Number.isInteger(o.seed))
    throw new RangeError(`shoppers seed: must be an integer (got ${o.seed})`);
  return count;
}

/**
 * Write the shoppers file: `{seed, preset, variant?, count, shoppers: [...]}`,
 * one shopper per line, streamed (a full-scale run has hundreds of
 * thousands). Returns the file's head (everything but the list).
 */
export async function writeShoppers(
  file: string,
  o: WriteShoppersOptions,
): Promise<Omit<ShoppersFile, 'shoppers'>> {
  const count = checkCount(o);
  faker.seed(o.seed);
  const head = {
    seed: o.seed,
    preset: o.preset.name,
    ...(o.preset.variant !== undefined ? { variant: o.preset.variant } : {}),
    count,
  };
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, `${JSON.stringify(head).slice(0, -1)},"shoppers":[\n`);
    let chunk: string[] = [];
    for (let n = 0; n < count; n += 1) {
      const s = shopper(o.seed, n, o.preset);
      chunk.push(JSON.stringify(s) + (n < count - 1 ? ',' : ''));
      if (chunk.length === 1_000) {
        writeSync(fd, chunk.join('\n') + '\n');
        chunk = [];
        // Let the event loop breathe on very large runs.
        if (n % 50_000 === 49_999) await new Promise((r) => setImmediate(r));
      }
    }
    if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
    writeSync(fd, ']}\n');
  } finally {
    closeSync(fd);
  }
  return head;
}
