/**
 * The client of the enforcer's action API (`POST /v1/actions`): what the policy SDK's enforcement
 * calls use. Error answers are ApiError under a shared code
 * (ACTION_INVALID for a refused action, ENFORCEMENT_FAILED otherwise, 401/403 as such).
 */
import { securityActionSchema } from '../enforcement/security-action.js';
import type { SecurityAction, SecurityActionInput } from '../enforcement/security-action.js';
import { ErrorCodes } from '../errors.js';
import { bearer, describedApiError, HttpClient, httpBase } from './http.js';

export interface ActionApiClientOptions {
  /** The action API's base URL, e.g. `http://127.0.0.1:8082`. */
  url: string;
  /** A bearer token: role `policy` scoped to the namespaces this client may act on, or admin. */
  token: string;
  /** Per request (default 300 s, the longest OpenWhisk action timeout: a wait may take that long). */
  timeoutMs?: number;
}

export class ActionApiClient {
  private readonly http: HttpClient;

  constructor(options: ActionApiClientOptions) {
    this.http = new HttpClient({
      base: httpBase(options.url, 'action API'),
      authorization: bearer(options.token),
      timeoutMs: options.timeoutMs ?? 300_000,
    });
  }

  /**
   * Creates the action; the same `metadata.name` again returns the stored action (the work is done
   * once). With `wait`, resolves once the action reached Succeeded or Failed.
   */
  async create(action: SecurityActionInput, options: { wait: boolean }): Promise<SecurityAction> {
    const response = await this.http.send('POST', `/v1/actions${options.wait ? '?wait=true' : ''}`, {
      body: action,
    });
    const what = `SecurityAction ${action.metadata.name}`;
    if (response.status !== 200 && response.status !== 202) {
      const fallback =
        response.status === 400 || response.status === 409
          ? ErrorCodes.ACTION_INVALID
          : ErrorCodes.ENFORCEMENT_FAILED;
      throw describedApiError(what, response, fallback);
    }
    const parsed = securityActionSchema.safeParse(response.body);
    if (!parsed.success)
      throw describedApiError(
        `${what}: the action API answered something else`,
        response,
        ErrorCodes.SERVER_UNREACHABLE,
      );
    return parsed.data;
  }

  /** A namespace's actions the token may see, newest first (`GET /v1/actions`). */
  async list(namespace: string, limit = 1000): Promise<SecurityAction[]> {
    const query = new URLSearchParams({ namespace, limit: String(limit) });
    const response = await this.http.send('GET', `/v1/actions?${query.toString()}`);
    if (response.status !== 200)
      throw describedApiError(`actions of ${namespace}`, response, ErrorCodes.SERVER_UNREACHABLE);
    const parsed = securityActionSchema.array().safeParse((response.body as { actions?: unknown }).actions);
    if (!parsed.success)
      throw describedApiError(
        `actions of ${namespace}: unexpected answer`,
        response,
        ErrorCodes.SERVER_UNREACHABLE,
      );
    return parsed.data;
  }

  /** One action, or undefined when the token may not see it or it does not exist. */
  async get(id: string): Promise<SecurityAction | undefined> {
    const response = await this.http.send('GET', `/v1/actions/${encodeURIComponent(id)}`);
    if (response.status === 404) return undefined;
    const parsed = response.status === 200 ? securityActionSchema.safeParse(response.body) : undefined;
    if (!parsed?.success) throw describedApiError(`action ${id}`, response, ErrorCodes.SERVER_UNREACHABLE);
    return parsed.data;
  }
}
