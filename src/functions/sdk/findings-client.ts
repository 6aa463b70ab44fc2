/** `vs.getFindings` over the scanner's findings API (`GET /v1/findings`), with one namespace's token. */
import { ErrorCodes } from '../../errors.js';
import { apiError, codeForStatus, requestJson } from './http-json.js';

export interface FindingsQuery {
  cluster: string;
  namespace: string;
  pod: string;
  container?: string;
  /** RFC 3339: the findings as they were then (the latest scan at or before it). */
  at?: string;
}

export interface FindingsClient {
  /** The findings API's JSON, or null when the scanner has no scan of that pod (or may not show it). */
  get(query: FindingsQuery): Promise<unknown>;
}

export class HttpFindingsClient implements FindingsClient {
  constructor(private readonly options: { url: string; token: string; timeoutMs?: number }) {}

  async get(query: FindingsQuery): Promise<unknown> {
    const url = new URL('/v1/findings', this.options.url);
    for (const [key, value] of Object.entries(query))
      if (value !== undefined) url.searchParams.set(key, value);
    const response = await requestJson(url.href, {
      method: 'GET',
      token: this.options.token,
      ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
    });
    if (response.status === 200) return response.body;
    // The scanner answers 404 both for "never scanned" and "not yours": either way, nothing to show.
    if (response.status === 404) return null;
    const what = `findings of ${query.cluster}/${query.namespace}/${query.pod}`;
    throw apiError(codeForStatus(response.status, ErrorCodes.SERVER_UNREACHABLE), what, response);
  }
}
