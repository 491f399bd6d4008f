// The HTML report in a real browser: headless Chromium (Debian's `chromium`,
// installed by `node scripts/setup.mjs --for-tests`; FLASHCROWD_CHROMIUM
// names another binary) driven by playwright-core opens index.html from disk,
// with the network blocked, and renders every chart without a console error,
// a page error or a request for anything outside the file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReports } from '../harness/report/index.ts';
import { findTool } from '../harness/tools.ts';
import { baseSummary, failingSummary, series } from './support/report-fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'flashcrowd-browser-'));
let browser: Browser | undefined;

function chromiumPath(): string | undefined {
  return (
    process.env.FLASHCROWD_CHROMIUM ||
    ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']
      .map(findTool)
      .find(Boolean)
  );
}

beforeAll(async () => {
  const exe = chromiumPath();
  expect(
    exe,
    'chromium not found: run `node scripts/setup.mjs --for-tests` (npm test does) or set FLASHCROWD_CHROMIUM',
  ).toBeDefined();
  browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('index.html in headless Chromium', () => {
  for (const [name, summary, fail] of [
    ['a passing run', baseSummary(), false],
    ['a failing run with fault bands and gaps', failingSummary(), true],
  ] as const) {
    it(`renders every chart of ${name} without console errors or outside requests`, async () => {
      const dir = join(tmp, fail ? 'fail' : 'pass');
      await writeReports(dir, structuredClone(summary), series(fail), { stepSummary: null });
      const page = await browser!.newPage();
      const problems: string[] = [];
      const outside: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning')
          problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:')) return route.continue();
        outside.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(join(dir, 'index.html')).href, { waitUntil: 'load' });

      // Every chart is an SVG the browser laid out with a real size and drew lines in.
      const charts = await page.$$eval('svg', (svgs) =>
        svgs.map((s) => {
          const box = s.getBoundingClientRect();
          return {
            width: box.width,
            height: box.height,
            paths: s.querySelectorAll('path, polyline, line, rect').length,
          };
        }),
      );
      expect(charts.length).toBeGreaterThanOrEqual(5);
      for (const c of charts) {
        expect(c.width).toBeGreaterThan(200);
        expect(c.height).toBeGreaterThan(100);
        expect(c.paths).toBeGreaterThan(0);
      }
      const text = await page.innerText('body');
      expect(text).toContain(fail ? 'FAIL' : 'PASS');
      if (fail) for (const b of summary.chaos.bands) expect(text).toContain(b.label);
      expect(problems).toEqual([]);
      expect(outside).toEqual([]);
      await page.close();
    });
  }
});
