/**
 * The seam between the function runtime and the real policy SDK bindings (`src/functions/host/`): every
 * SDK call a policy makes in the sandbox arrives here as JSON, tagged with who made it. The runtime
 * supplies the namespace and action from the activation, never from the policy, so a host can scope
 * the call to that namespace's credentials.
 */
import type { JsonValue } from '../sandbox/sandbox.js';
import type { EnforcementScope } from './enforcement-scope.js';

export interface PolicyCallContext {
  /** The activation making the call (for `requestedBy: "policy/<name>@<activationId>"`). */
  activationId: string;
  /** The action's annotations merged with its package's (e.g. a `dry-run` annotation). */
  annotations: Record<string, JsonValue>;
  /** The workloads enforcement calls may name: the triggering event's, or the namespace scope. */
  scope: EnforcementScope;
}

export interface PolicyHost {
  /**
   * Runs one SDK call (`method` is one of SDK_METHODS, e.g. `kubernetes.quarantine`) for the action
   * `action` (`[package/]name`) in `namespace`. Rejections reach the policy as a thrown Error with the
   * rejection's message.
   */
  invokeSdk(
    namespace: string,
    action: string,
    method: string,
    args: JsonValue[],
    context: PolicyCallContext,
  ): Promise<JsonValue>;
}

/** The default until a host is configured: every call fails with a clear message. */
export const noPolicyHost: PolicyHost = {
  invokeSdk(_namespace, _action, method) {
    return Promise.reject(new Error(`no policy SDK host configured: ${method} is unavailable`));
  },
};
