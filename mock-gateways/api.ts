// The routes every mock shares (health, metrics, this description, the chaos
// admin routes), described for the OpenAPI document, and the document of a mock.
import { z } from 'zod';
import { makeProfileSchema } from './chaos/profile.ts';
import { CHAOS_REASONS, infraRoutes, openApiDocument, type RouteDoc } from './openapi.ts';
import type { AnyServiceDefinition } from './service.ts';
import { flashcrowdVersionOf } from './version.ts';

const seedQuery = z.object({
  seed: z
    .string()
    .regex(/^-?\d+$/)
    .optional()
    .meta({ description: 'Reseed every random draw of the chaos engine (an integer)' }),
});

const chaosState = z.looseObject({
  service: z.string(),
  seed: z.number(),
  timeScale: z.number(),
  elapsedMs: z.number(),
  profile: z.looseObject({}),
  effective: z.looseObject({}),
});

/** The chaos admin routes and the shared ones, for a service with this profile schema. */
function mockRoutes(def: AnyServiceDefinition): RouteDoc[] {
  const tag = 'admin';
  const profile = makeProfileSchema({
    operations: def.operations,
    declineReasons: def.declineReasons,
    extraSchema: def.extraSchema,
  }).meta({ description: 'A chaos profile (docs/CHAOS.md)' });
  const chaos = { status: 200, description: 'The profile in force', schema: chaosState };
  const invalid = {
    400: 'The profile is not valid (`invalid_profile`; `errors` names each field)',
  };
  return [
    ...infraRoutes(
      'service',
      z.looseObject({ status: z.literal('ok'), service: z.string(), seed: z.number() }),
    ),
    {
      method: 'get',
      path: '/__chaos',
      id: 'chaos.get',
      summary: 'The chaos profile in force and the effective faults per operation',
      tag,
      admin: true,
      ok: [chaos],
    },
    {
      method: 'put',
      path: '/__chaos',
      id: 'chaos.put',
      summary:
        'Replace the chaos profile (its clock restarts); `?seed=N` reseeds; `?elapsedMs=N` sets the clock to N ms (negative: it starts in -N ms)',
      tag,
      admin: true,
      query: seedQuery.extend({
        elapsedMs: z
          .string()
          .regex(/^-?\d{1,8}$/)
          .optional()
          .meta({
            description:
              "What the profile's clock reads now, in ms (default 0): outage and timeline offsets count from N ms ago; negative, from -N ms ahead (a load generator's start instant). At most 8 digits either way",
          }),
      }),
      body: profile,
      bodyOptional: true,
      ok: [chaos],
      errors: invalid,
    },
    {
      method: 'patch',
      path: '/__chaos',
      id: 'chaos.patch',
      summary: 'Merge-patch the chaos profile (RFC 7396); its clock keeps running',
      tag,
      admin: true,
      body: z.looseObject({}).meta({ description: 'A JSON merge patch of the profile' }),
      bodyOptional: true,
      ok: [chaos],
      errors: invalid,
    },
    {
      method: 'delete',
      path: '/__chaos',
      id: 'chaos.delete',
      summary: 'Clear the chaos profile: no faults',
      tag,
      admin: true,
      ok: [chaos],
    },
    {
      method: 'post',
      path: '/__reset',
      id: 'reset',
      summary:
        'Forget every state, ledger and metric; `?seed=N` reseeds, `?timeScale=X` sets the time-scale',
      tag,
      admin: true,
      query: seedQuery.extend({
        timeScale: z
          .string()
          .optional()
          .meta({ description: 'The run’s time-scale: a number above 0 and at most 1' }),
      }),
      ok: [
        {
          status: 200,
          description: 'Reset',
          schema: z.looseObject({ status: z.literal('reset'), service: z.string() }),
        },
      ],
    },
  ];
}

/** What a mock's OpenAPI document says about the service, besides its routes. */
export interface MockApi {
  title: string;
  description: string;
  routes: RouteDoc[];
  reasons: Record<string, string>;
}

/** The OpenAPI 3.1 document of a mock: its own routes, the shared ones, every reason code. */
export function mockOpenApi(def: AnyServiceDefinition, api: MockApi) {
  const declines = Object.fromEntries(
    def.declineReasons.map((r) => [
      r,
      '402: declined (a domain decline, or one the chaos engine injected)',
    ]),
  );
  return openApiDocument({
    title: api.title,
    version: flashcrowdVersionOf(),
    description:
      `${api.description}\n\nEvery operation runs through the chaos engine: per-request faults from ` +
      '`x-fault-*` headers and the profile set with `PUT /__chaos` (docs/CHAOS.md). Injected answers carry ' +
      '`X-Flashcrowd-Fault: <kind>`.',
    routes: [...api.routes, ...mockRoutes(def)],
    reasons: { ...declines, ...CHAOS_REASONS, ...api.reasons },
  });
}
