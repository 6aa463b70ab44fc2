/**
 * The SecurityAction contract of the design brief (CRD `securityactions.containment.dev/v1alpha1`,
 * the same JSON in local mode). The action id is `metadata.name`; it names the evidence
 * directory, so its charset is strict.
 */
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { workloadNameSchema } from '../workload-names.js';

export const ACTION_KINDS = ['Quarantine', 'Release', 'Snapshot', 'TerminateGraceful', 'Terminate'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export const ACTION_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed'] as const;
export type ActionPhase = (typeof ACTION_PHASES)[number];

/**
 * Letters, digits, `_`, `.`, `-`; starts with a letter or digit (so never `.` or `..`), at most
 * 128 characters: a Kubernetes object name or a UUID fits, a path separator never does.
 */
export const ACTION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Kubernetes' own default for pod termination. */
export const DEFAULT_GRACE_PERIOD_SECONDS = 30;
const MAX_GRACE_PERIOD_SECONDS = 3600;

export const actionIdSchema = z
  .string()
  .regex(ACTION_ID_PATTERN, 'must be 1-128 of [A-Za-z0-9_.-], starting with a letter or digit');

// A container id (hex) or a pod UID (UUID): looked up, so never anything else.
const uidSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9-]+$/, 'letters, digits and "-" only');

/** Names as the platforms define them (`workload-names.ts`): never a path, so never a lookup. */
export const actionTargetSchema = z.strictObject({
  namespace: workloadNameSchema,
  pod: workloadNameSchema,
  container: workloadNameSchema.optional(),
  /** Pod UID in Kubernetes; in local mode the container id (or a prefix of it). */
  uid: uidSchema.optional(),
});

// Strict: a misspelt field (`gracePeriod`) must not silently fall back to a default.
export const actionSpecSchema = z.strictObject({
  target: actionTargetSchema,
  action: z.enum(ACTION_KINDS),
  gracePeriodSeconds: z
    .number()
    .int()
    .min(0)
    .max(MAX_GRACE_PERIOD_SECONDS)
    .default(DEFAULT_GRACE_PERIOD_SECONDS),
  reason: z.string().max(4096).default(''),
  findingsRef: z.string().max(1024).optional(),
  requestedBy: z.string().max(1024).optional(),
  dryRun: z.boolean().default(false),
});

export const evidenceItemSchema = z.object({
  kind: z.string(),
  uri: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().min(0),
});

export const conditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: z.string(),
});

export const actionStatusSchema = z.object({
  phase: z.enum(ACTION_PHASES),
  node: z.string().optional(),
  startedAt: z.string().optional(),
  completedAt: z.string().optional(),
  message: z.string().optional(),
  evidence: z.array(evidenceItemSchema).default([]),
  conditions: z.array(conditionSchema).default([]),
});

export const securityActionSchema = z.object({
  apiVersion: z.literal('containment.dev/v1alpha1').default('containment.dev/v1alpha1'),
  kind: z.literal('SecurityAction').default('SecurityAction'),
  // Loose: a Kubernetes object carries labels, resourceVersion, … that we keep but do not use.
  metadata: z.looseObject({ name: actionIdSchema, namespace: z.string().optional() }),
  spec: actionSpecSchema,
  status: actionStatusSchema.optional(),
});

export type ActionTarget = z.infer<typeof actionTargetSchema>;
export type ActionSpec = z.infer<typeof actionSpecSchema>;
export type EvidenceItem = z.infer<typeof evidenceItemSchema>;
export type ActionCondition = z.infer<typeof conditionSchema>;
export type ActionStatus = z.infer<typeof actionStatusSchema>;
export type SecurityAction = z.infer<typeof securityActionSchema>;
/** What a caller sends: defaults may be left out. */
export type SecurityActionInput = z.input<typeof securityActionSchema>;

/** Validates a SecurityAction; ACTION_INVALID names the first offending field in one line. */
export function parseSecurityAction(input: unknown): SecurityAction {
  const result = securityActionSchema.safeParse(input);
  if (result.success) return result.data;
  throw new ContainmentError(
    ErrorCodes.ACTION_INVALID,
    `invalid SecurityAction: ${firstIssue(result.error)}`,
  );
}

/** Returns the id when it is safe to use as a directory name; ACTION_INVALID otherwise. */
export function validateActionId(id: string): string {
  const result = actionIdSchema.safeParse(id);
  if (result.success) return result.data;
  throw new ContainmentError(
    ErrorCodes.ACTION_INVALID,
    `invalid action id ${JSON.stringify(id.slice(0, 140))}: ${firstIssue(result.error)}`,
  );
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'malformed';
  const path = issue.path.join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}
