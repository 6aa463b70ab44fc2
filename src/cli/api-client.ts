/**
 * A typed client for the scanner API (fetch), and the `--server` / `--token` flags of every CLI
 * command that calls it. API errors keep the server's code (`error[CLUSTER_EXISTS]: …`).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { TokenInfo } from '../auth/api-tokens.js';
import type { Role } from '../auth/principal.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { AgentReport, IngestResult } from '../scanner/ingest.js';
import type {
  ClusterListing,
  ClusterRecord,
  TriggerKind,
  TriggerRecord,
} from '../scanner/store/scanner-store.js';

/** An error answer of the API: its HTTP status and the server's machine-readable code. */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

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

export interface ApiClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  server: string;
  token: string;
  timeoutMs?: number;
}

export class ApiClient {
  private readonly base: string;

  constructor(private readonly options: ApiClientOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new ContainmentError(ErrorCodes.USAGE, `--server: "${options.server}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ContainmentError(ErrorCodes.USAGE, `--server: expected an http(s) URL, got ${url.protocol}`);
    }
    this.base = url.href.replace(/\/+$/, '');
  }

  private async request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'error',
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
      throw new ContainmentError(ErrorCodes.SERVER_UNREACHABLE, `cannot reach ${this.base}: ${cause}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new ContainmentError(
        ErrorCodes.SERVER_UNREACHABLE,
        `${this.base} answered HTTP ${res.status} without JSON; is it a containment server?`,
      );
    }
    if (!res.ok) {
      const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`;
      const message = typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`;
      throw new ApiRequestError(res.status, code, message.split('\n')[0] ?? '');
    }
    return json as T;
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
}

export interface ApiFlags {
  server?: string;
  token?: string;
}

/** `--server` and `--token`, with CONTAINMENT_SERVER / CONTAINMENT_TOKEN as fallbacks. */
export function addApiOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', 'scanner API base URL').env('CONTAINMENT_SERVER'))
    .addOption(new Option('--token <token>', 'bearer token for the API').env('CONTAINMENT_TOKEN'));
}

export function clientFrom(flags: ApiFlags): ApiClient {
  if (!flags.server) {
    throw new ContainmentError(ErrorCodes.USAGE, 'no server: pass --server or set CONTAINMENT_SERVER');
  }
  if (!flags.token) {
    throw new ContainmentError(ErrorCodes.USAGE, 'no token: pass --token or set CONTAINMENT_TOKEN');
  }
  return new ApiClient({ server: flags.server, token: flags.token });
}

/** `--format table|json` for commands that print records. */
export function addFormatOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'),
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
