/**
 * The `admission.k8s.io/v1` AdmissionReview wire format: what the API server sends a validating
 * webhook and what it expects back. Only the fields the gate reads are validated; the rest of the
 * request passes through untouched (a loose object), so newer API servers stay compatible.
 */
import { z } from 'zod';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

const groupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });

export const admissionReviewSchema = z.object({
  apiVersion: z.literal(ADMISSION_API_VERSION),
  kind: z.literal('AdmissionReview'),
  request: z
    .object({
      uid: z.string().min(1).max(256),
      kind: groupVersionKind,
      subResource: z.string().optional(),
      name: z.string().optional(),
      namespace: z.string().optional(),
      operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
      object: z.unknown().optional(),
      oldObject: z.unknown().optional(),
      dryRun: z.boolean().optional(),
    })
    .loose(),
});

export type AdmissionRequest = z.infer<typeof admissionReviewSchema>['request'];

export interface AdmissionDecision {
  allowed: boolean;
  /** Why it is denied, one line each (denied only). */
  reasons: string[];
  /** Shown by kubectl and client libraries as `Warning:` lines. */
  warnings: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; reason: 'Forbidden'; message: string };
    warnings?: string[];
  };
}

/** Kubernetes truncates longer warnings; keeping each short keeps them whole. */
const MAX_WARNING = 240;
const MAX_WARNINGS = 20;

function capWarnings(warnings: readonly string[]): string[] {
  const clipped = warnings.map((w) => (w.length > MAX_WARNING ? `${w.slice(0, MAX_WARNING - 1)}…` : w));
  if (clipped.length <= MAX_WARNINGS) return clipped;
  return [...clipped.slice(0, MAX_WARNINGS - 1), `… and ${clipped.length - MAX_WARNINGS + 1} more`];
}

export function admissionResponse(uid: string, decision: AdmissionDecision): AdmissionReviewResponse {
  const warnings = capWarnings(decision.warnings);
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: decision.allowed,
      ...(decision.allowed
        ? {}
        : { status: { code: 403, reason: 'Forbidden', message: decision.reasons.join('\n') } }),
      ...(warnings.length > 0 ? { warnings } : {}),
    },
  };
}
