/**
 * The `pod` argument of every SDK call: `{ namespace, name, container? }` or the string
 * `"namespace/name"`. In local mode the namespace is `local` and the name is the container's.
 */
import { z } from 'zod';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { workloadNameSchema } from '../../workload-names.js';

// The one workload-name rule: a `../../x` pod is refused here, before any request leaves.
const name = workloadNameSchema;

export const podObjectSchema = z.strictObject({ namespace: name, name, container: name.optional() });

export const podRefSchema = z.union([
  podObjectSchema,
  z
    .string()
    .regex(/^[^/]+\/[^/]+$/, 'a pod string must be "namespace/name"')
    .transform((s, ctx) => {
      const [namespace, pod] = s.split('/') as [string, string];
      const parsed = podObjectSchema.safeParse({ namespace, name: pod });
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, code: 'custom' });
        return z.NEVER;
      }
      return parsed.data;
    }),
]);

export type PodRef = z.output<typeof podObjectSchema>;

/** `namespace/name[/container]`, for messages. */
export function podLabel(pod: PodRef): string {
  return `${pod.namespace}/${pod.name}${pod.container === undefined ? '' : `/${pod.container}`}`;
}

/** Validates a value of an SDK call against `schema`; SDK_CALL_INVALID names the first bad field. */
export function parseSdkArgs<S extends z.ZodType>(method: string, schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  // Arguments are numbered from 1 for the policy author; then the field inside it, if any.
  const [index, ...field] = issue?.path ?? [];
  const where =
    typeof index === 'number'
      ? ` (argument ${index + 1}${field.length > 0 ? ` ${field.join('.')}` : ''})`
      : '';
  throw new ContainmentError(
    ErrorCodes.SDK_CALL_INVALID,
    `${method}: invalid arguments${where}: ${issue?.message ?? 'malformed'}`,
  );
}
