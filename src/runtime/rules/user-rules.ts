/**
 * Users' rules as data (YAML or JSON), validated with zod. A rule names an event type and a set
 * of conditions on fields; every condition must hold (`any:` groups hold when one member does).
 * Field names are Falco's (`proc.name`, `proc.cmdline`, `fd.name`, `fd.rport`, …) so a simple
 * Falco condition translates one clause at a time; Falco's condition language itself (macros,
 * lists, `or`/`not` expressions, its full field set) is not parsed.
 */
import yaml from 'js-yaml';
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { DetectionSeveritySchema, SENSOR_EVENT_KINDS } from '../contracts.js';
import type { RuleContext, RuntimeRule } from './rule.js';

/** Field → its value for one event, or undefined when the event has no such field. */
const FIELDS: Record<string, (ctx: RuleContext) => string | number | undefined> = {
  'evt.type': (c) => c.event.kind,
  'proc.name': (c) => c.process.name,
  'proc.exepath': (c) => c.process.exe,
  'proc.cmdline': (c) => c.process.argv.join(' '),
  'proc.args': (c) => c.process.argv.slice(1).join(' '),
  'proc.pname': (c) => c.process.parentName,
  'proc.pid': (c) => c.process.pid,
  'user.uid': (c) => c.process.uid,
  'fd.name': (c) => c.event.file,
  'fd.rip': (c) => (c.event.kind === 'connect' || c.event.kind === 'accept' ? c.event.address : undefined),
  'fd.rport': (c) => (c.event.kind === 'connect' || c.event.kind === 'accept' ? c.event.port : undefined),
  'fd.lip': (c) => (c.event.kind === 'listen' || c.event.kind === 'bind' ? c.event.address : undefined),
  'fd.lport': (c) => (c.event.kind === 'listen' || c.event.kind === 'bind' ? c.event.port : undefined),
  'container.id': (c) => c.container.containerId,
  'container.image': (c) => c.container.image,
};
export const USER_RULE_FIELDS = Object.keys(FIELDS);

const Scalar = z.union([z.string(), z.number()]);
const Operator = z
  .object({
    equals: Scalar.optional(),
    in: z.array(Scalar).min(1).optional(),
    startswith: z.string().optional(),
    endswith: z.string().optional(),
    contains: z.string().optional(),
    gt: z.number().optional(),
    lt: z.number().optional(),
  })
  .strict()
  .refine((o) => Object.keys(o).length === 1, { message: 'one operator per condition' });
type OperatorT = z.infer<typeof Operator>;

const FieldName = z.enum(USER_RULE_FIELDS as [string, ...string[]]);
const Conditions = z.partialRecord(FieldName, z.union([Operator, Scalar]));

const UserRuleSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9_]{1,63}$/, 'lower-case letters, digits and _'),
    title: z.string().min(1).max(200),
    severity: DetectionSeveritySchema,
    kind: z.enum(['process', 'socket', 'drift', 'file', 'privilege', 'kernel']).default('process'),
    event: z.union([z.enum(SENSOR_EVENT_KINDS), z.array(z.enum(SENSOR_EVENT_KINDS)).min(1)]),
    description: z.string().max(2000).optional(),
    condition: Conditions.optional(),
    any: z.array(Conditions).min(1).optional(),
  })
  .strict();

export const RuleFileSchema = z
  .object({
    /** Built-in (or earlier) rule ids to switch off. */
    disable: z.array(z.string()).default([]),
    rules: z.array(UserRuleSchema).default([]),
  })
  .strict();
export type RuleFile = z.infer<typeof RuleFileSchema>;

function test(op: OperatorT | string | number, value: string | number | undefined): boolean {
  if (value === undefined) return false;
  if (typeof op !== 'object') return String(value) === String(op);
  const s = String(value);
  if (op.equals !== undefined) return s === String(op.equals);
  if (op.in !== undefined) return op.in.some((v) => String(v) === s);
  if (op.startswith !== undefined) return s.startsWith(op.startswith);
  if (op.endswith !== undefined) return s.endsWith(op.endswith);
  if (op.contains !== undefined) return s.includes(op.contains);
  if (op.gt !== undefined) return typeof value === 'number' && value > op.gt;
  if (op.lt !== undefined) return typeof value === 'number' && value < op.lt;
  return false;
}

/** A condition set as (field getter, operator) pairs, made once per rule, not per event. */
type Compiled = [
  get: (ctx: RuleContext) => string | number | undefined,
  op: OperatorT | string | number | undefined,
][];

const NO_FIELD = (): undefined => undefined;

function compile(conditions: z.infer<typeof Conditions>): Compiled {
  return Object.entries(conditions).map(([field, op]) => [FIELDS[field] ?? NO_FIELD, op]);
}

function holds(conditions: Compiled, ctx: RuleContext): boolean {
  for (const [get, op] of conditions) if (op === undefined || !test(op, get(ctx))) return false;
  return true;
}

/** A rule file's text (YAML or JSON) to rules; one-line CONFIG_INVALID errors for bad input. */
export function parseRuleFile(text: string, origin: string): { disable: string[]; rules: RuntimeRule[] } {
  let raw: unknown;
  try {
    raw = yaml.load(text);
  } catch (e) {
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `${origin}: not YAML/JSON: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const parsed = RuleFileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ContainmentError(
      ErrorCodes.CONFIG_INVALID,
      `${origin}: ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? 'invalid rule file'}`,
    );
  }
  const rules = parsed.data.rules.map((r): RuntimeRule => {
    if (!r.condition && !r.any)
      throw new ContainmentError(
        ErrorCodes.CONFIG_INVALID,
        `${origin}: rule ${r.id} has neither condition nor any`,
      );
    const events = Array.isArray(r.event) ? r.event : [r.event];
    const condition = r.condition && compile(r.condition);
    const any = r.any?.map(compile);
    const fields = [
      ...new Set([...Object.keys(r.condition ?? {}), ...(r.any ?? []).flatMap((c) => Object.keys(c))]),
    ].flatMap((f) => {
      const get = FIELDS[f];
      return get ? [[f, get] as const] : [];
    });
    return {
      id: r.id,
      title: r.title,
      severity: r.severity,
      kind: r.kind,
      events,
      description: r.description ?? r.title,
      origin,
      match(ctx) {
        if (condition && !holds(condition, ctx)) return undefined;
        if (any && !any.some((c) => holds(c, ctx))) return undefined;
        const evidence: Record<string, string | number> = { name: ctx.process.name };
        for (const [f, get] of fields) {
          const v = get(ctx);
          if (v !== undefined) evidence[f] = v;
        }
        return { evidence };
      },
    };
  });
  return { disable: parsed.data.disable, rules };
}
