/**
 * The security annotations an action may carry, checked when it is stored (400 CONFIG_INVALID), so a
 * misspelt value never leaves an action less protected than its author meant:
 * `containment.dev/enforcement-scope` (event | namespace), `containment.dev/auth` (jwt),
 * `containment.dev/required-roles` (a list of strings or a comma-separated string) and
 * `containment.dev/input-threats` (report | block).
 */
import { ENFORCEMENT_SCOPE_ANNOTATION, ENFORCEMENT_SCOPES } from './host/enforcement-scope.js';
import { INPUT_THREATS_ANNOTATION } from './input-threats.js';
import type { JsonValue } from './sandbox/sandbox.js';
import { REQUIRED_ROLES_ANNOTATION, WEB_AUTH_ANNOTATION } from './web-auth.js';

const CHOICES: Record<string, readonly string[]> = {
  [ENFORCEMENT_SCOPE_ANNOTATION]: ENFORCEMENT_SCOPES,
  [WEB_AUTH_ANNOTATION]: ['jwt'],
  [INPUT_THREATS_ANNOTATION]: ['report', 'block'],
};

/** The first problem with the annotations' security values, or undefined. */
export function securityAnnotationProblem(
  annotations: readonly { key: string; value: JsonValue }[],
): string | undefined {
  for (const { key, value } of annotations) {
    const choices = CHOICES[key];
    if (choices !== undefined && !(typeof value === 'string' && choices.includes(value)))
      return `${key} must be one of ${choices.join(', ')}; got ${JSON.stringify(value)}`;
    if (
      key === REQUIRED_ROLES_ANNOTATION &&
      typeof value !== 'string' &&
      !(Array.isArray(value) && value.every((r) => typeof r === 'string'))
    )
      return `${key} must be a list of strings or a comma-separated string`;
  }
  return undefined;
}
