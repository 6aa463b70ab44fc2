/**
 * OpenWhisk's entities as this runtime stores and serves them (actions, packages, triggers, rules,
 * activations), the zod schemas of their PUT bodies, and the limit rules with OpenWhisk's wording
 * (core/entity/TimeLimit.scala, MemoryLimit.scala, LogLimit.scala). Pure: no I/O.
 */
import { z } from 'zod';
import { PAYLOAD_LIMIT_BYTES } from './sandbox/sandbox.js';
import type { ActivationStatus, JsonObject, JsonValue, SandboxLimits } from './sandbox/sandbox.js';

export type Collection = 'actions' | 'packages' | 'triggers' | 'rules';

export interface KeyValue {
  key: string;
  value: JsonValue;
}

export interface ActionLimits {
  /** ms */
  timeout: number;
  /** MB */
  memory: number;
  /** MB of logs kept */
  logs: number;
  concurrency: number;
}

interface EntityBase {
  /** `ns`, or `ns/pkg` for an action in a package (as OpenWhisk reports it). */
  namespace: string;
  name: string;
  version: string;
  publish: boolean;
  annotations: KeyValue[];
  updated: number;
}

export interface ActionDoc extends EntityBase {
  exec: { kind: string; code: string; binary: false; main?: string };
  parameters: KeyValue[];
  limits: ActionLimits;
}

/** What the store keeps for an action: the document plus the script `compilePolicy` produced. */
export interface StoredAction {
  doc: ActionDoc;
  compiled: string;
}

export interface PackageDoc extends EntityBase {
  parameters: KeyValue[];
  binding: Record<string, never>;
}

export interface TriggerDoc extends EntityBase {
  parameters: KeyValue[];
  limits: Record<string, never>;
}

export type RuleStatus = 'active' | 'inactive';

export interface RuleDoc extends EntityBase {
  status: RuleStatus;
  trigger: { name: string; path: string };
  action: { name: string; path: string };
}

export interface ActivationResponse {
  status: ActivationStatus;
  statusCode: 0 | 1 | 2 | 3;
  success: boolean;
  result: JsonValue;
}

export interface Activation {
  namespace: string;
  name: string;
  subject: string;
  activationId: string;
  start: number;
  end: number;
  duration: number;
  response: ActivationResponse;
  logs: string[];
  annotations: KeyValue[];
  version: string;
  publish: false;
  /** The trigger activation that caused this one. */
  cause?: string;
}

export const STATUS_CODES: Record<ActivationStatus, 0 | 1 | 2 | 3> = {
  success: 0,
  'application error': 1,
  'action developer error': 2,
  'whisk internal error': 3,
};

/** OpenWhisk's entity name rule (EntityName.scala): word characters, then also `@ . -` and spaces. */
const NAME = /^(?:\w|\w[\w@ .-]*[\w@.-])$/;
export const MAX_NAME_LENGTH = 256;

export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

const keyValues = z.array(z.object({ key: z.string().min(1), value: z.json() }));
const jsonObject = z.record(z.string(), z.json());

export const actionPutSchema = z.object({
  exec: z
    .object({
      kind: z.string(),
      code: z.string().optional(),
      main: z.string().optional(),
      binary: z.boolean().optional(),
      components: z.array(z.string()).optional(),
    })
    .optional(),
  parameters: keyValues.optional(),
  annotations: keyValues.optional(),
  limits: z
    .object({
      timeout: z.number().optional(),
      memory: z.number().optional(),
      logs: z.number().optional(),
      concurrency: z.number().optional(),
    })
    .optional(),
  version: z.string().optional(),
  publish: z.boolean().optional(),
});
export type ActionPut = z.infer<typeof actionPutSchema>;

export const packagePutSchema = z.object({
  parameters: keyValues.optional(),
  annotations: keyValues.optional(),
  version: z.string().optional(),
  publish: z.boolean().optional(),
  binding: z.object({ namespace: z.string().optional(), name: z.string().optional() }).optional(),
});

