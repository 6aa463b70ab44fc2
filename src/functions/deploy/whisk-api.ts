/**
 * The few calls of OpenWhisk's REST API that deploying a policy needs, behind a small interface so the
 * same deployment runs against this project's runtime or a real Apache OpenWhisk (and, in tests,
 * through the official `openwhisk` client). `HttpWhiskApi` is the one the CLI uses: fetch with
 * OpenWhisk's Basic `uuid:key` authentication.
 */
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { JsonObject } from '../sandbox/sandbox.js';

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

export class HttpWhiskApi implements WhiskApi {
  private readonly base: string;
  private readonly authorization: string;

  constructor(
    private readonly target: WhiskTarget,
    private readonly timeoutMs = 60_000,
  ) {
    checkAuth(target.auth);
    const host = apiHostUrl(target.apihost);
    this.base = `${host.origin}${host.pathname.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(target.namespace)}`;
    this.authorization = `Basic ${Buffer.from(target.auth).toString('base64')}`;
  }

  private async request(
    method: 'GET' | 'PUT' | 'DELETE' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/${path}`, {
        method,
        headers: {
          authorization: this.authorization,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new ContainmentError(
        ErrorCodes.SERVER_UNREACHABLE,
        `${method} ${new URL(this.base).origin}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json };
  }

  private fail(what: string, status: number, json: unknown): ContainmentError {
    const message =
      typeof (json as { error?: unknown } | undefined)?.error === 'string'
        ? (json as { error: string }).error.split('\n').join(' ')
        : `HTTP ${status}`;
    const code =
      status === 401
        ? ErrorCodes.UNAUTHENTICATED
        : status === 403
          ? ErrorCodes.FORBIDDEN
          : status === 400
            ? ErrorCodes.DEPLOY_REFUSED
            : status >= 500 || status === 429
              ? ErrorCodes.SERVER_UNREACHABLE
              : ErrorCodes.DEPLOY_REFUSED;
    return new ContainmentError(code, `${what}: ${message}`);
  }

  private entityPath(collection: WhiskCollection, name: string): string {
    return `${collection}/${name.split('/').map(encodeURIComponent).join('/')}`;
  }

  async get(collection: WhiskCollection, name: string): Promise<JsonObject | undefined> {
    const { status, json } = await this.request('GET', this.entityPath(collection, name));
    if (status === 404) return undefined;
    if (status !== 200) throw this.fail(`GET ${collection}/${name}`, status, json);
    return json as JsonObject;
  }

  async put(collection: WhiskCollection, name: string, body: JsonObject): Promise<JsonObject> {
    const { status, json } = await this.request(
      'PUT',
      `${this.entityPath(collection, name)}?overwrite=true`,
      body,
    );
    if (status !== 200) throw this.fail(`PUT ${collection}/${name}`, status, json);
    return json as JsonObject;
  }

  async delete(collection: WhiskCollection, name: string): Promise<boolean> {
    const { status, json } = await this.request('DELETE', this.entityPath(collection, name));
    if (status === 404) return false;
    if (status !== 200) throw this.fail(`DELETE ${collection}/${name}`, status, json);
    return true;
  }

  async list(collection: WhiskCollection): Promise<JsonObject[]> {
    const out: JsonObject[] = [];
    // OpenWhisk pages at most 200 entities per call.
    for (let skip = 0; ; skip += 200) {
      const { status, json } = await this.request('GET', `${collection}?limit=200&skip=${skip}`);
      if (status !== 200) throw this.fail(`GET ${collection}`, status, json);
      const page = json as JsonObject[];
      out.push(...page);
      if (page.length < 200) return out;
    }
  }

  async setRuleStatus(name: string, status: 'active' | 'inactive'): Promise<void> {
    const res = await this.request('POST', this.entityPath('rules', name), { status });
    if (res.status !== 200) throw this.fail(`POST rules/${name}`, res.status, res.json);
  }
}
