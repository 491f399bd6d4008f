// Writes a run's shoppers file in a process of its own: harness/run.ts starts
// this (writeShoppersApart), so faker and its zh_CN locale (about 40 MB) are
// never loaded into the harness process that then collects and audits.
//   node bin/run-ts.js harness/shoppers-main.ts FILE PRESET_FILE SEED
import { readFileSync } from 'node:fs';
import type { ResolvedPreset } from '../scenarios/lib/preset.ts';
import { writeShoppers } from './shoppers.ts';

const [file, presetFile, seed] = process.argv.slice(2);
if (!file || !presetFile || seed === undefined) {
  console.error('usage: node bin/run-ts.js harness/shoppers-main.ts FILE PRESET_FILE SEED');
  process.exit(2);
}
const preset = JSON.parse(readFileSync(presetFile, 'utf8')) as ResolvedPreset;
const head = await writeShoppers(file, { seed: Number(seed), preset });
console.log(JSON.stringify(head));
