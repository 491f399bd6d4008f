// schemathesis against every service of a running stack (`flashcrowd up`, the
// admin token set): every route described by its GET /openapi.json, good and
// bad payloads, the admin routes with the token and again without it. Checked
// (besides schemathesis's own conformance checks): no 5xx the chaos engine did
// not inject, a JSON error body naming the field on every 4xx, the admin
// routes refuse a caller without the token, no crash (every service's
// /healthz still answers after each run). A planted service shows each of
// flashcrowd's checks failing on the fault it is there for.
// Figures of a run: docs/API.md "Fuzzing".
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failedChecks, fuzz, schemathesisProblem, type FuzzRun } from './support/schemathesis.ts';
import { startUp, type UpStack } from './support/up.ts';

/** Fixed, so a run is reproducible: `schemathesis run ... --seed 14`. */
const SEED = 14;
const TOKEN = 'fuzz-admin-token';
const SERVICES = ['checkout', 'bank', 'wallet', 'coupon'] as const;

let up: UpStack;

beforeAll(async () => {
  const problem = schemathesisProblem();
  if (problem) throw new Error(problem);
  up = await startUp(
    // No load shedding and no timeout under a second: a fuzzer is not a flash
    // crowd, and a 503 `overloaded` on a busy machine is not a bug.
    ['--set', 'loadShedding=false', '--set', 'minTimeoutMs=1000'],
    { ...process.env, FLASHCROWD_ADMIN_TOKEN: TOKEN },
  );
}, 60_000);

afterAll(async () => {
  await up?.stop();
});

const urlOf = (s: (typeof SERVICES)[number]) => up.urls[s];

/** Every service answers /healthz, and the stack's process still runs. */
async function expectAllHealthy() {
  expect(up.alive(), up.log()).toBe(true);
  for (const s of SERVICES) {
    const r = await fetch(`${urlOf(s)}/healthz`);
    expect(r.status, `${s} /healthz`).toBe(200);
  }
}

/** Back to a clean stack between services: no chaos profile left by the fuzzer, fresh state. */
async function resetMocks() {
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (const s of ['bank', 'wallet', 'coupon'] as const) {
    expect((await fetch(`${urlOf(s)}/__chaos`, { method: 'DELETE', headers: auth })).status).toBe(
      200,
    );
    expect((await fetch(`${urlOf(s)}/__reset`, { method: 'POST', headers: auth })).status).toBe(
      200,
    );
  }
}

function expectClean(run: FuzzRun, what: string) {
  const { report, output } = run;
  expect(report.failures, `${what}:\n${output}`).toEqual([]);
  expect(report.errors, `${what}:\n${output}`).toEqual([]);
  expect(report.exit_code, `${what}:\n${output}`).toBe(0);
  expect(report.operations.tested, what).toBe(report.operations.selected);
  expect(report.test_cases.generated, what).toBeGreaterThan(0);
}

const figures: string[] = [];

describe('schemathesis against the running stack', () => {
  for (const s of SERVICES) {
    it(`${s}: every route, with the admin token, then the admin routes without it`, async () => {
      await resetMocks();
      const withToken = await fuzz(`${urlOf(s)}/openapi.json`, {
        seed: SEED,
        maxExamples: 20,
        token: TOKEN,
      });
      expectClean(withToken, `${s} with the token`);
      await expectAllHealthy();

      const without = await fuzz(`${urlOf(s)}/openapi.json`, {
        seed: SEED,
        maxExamples: 20,
        adminOnly: true,
        phases: ['fuzzing'],
      });
      expectClean(without, `${s} admin routes without the token`);
      expect(without.report.operations.selected, s).toBeGreaterThanOrEqual(5);
      await expectAllHealthy();
      figures.push(
        `${s}: ${withToken.report.operations.tested} operations, ${withToken.report.test_cases.generated} cases with the token ` +
          `(${withToken.report.running_time.toFixed(1)} s); ${without.report.operations.tested} admin operations, ` +
          `${without.report.test_cases.generated} cases without it`,
      );
    }, 60_000);
  }

  afterAll(() => {
    if (figures.length) console.log(`fuzz figures (seed ${SEED}):\n  ${figures.join('\n  ')}`);
  });
});

// ----------------------------------------------------------------- the checks can fail
// A service that breaks each rule once: schemathesis with the same hooks must
// report exactly flashcrowd's check for each.
const PLANTED_DOC = {
  openapi: '3.1.0',
  info: { title: 'planted', version: '1' },
  paths: {
    '/boom': {
      get: { responses: { '200': { description: 'ok' }, '500': { description: 'a bug' } } },
    },
    '/injected': {
      get: { responses: { '200': { description: 'ok' }, '503': { description: 'injected' } } },
    },
    '/thing': {
      post: {
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: { n: { type: 'integer' } },
                required: ['n'],
                additionalProperties: false,
              },
            },
          },
        },
        responses: { '200': { description: 'ok' }, '400': { description: 'bad' } },
      },
    },
    '/__chaos': {
      get: {
        security: [{ adminToken: [] }],
        responses: { '200': { description: 'ok' }, '401': { description: 'no token' } },
      },
    },
  },
  components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } } },
};

async function startPlanted(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/openapi.json') return json(200, PLANTED_DOC);
      if (path === '/boom') return json(500, { reason: 'internal_error' }); // no fault header
      if (path === '/injected')
        return json(503, { reason: 'upstream_unavailable' }, { 'x-flashcrowd-fault': 'http' });
      if (path === '/thing' && req.method === 'POST') {
        let n: unknown;
        try {
          n = (JSON.parse(body) as { n?: unknown }).n;
        } catch {
          /* below */
        }
        return Number.isInteger(n) ? json(200, { n }) : json(400, { reason: 'validation_failed' }); // no `errors`
      }
      if (path === '/__chaos') return json(200, { profile: {} }); // never asks for the token
      return json(404, { reason: 'no_such_route', errors: [{ field: '(path)', reason: 'none' }] });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe("flashcrowd's schemathesis checks", () => {
  it('catch an uninjected 5xx, a 400 naming no field and an admin route open without the token', async () => {
    const planted = await startPlanted();
    try {
      const run = await fuzz(`${planted.url}/openapi.json`, {
        seed: SEED,
        maxExamples: 10,
        phases: ['coverage', 'fuzzing'],
      });
      expect(run.report.exit_code, run.output).not.toBe(0);
      const failed = failedChecks(run.output);
      for (const c of [
        'no_uninjected_server_error',
        'error_body_names_the_field',
        'admin_token_enforced',
      ])
        expect(failed, run.output).toContain(c);
      // The injected 503 is no failure.
      expect(run.output).not.toMatch(/503 not injected/);
    } finally {
      await planted.close();
    }
  }, 60_000);
});
