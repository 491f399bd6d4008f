// Find the external programs flashcrowd drives (k6, redis-server, promtool):
// the project's .tools/bin first, then PATH.
import { readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const TOOLS_BIN = join(PROJECT_ROOT, '.tools', 'bin');

/** flashcrowd's version (package.json): the CLI's, the summary's tool and engine version. */
export function flashcrowdVersion(): string {
  return (
    JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

/** The folders searched for a tool: .tools/bin, then PATH. */
export function toolDirs(path = process.env.PATH): string[] {
  return [TOOLS_BIN, ...(path ?? '').split(delimiter)];
}

export function findTool(name: string): string | undefined {
  return findToolIn(name, toolDirs());
}

/** The first file called `name` in one of `dirs`. */
export function findToolIn(name: string, dirs: string[]): string | undefined {
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not in this folder */
    }
  }
  return undefined;
}

/** Like findTool, but a missing tool is a usage error that says how to get it. */
export function requireTool(name: string): string {
  const p = findTool(name);
  if (!p)
    throw new UsageError(
      `${name} not found in .tools/bin or on PATH. Run \`npm run setup\` (it installs ${name}), or install it yourself.`,
    );
  return p;
}
