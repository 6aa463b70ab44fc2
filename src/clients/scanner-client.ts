/**
 * The client of the scanner API (`/v1`): clusters, tokens, triggers and reports for the CLI, the
 * agent and `containment up`; findings for the policy SDK; images for posture and admission; scans
 * for the audit trail. Error answers are ApiError with the server's code (`error[CLUSTER_EXISTS]: …`
 * in the CLI); the findings call, made for a policy, names what it asked in the message.
 */
import type { TokenInfo } from '../auth/api-tokens.js';
import type { Role } from '../auth/principal.js';
import { ErrorCodes } from '../errors.js';
import type { BaselinePush, RuntimeDetection, StoredBaseline } from '../runtime/contracts.js';
import type { AgentReport, IngestResult } from '../scanner/ingest.js';
import type { ClusterListing, ClusterRecord, TriggerKind, TriggerRecord } from '../scanner/scanner-store.js';
import { apiErrorOf, bearer, describedApiError, HttpClient, httpBase } from './http.js';
import type { HttpMethod, JsonResponse } from './http.js';

export interface NewTokenRequest {
  name: string;
  role: Role;
  cluster: string;
  namespaces: string[] | '*';
  expiresAt?: string;
}

export interface NewTriggerRequest {
  cluster: string;
  namespaces: string[] | '*';
  url: string;
  kind: TriggerKind;
  secret: string;
  auth?: string;
  options: { everyScan: boolean };
}

export interface FindingsQuery {
  cluster: string;
  namespace: string;
  pod: string;
  container?: string;
  /** RFC 3339: the findings as they were then (the latest scan at or before it). */
  at?: string;
}

export interface ScannerClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  server: string;
  token: string;
  /** Per request (default 30 s). */
  timeoutMs?: number;
  /** How an unreachable server is named in errors (`--server` in the CLI). */
  serverFlag?: string;
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
}

export class ScannerClient {
  private readonly http: HttpClient;

  constructor(options: ScannerClientOptions) {
    this.http = new HttpClient({
      base: httpBase(options.server, options.serverFlag ?? '--server'),
      authorization: bearer(options.token),
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    });
  }

  get base(): string {
    return this.http.base;
  }

  /** The answer's JSON; an error answer is an ApiError with the server's code. */
  private async request<T>(method: HttpMethod, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const response = await this.http.send(method, path, {
      ...(body === undefined ? {} : { body }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    if (response.status < 200 || response.status > 299) throw apiErrorOf(response);
    return response.body as T;
  }

  createCluster(name: string): Promise<{ cluster: ClusterRecord; agentToken: string; agentTokenId: string }> {
    return this.request('POST', '/v1/clusters', { name });
  }

  async listClusters(): Promise<ClusterListing[]> {
    return (await this.request<{ clusters: ClusterListing[] }>('GET', '/v1/clusters')).clusters;
  }

  async removeCluster(name: string): Promise<void> {
    await this.request('DELETE', `/v1/clusters/${encodeURIComponent(name)}`);
  }

  createToken(request: NewTokenRequest): Promise<{ token: string; info: TokenInfo }> {
    return this.request('POST', '/v1/tokens', request);
  }

  async listTokens(): Promise<TokenInfo[]> {
    return (await this.request<{ tokens: TokenInfo[] }>('GET', '/v1/tokens')).tokens;
  }

  async revokeToken(id: string): Promise<void> {
    await this.request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  createTrigger(request: NewTriggerRequest): Promise<TriggerRecord> {
    return this.request('POST', '/v1/triggers', request);
  }

  async listTriggers(): Promise<TriggerRecord[]> {
    return (await this.request<{ triggers: TriggerRecord[] }>('GET', '/v1/triggers')).triggers;
  }

  async removeTrigger(id: string): Promise<void> {
    await this.request('DELETE', `/v1/triggers/${encodeURIComponent(id)}`);
  }

  sendReport(report: AgentReport): Promise<IngestResult> {
    return this.request('POST', '/v1/reports', report);
  }

  /** Runtime detections of this agent's node (`POST /v1/detections`, 1–1000 at once, agent token). */
  reportDetections(detections: readonly RuntimeDetection[]): Promise<unknown> {
    return this.request('POST', '/v1/detections', { detections });
  }

  /**
   * Pushes this agent's changed baselines (none: only fetch) and returns every baseline of the
   * cluster (`POST /v1/baselines/sync`, agent token).
   */
  async syncBaselines(cluster: string, baselines: readonly BaselinePush[]): Promise<StoredBaseline[]> {
    return (
      await this.request<{ baselines: StoredBaseline[] }>('POST', '/v1/baselines/sync', {
        cluster,
        baselines,
      })
    ).baselines;
  }

  /** `GET /v1/baselines`: the cluster's baselines (the token's cluster by default), or one image's. */
  async baselines(query: { cluster?: string; image?: string }): Promise<StoredBaseline[]> {
    const params = new URLSearchParams();
    if (query.cluster !== undefined) params.set('cluster', query.cluster);
    if (query.image !== undefined) params.set('image', query.image);
    const qs = params.size > 0 ? `?${params}` : '';
    return (await this.request<{ baselines: StoredBaseline[] }>('GET', `/v1/baselines${qs}`)).baselines;
  }

  /** Ends an image's learning: protect (default) or monitor (admin). */
  async lockBaseline(request: {
    cluster?: string;
    image: string;
    state?: 'protect' | 'monitor';
  }): Promise<StoredBaseline> {
    return (await this.request<{ baseline: StoredBaseline }>('POST', '/v1/baselines/lock', request)).baseline;
  }

  /** Empties an image's baseline: it learns again (admin). */
  async resetBaseline(request: { cluster?: string; image: string }): Promise<StoredBaseline> {
    return (await this.request<{ baseline: StoredBaseline }>('POST', '/v1/baselines/reset', request))
      .baseline;
  }

  /** Asks the scanner to look for a new advisory import to re-match now (admin). */
  async rematch(timeoutMs = 120_000): Promise<void> {
    await this.request('POST', '/v1/admin/rematch', undefined, timeoutMs);
  }

  /** One scan's record (`GET /v1/scans/{id}`), unchecked: the caller parses what it needs. */
  scan(id: string | number): Promise<unknown> {
    return this.request('GET', `/v1/scans/${encodeURIComponent(String(id))}`);
  }

  /** One detection aggregate (`GET /v1/detections/{id}`), unchecked like `scan`. */
  detection(id: string | number): Promise<unknown> {
    return this.request('GET', `/v1/detections/${encodeURIComponent(String(id))}`);
  }

  /** `GET /v1/images?…`: the answer as it came (status and JSON); the caller judges it. */
  images(query: URLSearchParams): Promise<JsonResponse> {
    return this.http.send('GET', `/v1/images?${query}`);
  }

  /**
   * The findings API's JSON for one pod (`vs.getFindings`), or null when the scanner has no scan of
   * it — or may not show it: the scanner answers 404 for both.
   */
  async findings(query: FindingsQuery): Promise<unknown> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, value);
    const response = await this.http.send('GET', `/v1/findings?${params}`);
    if (response.status === 200) return response.body;
    if (response.status === 404) return null;
    const what = `findings of ${query.cluster}/${query.namespace}/${query.pod}`;
    throw describedApiError(what, response, ErrorCodes.SERVER_UNREACHABLE);
  }
}