export const triggerPutSchema = z.object({
  parameters: keyValues.optional(),
  annotations: keyValues.optional(),
  version: z.string().optional(),
  publish: z.boolean().optional(),
});

export const rulePutSchema = z.object({
  trigger: z.string().min(1).optional(),
  action: z.string().min(1).optional(),
  status: z.enum(['active', 'inactive']).optional(),
  annotations: keyValues.optional(),
  version: z.string().optional(),
  publish: z.boolean().optional(),
});

export const ruleStatusSchema = z.object({ status: z.enum(['active', 'inactive']) });

/** An invocation or fire payload: a JSON object, or nothing. */
export const payloadSchema = z.union([jsonObject, z.undefined(), z.null()]);

export const DEFAULT_ACTION_LIMITS: Readonly<ActionLimits> = Object.freeze({
  timeout: 60_000,
  memory: 256,
  logs: 10,
  concurrency: 1,
});

const LIMIT_RULES = {
  timeout: { min: 100, max: 300_000, field: 'duration', unit: 'milliseconds' },
  memory: { min: 128, max: 512, field: 'memory', unit: 'MB' },
  logs: { min: 0, max: 10, field: 'logs', unit: 'MB' },
  concurrency: { min: 1, max: 1, field: 'concurrency', unit: '' },
} as const;

/**
 * Merges `given` over `base` and checks each value, or returns OpenWhisk's message for the first
 * that is out of range ("duration 50 milliseconds below allowed threshold of 100 milliseconds").
 */
export function resolveLimits(
  given: ActionPut['limits'],
  base: ActionLimits = DEFAULT_ACTION_LIMITS,
): ActionLimits | { error: string } {
  const out = { ...base, ...definedOnly(given ?? {}) };
  for (const key of Object.keys(LIMIT_RULES) as (keyof ActionLimits)[]) {
    const { min, max, field, unit } = LIMIT_RULES[key];
    const value = out[key];
    const show = (n: number): string => (unit ? `${n} ${unit}` : String(n));
    if (!Number.isInteger(value)) return { error: `${field} limit must be whole number` };
    if (value < min) return { error: `${field} ${show(value)} below allowed threshold of ${show(min)}` };
    if (value > max) return { error: `${field} ${show(value)} exceeds allowed threshold of ${show(max)}` };
  }
  return out;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function sandboxLimits(limits: ActionLimits): SandboxLimits {
  return {
    timeoutMs: limits.timeout,
    memoryMb: limits.memory,
    logLimitBytes: limits.logs * 1024 * 1024,
    resultLimitBytes: PAYLOAD_LIMIT_BYTES,
  };
}

export function toObject(pairs: readonly KeyValue[]): JsonObject {
  const out: JsonObject = {};
  for (const { key, value } of pairs) out[key] = value;
  return out;
}

export function annotationsOf(...lists: (readonly KeyValue[])[]): JsonObject {
  return Object.assign({}, ...lists.map(toObject)) as JsonObject;
}

/** `pkg/action` → `{ pkg, name }`; a plain name has no package. */
export function splitPath(path: string): { pkg?: string; name: string } {
  const slash = path.indexOf('/');
  return slash < 0 ? { name: path } : { pkg: path.slice(0, slash), name: path.slice(slash + 1) };
}

/** The activation summary OpenWhisk lists without `docs=true`. */
export function activationSummary(a: Activation): Record<string, JsonValue> {
  return {
    namespace: a.namespace,
    name: a.name,
    version: a.version,
    publish: a.publish,
    annotations: a.annotations as unknown as JsonValue,
    activationId: a.activationId,
    start: a.start,
    end: a.end,
    duration: a.duration,
    statusCode: a.response.statusCode,
    ...(a.cause === undefined ? {} : { cause: a.cause }),
  };
}
