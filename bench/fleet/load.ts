/** Load generation and measurement helpers for the fleet benchmark. */
import http from 'node:http';
import { loadavg } from 'node:os';
import pg from 'pg';
import { requestJson } from '../../src/testing/scanner-process.js';
import { postgresAdminUrl } from '../../src/testing/postgres.js';

export const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** At most `limit` calls of `fn` in flight; a counting semaphore shared by every simulated node. */
export function limiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active >= limit) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/** One keep-alive socket pool per replica, sized to the concurrency (the agents' connections). */
export function replicaAgents(count: number, sockets: number): http.Agent[] {
  return Array.from({ length: count }, () => new http.Agent({ keepAlive: true, maxSockets: sockets }));
}

export interface Posted {
  status: number;
  ms: number;
  body: unknown;
}

export async function post(url: string, token: string, body: string, agent: http.Agent): Promise<Posted> {
  const t0 = performance.now();
  const r = await requestJson(url, token, 'POST', '/v1/reports', body, agent);
  return { status: r.status, ms: performance.now() - t0, body: r.body };
}

export async function databaseSize(name: string): Promise<number> {
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  await client.connect();
  try {
    const r = await client.query<{ size: string }>('SELECT pg_database_size($1) AS size', [name]);
    return Number(r.rows[0]?.size ?? NaN);
  } finally {
    await client.end();
  }
}

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
