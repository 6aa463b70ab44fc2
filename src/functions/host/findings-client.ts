/** Where `vs.getFindings` reads findings: the scanner's findings API (ScannerClient.findings). */
import type { FindingsQuery } from '../../clients/scanner-client.js';

export type { FindingsQuery } from '../../clients/scanner-client.js';

export interface FindingsClient {
  /** The findings API's JSON, or null when the scanner has no scan of that pod (or may not show it). */
  get(query: FindingsQuery): Promise<unknown>;
}
