// flashcrowd's version (package.json), for the services' OpenAPI documents.
import { readFileSync } from 'node:fs';

let version: string | undefined;

export function flashcrowdVersionOf(): string {
  version ??= (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
  return version;
}
