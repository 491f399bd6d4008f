// OpenAPI 3.1 descriptions of the services (GET /openapi.json), generated from
// the zod schemas the routes validate with (zod-openapi renders them as JSON
// Schema 2020-12). Each service lists its routes as RouteDocs; this module adds
// what every route shares: the error body and its reason codes, the admin
// token, the answers any route may give (400, 413, 431).
import { z } from 'zod';
import {
  createDocument,
  type ZodOpenApiObject,
  type ZodOpenApiOperationObject,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One answer of a route besides the error answers. */
export interface OkDoc {
  status: number;
  description: string;
  /** The JSON body (default: a JSON object described in the docs). */
  schema?: z.ZodType;
  /** text/plain (e.g. /metrics, Alipay's `success`) instead of JSON. */
  text?: boolean;
}

/** One route of a service, as express serves it. */
export interface RouteDoc {
  method: Method;
  /** Express style: /v1/payments/:id. */
  path: string;
  /** operationId (also the chaos operation name where there is one). */
  id: string;
  summary: string;
  description?: string;
  tag: string;
  /** An admin route: loopback clients only unless --admin-remote, and the bearer token when one is set. */
  admin?: boolean;
  params?: z.ZodObject;
  query?: z.ZodObject;
  headers?: z.ZodObject;
  body?: z.ZodType;
  /** The body may be left out (an empty body is `{}`). */
  bodyOptional?: boolean;
  ok: OkDoc[];
  /** Error statuses this route answers besides the shared ones, with what they mean. */
  errors?: Record<number, string>;
}

export const fieldErrorSchema = z
  .object({
    field: z.string().meta({
      description:
        'The field: a body path (`card.number`, `skus.0.id`), a query or path parameter, a header (`Idempotency-Key`), or `(body)`, `(query)`, `(path)`, `(request)` for the whole of one',
    }),
    reason: z.string().meta({ description: 'Why it was refused, for a person' }),
  })
  .meta({ id: 'FieldError' });

/** The body of every refusal and failure: a machine-readable reason, always. */
export const errorSchema = z
  .looseObject({
    error: z.string().optional().meta({ description: 'The kind of refusal (often the reason)' }),
    reason: z.string().meta({
      description:
        "Machine-readable reason code: one of the service's codes (`info.x-reason-codes`); a decline carries the gateway's decline reason",
    }),
    message: z.string().optional().meta({ description: 'The same for a person' }),
    errors: z
      .array(fieldErrorSchema)
      .optional()
      .meta({ description: 'Each bad field, on every 400 and 431 (and on some 404s)' }),
  })
  .meta({
    id: 'Error',
    description:
      'Every 4xx and 5xx answer (but a chaos fault that breaks the connection or the body on purpose: reset, empty, hang, malformed)',
  });

/** Reason codes any service may answer with. */
export const COMMON_REASONS: Record<string, string> = {
  validation_failed: '400: a field is missing or wrong; `errors` names each one',
  invalid_json: '400: the body is not JSON',
  bad_request: '400: the request could not be read',
  body_too_large: '413: the body is larger than 256 kB',
  headers_too_large:
    "431: the request line and headers are larger than Node's limit (16 kB): a long path or query",
  no_such_route: '404: no route has this path',
  method_not_allowed:
    '405: the path is served with other methods (the `Allow` header lists them; `errors` names `(method)`)',
  admin_loopback_only: '403: admin routes answer loopback clients only (start with --admin-remote)',
  admin_token_required: '401: FLASHCROWD_ADMIN_TOKEN is set and the request has not got it',
  internal_error: '500: a bug; the service logs it',
};

/** Reason codes of the chaos engine's injected answers (the mocks). */
export const CHAOS_REASONS: Record<string, string> = {
  upstream_unavailable: 'an injected HTTP 5xx',
  injected_client_error: 'an injected HTTP 4xx',
  rate_limited: 'an injected 429, with Retry-After',
  capacity_exceeded: "503: the profile's capacity limit is full",
  invalid_profile: '400: a chaos profile or an x-fault-* header is not valid; `errors` names it',
  idempotency_key_reused: '422: the Idempotency-Key was used with another body',
  idempotency_key_in_use: '409: the first request with this Idempotency-Key is still running',
};

/** Express's /a/:id to OpenAPI's /a/{id}. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const errorAnswer = (description: string) => ({ description, content: json(errorSchema) });

function responses(r: RouteDoc): ZodOpenApiResponsesObject {
  const out: ZodOpenApiResponsesObject = {};
  for (const ok of r.ok)
    out[String(ok.status) as `${1 | 2 | 3 | 4 | 5}${string}`] = {
      description: ok.description,
      content: ok.text
        ? { 'text/plain': { schema: z.string() } }
        : json(ok.schema ?? z.looseObject({})),
    };
  const errors: Record<number, string> = {
    400: 'Bad input: `reason` validation_failed (or invalid_json), `errors` names each field',
    431: 'Request line or headers too large (`headers_too_large`, `errors` names `(request)`)',
    ...r.errors,
  };
  if (r.body) errors[413] = 'Body larger than 256 kB (`body_too_large`)';
  if (r.admin) {
    errors[401] =
      'The admin token is required (`admin_token_required`, with `WWW-Authenticate: Bearer`)';
    errors[403] = 'Admin routes answer loopback clients only (`admin_loopback_only`)';
  }
  for (const [status, description] of Object.entries(errors))
    out[status as `${1 | 2 | 3 | 4 | 5}${string}`] = errorAnswer(description);
  return out;
}

function operation(r: RouteDoc): ZodOpenApiOperationObject {
  const requestParams: ZodOpenApiOperationObject['requestParams'] = {};
  if (r.params) requestParams.path = r.params;
  if (r.query) requestParams.query = r.query;
  if (r.headers) requestParams.header = r.headers;
  return {
    operationId: r.id,
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    tags: [r.tag],
    ...(Object.keys(requestParams).length ? { requestParams } : {}),
    ...(r.body ? { requestBody: { required: !r.bodyOptional, content: json(r.body) } } : {}),
    ...(r.admin ? { security: [{ adminToken: [] }] } : {}),
    responses: responses(r),
  };
}

export interface ApiSpec {
  title: string;
  description: string;
  version: string;
  routes: RouteDoc[];
  /** The service's own reason codes, with what each means (the common ones are added). */
  reasons: Record<string, string>;
}

