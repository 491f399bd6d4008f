#!/usr/bin/env node
// Entry point for `npx flashcrowd`: loads the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../harness/cli.ts');
await main(process.argv);
