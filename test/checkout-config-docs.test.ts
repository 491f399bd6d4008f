// Every checkout setting is documented: each feature has a row in
// docs/CHECKOUT.md's table with its naive and hardened values as the presets
// set them, and each parameter a row with its default.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PARAMS, PRESETS } from '../checkout/config.ts';

const doc = readFileSync(new URL('../docs/CHECKOUT.md', import.meta.url), 'utf8');
const rows = doc.split('\n').filter((l) => l.startsWith('| `'));

describe('docs/CHECKOUT.md', () => {
  it.each(Object.keys(PRESETS.hardened))(
    'has feature %s with its naive and hardened values',
    (k) => {
      const key = k as keyof typeof PRESETS.hardened;
      const row = rows.find((l) => l.startsWith(`| \`${k}\` |`));
      expect(row, `no row for ${k}`).toBeDefined();
      const cells = row!.split('|').map((c) => c.trim());
      expect(cells.slice(2, 4)).toEqual([
        String(PRESETS.naive[key]),
        String(PRESETS.hardened[key]),
      ]);
    },
  );

  it.each(Object.keys(DEFAULT_PARAMS).filter((k) => k !== 'walletSecret'))(
    'has parameter %s with its default',
    (k) => {
      const row = rows.find((l) => l.split('|')[1]?.includes(`\`${k}\``));
      expect(row, `no row for ${k}`).toBeDefined();
      const names = row!
        .split('|')[1]!
        .match(/`(\w+)`/g)!
        .map((n) => n.slice(1, -1));
      const defaults = row!
        .split('|')[2]!
        .split(',')
        .map((d) => d.trim());
      const at = names.indexOf(k);
      expect(Number(defaults[at])).toBe(DEFAULT_PARAMS[k as keyof typeof DEFAULT_PARAMS]);
    },
  );
});
