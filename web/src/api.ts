/**
 * The dashboard's only way to the server: same-origin fetches authenticated by the HttpOnly
 * session cookie (the script never holds a token). State-changing calls carry the CSRF header the
 * server requires. Every failure becomes an ApiError with the server's stable code.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where the sign-in page sends the user back to: the page they were on. */
export function signInUrl(next: string = location.pathname + location.search): string {
  return `/ui/signin?next=${encodeURIComponent(next)}`;
}

export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const { json, ...rest } = init;
  const method = rest.method ?? 'GET';
  const headers = new Headers(rest.headers);
  if (method !== 'GET' && method !== 'HEAD') headers.set('x-containment-csrf', '1');
  if (json !== undefined) headers.set('content-type', 'application/json');
  let response: Response;
  try {
    response = await fetch(path, {
      ...rest,
      method,
      headers,
      credentials: 'same-origin',
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
  } catch (e) {
    throw new ApiError(0, 'NETWORK', e instanceof Error ? e.message : 'network error');
  }
  if (response.status === 204) return undefined as T;
  const body = (await response.json().catch(() => undefined)) as
    { error?: { code?: string; message?: string } } | undefined;
  if (!response.ok) {
    const code = body?.error?.code ?? `HTTP_${response.status}`;
    const error = new ApiError(response.status, code, body?.error?.message ?? response.statusText);
    // An expired or revoked session: back to sign-in, keeping the page.
    if (response.status === 401 && !path.startsWith('/ui/session')) location.assign(signInUrl());
    throw error;
  }
  return body as T;
}

export type Severity = 'CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'UNKNOWN';
export const SEVERITIES: Severity[] = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];

export interface Session {
  subject: string;
  role: string;
  scope: { cluster: string; namespaces: string[] | '*' };
  via: 'token' | 'oidc';
}

export interface Summary {
  counts: Record<Severity, number>;
  configurationCounts: Record<Severity, number>;
  riskScore: number;
  compliance: { passed: boolean; violations: string[] };
}

export interface Workload {
  cluster: string;
  namespace: string;
  pod: string;
  container?: string;
  node: string;
  image: string;
  imageDigest?: string;
}

export interface WorkloadRecord {
  workload: Workload;
  firstSeen: string;
  lastSeen: string;
  lastScan?: { id: number; scanTime: string; kind: string; summary: Summary };
}

export interface NamespaceSummary {
  cluster: string;
  namespace: string;
  workloads: number;
  vulnerableWorkloads: number;
  compliantWorkloads: number;
  counts: Record<Severity, number>;
  configurationCounts: Record<Severity, number>;
}
