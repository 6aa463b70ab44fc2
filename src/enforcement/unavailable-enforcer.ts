/**
 * The enforcer of a node without a reachable container engine (`containment up` with none): the
 * action API still answers, so a policy's enforcement call ends at once in a clear
 * ENGINE_UNAVAILABLE (HTTP 503) instead of a refused connection or a hang. Nothing is stored:
 * an action that cannot even start is refused, not accepted and then dropped.
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ActionPreview, Enforcer } from './local-enforcer.js';
import type { SecurityAction } from './security-action.js';
import { parseSecurityAction } from './security-action.js';

export class UnavailableEnforcer implements Enforcer {
  /** `why`: what the engine lookup said, e.g. "the container engine at … does not answer". */
  constructor(private readonly why: string) {}

  submit(input: unknown): Promise<SecurityAction> {
    try {
      // Bad input is still told apart from the missing engine.
      const action = parseSecurityAction(input);
      return Promise.reject(
        new ContainmentError(
          ErrorCodes.ENGINE_UNAVAILABLE,
          `cannot ${action.spec.action} ${action.spec.target.namespace}/${action.spec.target.pod}: enforcement is off (${this.why})`,
        ),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async preview(input: unknown): Promise<ActionPreview> {
    await this.submit(input);
    throw new Error('unreachable: submit always refuses');
  }

  get(): SecurityAction | undefined {
    return undefined;
  }

  list(): SecurityAction[] {
    return [];
  }

  close(): void {}
}
