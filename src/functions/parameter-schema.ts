/**
 * An action's declared parameter schema: the annotation `parameter-schema` holds a subset of JSON
 * Schema (draft 2020-12 keywords `type`, `properties`, `required`, `additionalProperties` (boolean),
 * `items`, `enum`, `const`, `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`, `minItems`,
 * `maxItems`). The runtime checks every invocation's parameters (defaults merged) against it before
 * the policy runs. Unknown keywords are refused when the action is created, so a schema never
 * silently checks less than its author thinks. Pure: no I/O.
 */
import { z } from 'zod';

export const PARAMETER_SCHEMA_ANNOTATION = 'parameter-schema';

const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type SchemaType = (typeof TYPES)[number];

export interface ParameterSchema {
  type?: SchemaType | SchemaType[];
  properties?: Record<string, ParameterSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: ParameterSchema;
  enum?: unknown[];
  const?: unknown;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  description?: string;
  title?: string;
}

const count = z.number().int().min(0);
const schemaSchema: z.ZodType<ParameterSchema> = z.lazy(() =>
  z.strictObject({
    type: z.union([z.enum(TYPES), z.array(z.enum(TYPES)).min(1)]).optional(),
    properties: z.record(z.string(), schemaSchema).optional(),
    required: z.array(z.string()).optional(),
    additionalProperties: z.boolean().optional(),
    items: schemaSchema.optional(),
    enum: z.array(z.json()).min(1).optional(),
    const: z.json().optional(),
    minLength: count.optional(),
    maxLength: count.optional(),
    pattern: z
      .string()
      .refine((p) => {
        try {
          new RegExp(p, 'u');
          return true;
        } catch {
          return false;
        }
      }, 'not a valid regular expression')
      .optional(),
    minimum: z.number().optional(),
    maximum: z.number().optional(),
    minItems: count.optional(),
    maxItems: count.optional(),
    description: z.string().optional(),
    title: z.string().optional(),
    $schema: z.string().optional(),
  }),
) as z.ZodType<ParameterSchema>;

/** Parses an annotation value; `{ error }` names the first bad keyword. */
export function parseParameterSchema(value: unknown): ParameterSchema | { error: string } {
  const result = schemaSchema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.map(String).join('.')}` : '';
  return { error: `invalid ${PARAMETER_SCHEMA_ANNOTATION}${where}: ${issue?.message ?? 'malformed'}` };
}

function typeOf(value: unknown): SchemaType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value as SchemaType;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The first violation as `path: why`, or undefined when `value` satisfies `schema`. */
export function checkParameters(
  schema: ParameterSchema,
  value: unknown,
  path = 'params',
): string | undefined {
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    const ok = allowed.includes(actual) || (actual === 'integer' && allowed.includes('number'));
    if (!ok) return `${path}: expected ${allowed.join(' or ')}, got ${actual}`;
  }
  if (schema.const !== undefined && !sameJson(schema.const, value))
    return `${path}: must be ${JSON.stringify(schema.const)}`;
  if (schema.enum !== undefined && !schema.enum.some((e) => sameJson(e, value)))
    return `${path}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`;
  if (typeof value === 'string') {
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength)
      return `${path}: shorter than ${schema.minLength} characters`;
    if (schema.maxLength !== undefined && length > schema.maxLength)
      return `${path}: longer than ${schema.maxLength} characters`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value))
      return `${path}: does not match ${schema.pattern}`;
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return `${path}: below ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `${path}: above ${schema.maximum}`;
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      return `${path}: fewer than ${schema.minItems} items`;
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      return `${path}: more than ${schema.maxItems} items`;
    if (schema.items !== undefined)
      for (let i = 0; i < value.length; i++) {
        const bad = checkParameters(schema.items, value[i], `${path}[${i}]`);
        if (bad !== undefined) return bad;
      }
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    for (const key of schema.required ?? [])
      if (!Object.hasOwn(record, key)) return `${path}.${key}: required`;
    for (const [key, child] of Object.entries(record)) {
      const sub =
        schema.properties !== undefined && Object.hasOwn(schema.properties, key)
          ? schema.properties[key]
          : undefined;
      if (sub !== undefined) {
        const bad = checkParameters(sub, child, `${path}.${key}`);
        if (bad !== undefined) return bad;
      } else if (schema.additionalProperties === false) return `${path}.${key}: not allowed`;
    }
  }
  return undefined;
}