/** The OpenAPI 3.1 document of a service. */
export function openApiDocument(spec: ApiSpec): ReturnType<typeof createDocument> {
  const reasons = { ...COMMON_REASONS, ...spec.reasons };
  const paths: NonNullable<ZodOpenApiObject['paths']> = {};
  for (const r of spec.routes) {
    const p = openApiPath(r.path);
    paths[p] = { ...paths[p], [r.method]: operation(r) };
  }
  return createDocument(
    {
      openapi: '3.1.0',
      info: {
        title: spec.title,
        version: spec.version,
        description:
          `${spec.description}\n\nEvery refusal and failure answers a JSON \`Error\` body with a ` +
          'machine-readable `reason` (listed in `x-reason-codes`); a 400 names each bad field in `errors`.',
        license: { name: 'MIT', identifier: 'MIT' },
        'x-reason-codes': reasons,
      },
      paths,
      components: {
        securitySchemes: {
          adminToken: {
            type: 'http',
            scheme: 'bearer',
            description:
              'FLASHCROWD_ADMIN_TOKEN, when the service was started with it set; admin routes also answer loopback clients only unless started with --admin-remote',
          },
        },
      },
    },
    { reused: 'inline' },
  );
}

/** Shared routes of every service: health, metrics and this description. */
export function infraRoutes(tag: string, health: z.ZodType): RouteDoc[] {
  return [
    {
      method: 'get',
      path: '/healthz',
      id: 'healthz',
      summary: 'Is the service up (and, for the checkout, is Redis reachable)?',
      tag,
      ok: [{ status: 200, description: 'Up', schema: health }],
    },
    {
      method: 'get',
      path: '/metrics',
      id: 'metrics',
      summary: 'Prometheus metrics (text exposition format); docs/CHAOS.md#metrics',
      tag,
      ok: [{ status: 200, description: 'Prometheus text', text: true }],
    },
    {
      method: 'get',
      path: '/openapi.json',
      id: 'openapi',
      summary: 'This OpenAPI 3.1 description',
      tag,
      ok: [{ status: 200, description: 'The description', schema: z.looseObject({}) }],
    },
  ];
}

/** The optional Idempotency-Key header of a route that honours it. */
export const idempotencyHeader = z.object({
  'idempotency-key': z.string().min(1).max(255).optional().meta({
    description:
      'Stripe-style: the same key and body replay the first answer (`Idempotent-Replayed: true`); another body is 422 `idempotency_key_reused`; while the first request runs, 409 `idempotency_key_in_use`',
  }),
});
