/**
 * The arguments of each SDK method, checked wherever the SDK is implemented: the runtime's
 * PolicySdkHost, and the bundled SDK of a policy deployed to OpenWhisk or Knative. Pure (zod only).
 */
import { z } from 'zod';
import type { ActionKind } from '../../enforcement/security-action.js';
import { podRefSchema } from './pod-ref.js';

const text = (max: number) => z.string().min(1).max(max);
export const enforcementOptions = z.strictObject({
  /** Resolve only once the action reached Succeeded or Failed. */
  wait: z.boolean().optional(),
  reason: z.string().max(4096).optional(),
  findingsRef: z.string().max(1024).optional(),
});
export const gracefulOptions = enforcementOptions.extend({
  gracePeriodSeconds: z.number().int().min(0).max(3600).optional(),
});
export const enforcementArgs = z.tuple([podRefSchema, enforcementOptions.optional()]);
export const gracefulArgs = z.tuple([podRefSchema, gracefulOptions.optional()]);
export const findingsArgs = z.tuple([podRefSchema, z.iso.datetime({ offset: true }).nullable().optional()]);
// Kubernetes label syntax: optional DNS prefix, name of at most 63; values at most 63.
const labelKey = z
  .string()
  .regex(/^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
const labelValue = z.string().regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/);
export const labelArgs = z.tuple([podRefSchema, z.record(labelKey, labelValue)]);
export const notifyArgs = z.tuple([
  text(128).regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'letters, digits and ._:/- only'),
  z.union([text(65_536), z.record(z.string(), z.json())]),
]);

export const ENFORCEMENT_KINDS: Readonly<Record<string, ActionKind>> = {
  'kubernetes.snapshot': 'Snapshot',
  'kubernetes.terminate': 'Terminate',
  'kubernetes.terminateGraceful': 'TerminateGraceful',
  'kubernetes.quarantine': 'Quarantine',
  'kubernetes.release': 'Release',
};

/**
 * What a SecurityAction's name is hashed from: the same activation asking the same thing of the same
 * target gets the same name, so a retry is recognised (`<kind>-<first 24 hex of its SHA-256>`).
 */
export function actionNameKey(
  call: { namespace: string; action: string; context: { activationId: string } },
  kind: ActionKind,
  target: { namespace: string; pod: string; container?: string },
): string {
  return [
    call.namespace,
    call.action,
    call.context.activationId,
    kind,
    target.namespace,
    target.pod,
    target.container ?? '',
  ].join('\0');
}
