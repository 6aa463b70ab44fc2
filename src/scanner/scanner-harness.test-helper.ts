/**
 * A real scanner for tests: SQLite files in a temp dir, real OSV records from ../shared/data
 * imported into an advisory database, API tokens on the scanner's connection, a started
 * deliverer (loopback allowed) and the Fastify app.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createApiTokens } from '../auth/api-tokens.js';
import type { ApiTokens } from '../auth/api-tokens.js';
import { openSqliteTokenStore } from '../auth/sqlite-token-store.js';
import { Deliverer } from '../events/deliverer.js';
import type { DeliveryOutcome } from '../events/deliverer.js';
import { TargetGuard } from '../events/ssrf.js';
import type { AdvisoryStore } from '../vulndb/advisory-store.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { buildScannerApp } from './server.js';
import { SqliteScannerStore } from './store/sqlite-scanner-store.js';

export interface Harness {
  dir: string;
  app: FastifyInstance;
  store: SqliteScannerStore;
  tokens: ApiTokens;
  advisories: AdvisoryStore;
  deliverer: Deliverer;
  outcomes: DeliveryOutcome[];
  adminToken: string;
  close(): Promise<void>;
}

/** `osvDir`: a directory of OSV records (e.g. `<shared>/osv/npm`). */
export async function startHarness(osvDir: string, options: { bodyLimit?: number } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'containment-scanner-'));
  const advisories = openSqliteAdvisoryStore(join(dir, 'vulndb.sqlite'), { create: true });
  await importFromPath(advisories, osvDir);
  const store = SqliteScannerStore.open(join(dir, 'scanner.sqlite'));
  const tokens = createApiTokens({ store: openSqliteTokenStore(store.db) });
  const guard = new TargetGuard({ allow: ['127.0.0.0/8'] });
  const outcomes: DeliveryOutcome[] = [];
  const deliverer = new Deliverer({
    queue: store.queue,
    targets: (id) => store.triggerTarget(id),
    guard,
    pollIntervalMs: 3_600_000,
    requestTimeoutMs: 2000,
    retry: { baseMs: 20, jitter: 0, maxAttempts: 2 },
    onOutcome: (o) => outcomes.push(o),
  });
  deliverer.start();
  const app = await buildScannerApp({
    store,
    advisories,
    tokens,
    deliverer,
    guard,
    ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
  });
  const admin = await tokens.issue({
    name: 'admin',
    role: 'admin',
    scope: { cluster: '*', namespaces: '*' },
  });
  return {
    dir,
    app,
    store,
    tokens,
    advisories,
    deliverer,
    outcomes,
    adminToken: admin.token,
    async close() {
      await app.close();
      await deliverer.stop();
      await store.close();
      advisories.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
