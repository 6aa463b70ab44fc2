/**
 * Where the SDK's enforcement calls create SecurityActions. One implementation now: HTTP to the
 * enforcer's local action API (single-machine mode). The Kubernetes one (a `SecurityAction`
 * custom resource in the target namespace, status watched) will implement the same interface.
 */
import { ErrorCodes } from '../../errors.js';
import { securityActionSchema } from '../../enforcement/security-action.js';
import type { SecurityAction, SecurityActionInput } from '../../enforcement/security-action.js';
import { apiError, codeForStatus, requestJson } from './http-json.js';

export interface EnforcementClient {
  /**
   * Creates the action; the same `metadata.name` again returns the stored action (the work is done
   * once). With `wait`, resolves once the action reached Succeeded or Failed.
   */
  create(action: SecurityActionInput, options: { wait: boolean }): Promise<SecurityAction>;
  /**
   * Sets labels on a pod (cluster mode only: a local container's labels cannot change after
   * start). Keys and values are checked by the caller. With `dryRun`, nothing is changed.
   */
  label?(
    target: { namespace: string; pod: string },
    labels: Record<string, string>,
    options: { dryRun: boolean },
  ): Promise<LabelOutcome>;
}

export interface LabelOutcome {
  /** The labelled pod's UID (the patch is pinned to it: a replaced pod is not touched). */
  uid: string;
  /** Keys whose value was set or changed (empty: the pod already had them all). */
  changed: string[];
  message: string;
}

export interface HttpEnforcementClientOptions {
  /** The action API's base URL, e.g. `http://127.0.0.1:8082`. */
  url: string;
  /** A bearer token with role `policy` scoped to the namespaces this client may act on. */
  token: string;
  /** Per request (default 300 s, the longest OpenWhisk action timeout: a wait may take that long). */
  timeoutMs?: number;
}

export class HttpEnforcementClient implements EnforcementClient {
  constructor(private readonly options: HttpEnforcementClientOptions) {}

  async create(action: SecurityActionInput, options: { wait: boolean }): Promise<SecurityAction> {
    const url = new URL('/v1/actions', this.options.url);
    if (options.wait) url.searchParams.set('wait', 'true');
    const response = await requestJson(url.href, {
      method: 'POST',
      token: this.options.token,
      body: action,
      timeoutMs: this.options.timeoutMs ?? 300_000,
    });
    const what = `SecurityAction ${action.metadata.name}`;
    if (response.status !== 200 && response.status !== 202) {
      const fallback =
        response.status === 400 || response.status === 409
          ? ErrorCodes.ACTION_INVALID
          : ErrorCodes.ENFORCEMENT_FAILED;
      throw apiError(codeForStatus(response.status, fallback), what, response);
    }
    const parsed = securityActionSchema.safeParse(response.body);
    if (!parsed.success)
      throw apiError(
        ErrorCodes.SERVER_UNREACHABLE,
        `${what}: the action API answered something else`,
        response,
      );
    return parsed.data;
  }
}
