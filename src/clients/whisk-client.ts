/**
 * The client of OpenWhisk's REST API (`/api/v1/namespaces/{ns}/…`), spoken by this project's
 * function runtime and by a real Apache OpenWhisk: entities for deploying policies, activations for
 * the audit trail, firing a trigger for the security-notices web action. Basic `uuid:key`
 * authentication; an error answer is an ApiError under a shared code (DEPLOY_REFUSED for a refused
 * entity). Node globals only: the web action's bundle includes it.
 *
 * `WhiskApi` is the part deploying needs, so a deployment also runs through the official `openwhisk`
 * npm client (tests).
 */
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { ApiError, basic, errorOf, HttpClient } from './http.js';
import type { HttpMethod, JsonResponse } from './http.js';
import type { JsonObject } from '../functions/sandbox/sandbox.js';

export type WhiskCollection = 'actions' | 'packages' | 'triggers' | 'rules';

export interface WhiskApi {
  /** The entity, or undefined when it does not exist. */
  get(collection: WhiskCollection, name: string): Promise<JsonObject | undefined>;
  /** Creates or replaces (`?overwrite=true`). */
  put(collection: WhiskCollection, name: string, body: JsonObject): Promise<JsonObject>;
  /** False when there was nothing to delete. */
  delete(collection: WhiskCollection, name: string): Promise<boolean>;
  list(collection: WhiskCollection): Promise<JsonObject[]>;
  setRuleStatus(name: string, status: 'active' | 'inactive'): Promise<void>;
}

export interface WhiskTarget {
  /** `https://openwhisk.example.com` or `http://127.0.0.1:3233`. */
  apihost: string;
  /** `uuid:key`. */
  auth: string;
  /** The namespace (`_` = the key's own). */
  namespace: string;
}

/** `uuid:key` as OpenWhisk issues it; checked before anything is sent. */
export function checkAuth(auth: string): void {
  const colon = auth.indexOf(':');
  if (colon < 1 || colon === auth.length - 1 || /\s/.test(auth))
    throw new ContainmentError(ErrorCodes.USAGE, 'the auth key must be "<uuid>:<key>"');
}

export function apiHostUrl(apihost: string): URL {
  // wsk accepts a bare host name and means https.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(apihost) ? apihost : `https://${apihost}`;
  if (!URL.canParse(withScheme))
    throw new ContainmentError(ErrorCodes.USAGE, `the API host "${apihost}" is not a URL`);
  const url = new URL(withScheme);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ContainmentError(ErrorCodes.USAGE, `the API host must be http(s), got ${url.protocol}`);
  return url;
}

function codeOf(status: number): ErrorCode {
  if (status === 401) return ErrorCodes.UNAUTHENTICATED;
  if (status === 403) return ErrorCodes.FORBIDDEN;
  if (status >= 500 || status === 429) return ErrorCodes.SERVER_UNREACHABLE;
  return ErrorCodes.DEPLOY_REFUSED;
}

/** `<what>: <OpenWhisk's error text>` under the shared code for its status. */
function fail(what: string, response: JsonResponse): ApiError {
  const { message } = errorOf(response);
  return new ApiError(
    response.status,
    codeOf(response.status),
    `${what}: ${message ?? `HTTP ${response.status}`}`,
  );
}

export class WhiskClient implements WhiskApi {
  private readonly http: HttpClient;

  constructor(target: WhiskTarget, timeoutMs = 60_000) {
    checkAuth(target.auth);
    const host = apiHostUrl(target.apihost);
    this.http = new HttpClient({
      base: `${host.origin}${host.pathname.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(target.namespace)}`,
      authorization: basic(target.auth),
      timeoutMs,
      textBodies: true,
    });
  }

  private send(method: HttpMethod, path: string, body?: unknown): Promise<JsonResponse> {
    return this.http.send(method, `/${path}`, body === undefined ? {} : { body });
  }

  private entityPath(collection: WhiskCollection, name: string): string {
    return `${collection}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  async get(collection: WhiskCollection, name: string): Promise<JsonObject | undefined> {
    const response = await this.send('GET', this.entityPath(collection, name));
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw fail(`GET ${collection}/${name}`, response);
    return response.body as JsonObject;
  }

  async put(collection: WhiskCollection, name: string, body: JsonObject): Promise<JsonObject> {
    const response = await this.send('PUT', `${this.entityPath(collection, name)}?overwrite=true`, body);
    if (response.status !== 200) throw fail(`PUT ${collection}/${name}`, response);
    return response.body as JsonObject;
  }

  async delete(collection: WhiskCollection, name: string): Promise<boolean> {
    const response = await this.send('DELETE', this.entityPath(collection, name));
    if (response.status === 404) return false;
    if (response.status !== 200) throw fail(`DELETE ${collection}/${name}`, response);
    return true;
  }

  async list(collection: WhiskCollection): Promise<JsonObject[]> {
    const out: JsonObject[] = [];
    // OpenWhisk pages at most 200 entities per call.
    for (let skip = 0; ; skip += 200) {
      const response = await this.send('GET', `${collection}?limit=200&skip=${skip}`);
      if (response.status !== 200) throw fail(`GET ${collection}`, response);
      const page = response.body as JsonObject[];
      out.push(...page);
      if (page.length < 200) return out;
    }
  }

  async setRuleStatus(name: string, status: 'active' | 'inactive'): Promise<void> {
    const response = await this.send('POST', this.entityPath('rules', name), { status });
    if (response.status !== 200) throw fail(`POST rules/${name}`, response);
  }

  /** A namespace setting of this project's runtime (e.g. `web-auth`); undefined when not set. */
  async getSetting(name: string): Promise<JsonObject | undefined> {
    const response = await this.send('GET', `settings/${encodeURIComponent(name)}`);
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw fail(`GET settings/${name}`, response);
    return response.body as JsonObject;
  }

  /** Sets a namespace setting of this project's runtime, or removes it (`undefined`). */
  async putSetting(name: string, value: JsonObject | undefined): Promise<void> {
    const path = `settings/${encodeURIComponent(name)}`;
    const response =
      value === undefined ? await this.send('DELETE', path) : await this.send('PUT', path, value);
    if (response.status !== 200) throw fail(`${value === undefined ? 'DELETE' : 'PUT'} ${path}`, response);
  }

  /** One activation record, unchecked (the caller parses what it needs). */
  async activation(id: string): Promise<unknown> {
    const response = await this.send('GET', `activations/${encodeURIComponent(id)}`);
    if (response.status !== 200) throw fail(`GET activations/${id}`, response);
    return response.body;
  }

  /** The newest activations with their logs and results (`?docs=true`), newest first. */
  async activations(limit: number): Promise<unknown[]> {
    const response = await this.send('GET', `activations?docs=true&limit=${limit}`);
    if (response.status !== 200) throw fail('GET activations', response);
    return response.body as unknown[];
  }

  /** Fires a trigger; its activation id, or undefined when no active rule took the event (204). */
  async fire(trigger: string, params: JsonObject): Promise<string | undefined> {
    const response = await this.send('POST', this.entityPath('triggers', trigger), params);
    if (response.status === 204) return undefined;
    if (response.status !== 202 && response.status !== 200) throw fail(`POST triggers/${trigger}`, response);
    return (response.body as { activationId?: string } | undefined)?.activationId;
  }
}
