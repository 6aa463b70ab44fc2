/** What every route module of the OpenWhisk REST API shares: query parsing and the caller's namespace. */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { payloadSchema } from '../entities.js';
import { WhiskError, WhiskMessages } from '../runtime.js';
import type { FunctionRuntime } from '../runtime.js';
import type { JsonObject } from '../sandbox/sandbox.js';
import type { FunctionStore } from '../store.js';

/** What the route modules are registered with. */
export interface RouteContext {
  runtime: FunctionRuntime;
  store: FunctionStore;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The namespace the caller's key belongs to. */
    whiskNamespace?: string;
  }
}

export const flag = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true');

export function intParam(name: string, min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!/^-?\d+$/.test(v))
        ctx.addIssue({ code: 'custom', message: `The value '${v}' is not an integer for ${name}.` });
      else if (n < min || n > max)
        ctx.addIssue({
          code: 'custom',
          message: `The value '${v}' is not in the range of ${min} to ${max} for ${name}.`,
        });
      return n;
    });
}

export const listQuery = z.object({
  skip: intParam('skip', 0, Number.MAX_SAFE_INTEGER),
  limit: intParam('limit', 0, 200),
});
export const putQuery = z.object({ overwrite: flag });

export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new WhiskError(400, result.error.issues[0]?.message ?? 'invalid request');
}

export function payloadOf(body: unknown): JsonObject {
  const result = payloadSchema.safeParse(body);
  if (!result.success)
    throw new WhiskError(400, WhiskMessages.malformed('the payload must be a JSON object'));
  return (result.data ?? {}) as JsonObject;
}

/** `_` or the caller's own namespace; any other namespace is not the caller's to see. */
export function namespaceOf(request: FastifyRequest, ns = (request.params as { ns: string }).ns): string {
  const own = request.whiskNamespace;
  if (own === undefined) throw new WhiskError(401, WhiskMessages.unauthorized);
  if (ns === '_' || ns === own) return own;
  throw new WhiskError(403, WhiskMessages.forbidden);
}

export function pathOf(request: FastifyRequest): string {
  return (request.params as { '*': string })['*'];
}
