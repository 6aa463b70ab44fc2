/**
 * Workload names (namespace, pod, container) as they enter the system — the SecurityAction
 * contract, the action API, the scanner's queries and the policy SDK — checked by one rule.
 *
 * One rule for both modes, the union of what the platforms define: Kubernetes names are DNS-1123
 * labels (namespaces, ≤ 63) and subdomains (pods, ≤ 253: `[a-z0-9]`, `-`, `.`); in local mode the
 * pod and container are the engine's container name and the namespace a Podman pod name, whose
 * rule is `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. The union keeps the engine's characters (a container
 * named `web_1` or `api.v2` must stay actionable), and still refuses what could make a name a
 * path or a pattern: `/`, a leading or trailing separator (so `.` and `..`), `..` anywhere,
 * the empty name and more than 253 characters; each dot-separated segment starts and ends with a
 * letter or digit (`a_.b` is refused). Pure: no I/O (a core module).
 */
import { z } from 'zod';

export const MAX_WORKLOAD_NAME = 253;

/**
 * Dot-separated segments, each starting and ending with a letter or digit: so no `..`, no leading
 * or trailing separator. Written without look-arounds so that the CRD's OpenAPI schema can carry
 * the same pattern (the API server validates patterns with Go's RE2).
 */
export const WORKLOAD_NAME_PATTERN =
  /^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*$/;

export const WORKLOAD_NAME_RULE =
  'letters, digits, ".", "_" and "-" only, starting and ending with a letter or digit, no ".."';

/** A namespace, pod or container name (see the file comment). */
export const workloadNameSchema = z
  .string()
  .min(1)
  .max(MAX_WORKLOAD_NAME)
  .regex(WORKLOAD_NAME_PATTERN, WORKLOAD_NAME_RULE);

export function isWorkloadName(value: string): boolean {
  return workloadNameSchema.safeParse(value).success;
}
