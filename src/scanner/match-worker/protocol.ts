/** Messages between the scanner's matching pool and its worker threads. */
import type { Package } from '../../inventory/types.js';

/** Where each worker reads advisories (its own connection): a SQLite file or a PostgreSQL URL. */
export type MatchWorkerData = { advisoryDbPath: string } | { database: string };

export interface MatchRequest {
  id: number;
  packages: Package[];
}

export type MatchResponse =
  { id: number; sets: { digest: string; body: string }[] } | { id: number; error: string };
