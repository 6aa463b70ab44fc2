/**
 * A real scanner for tests, on either backend: SQLite files in a temp dir, or a throwaway
 * PostgreSQL database (scanner store, API tokens, outbox and advisories all in it, as
 * `containment server --database` runs). Real OSV records from ../shared/data are imported into
 * the advisory store; the deliverer is started (loopback allowed) and the Fastify app built.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { createApiTokens } from '../auth/api-tokens.js';
import type { ApiTokens, TokenStore } from '../auth/api-tokens.js';
import type { OidcVerifier } from '../auth/oidc.js';
import { openPostgresTokenStore, openSqliteTokenStore } from '../storage/tokens/token-store.js';
import { Deliverer } from '../events/deliverer.js';
import type { DeliveryOutcome } from '../events/deliverer.js';
import { TargetGuard } from '../events/ssrf.js';
import { createTestDatabase, postgresReachable, postgresWhat } from '../testing/postgres.js';
import { requireOrSkip } from '../testing/shared-data.js';
import type { AdvisoryStore, AsyncAdvisoryStore } from '../vulndb/advisory-store.js';
import { openPostgresAdvisoryStore } from '../vulndb/postgres-store.js';
import { importFromPath } from '../vulndb/record-sources.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { ScannerMetrics } from './metrics.js';
import type { PackageMatcher } from './package-matcher.js';
import { buildScannerApp } from './server.js';
import type { EventStreamOptions } from './routes/events-stream.js';
import type { LinkedParts } from './routes/linked-parts.js';
import type { WebOidcClient } from './routes/ui-oidc.js';
import type { RateLimit, ScannerAppOptions } from './server.js';
import { PostgresScannerStore } from '../storage/scanner/postgres-scanner-store.js';
import type { ScannerStore } from './scanner-store.js';
import { SqliteScannerStore } from '../storage/scanner/sqlite-scanner-store.js';

export type ScannerBackendName = 'sqlite' | 'postgres';

export interface ScannerBackend {
  name: ScannerBackendName;
  available: boolean;
  /** Named in the skip message when not available. */
  what: string;
}

/** The backends the scanner tests run against: SQLite always, PostgreSQL when reachable. */
export const scannerBackends: readonly ScannerBackend[] = [
  { name: 'sqlite', available: true, what: 'SQLite' },
  { name: 'postgres', available: await postgresReachable(), what: postgresWhat },
];

/**
 * `describe(name (backend), suite)` for every backend; an unavailable one becomes a test that
 * skips loudly (and fails under CI=true).
 */
export function describeEachBackend(
  name: string,
  options: { skip?: boolean },
  suite: (backend: ScannerBackend) => void,
): void {
  for (const backend of scannerBackends) {
    const title = `${name} (${backend.name})`;
    if (backend.available || options.skip === true) describe(title, options, () => suite(backend));
    else test(title, (t) => void requireOrSkip(t, false, backend.what));
  }
}

/** Fresh, empty stores of one backend. */
export interface BackendStores<
  S extends ScannerStore = ScannerStore,
  A extends AsyncAdvisoryStore = AsyncAdvisoryStore,
> {
  store: S;
  tokenStore: TokenStore;
  /** Empty; created for imports. */
  advisories: A;
  /** Rows in a table (assertions that nothing was written). */
  count(table: string): Promise<number>;
  /** Closes the stores and removes the files or drops the database. */
  close(): Promise<void>;
}

export async function openBackendStores(
  backend: 'sqlite',
): Promise<BackendStores<SqliteScannerStore, AdvisoryStore> & { dir: string }>;
export async function openBackendStores(
  backend: ScannerBackendName,
  options?: { databaseUrl?: string },
): Promise<BackendStores & { dir: string }>;
/** `databaseUrl` (PostgreSQL): join that database (another replica) instead of a fresh one; it is left in place. */
export async function openBackendStores(
  backend: ScannerBackendName,
  options: { databaseUrl?: string } = {},
): Promise<BackendStores & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'containment-scanner-'));
  if (backend === 'sqlite') {
    const store = await SqliteScannerStore.open(join(dir, 'scanner.sqlite'));
    const advisories = openSqliteAdvisoryStore(join(dir, 'vulndb.sqlite'), { create: true });
    return {
      dir,
      store,
      tokenStore: openSqliteTokenStore(store.db),
      advisories,
      count: async (table) =>
        (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n,
      async close() {
        await store.close();
        advisories.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const database = options.databaseUrl === undefined ? await createTestDatabase('scanner') : undefined;
  const pool = new pg.Pool({ connectionString: options.databaseUrl ?? database?.url, max: 8 });
  const store = await PostgresScannerStore.open(pool);
  const advisories = await openPostgresAdvisoryStore(pool, { create: true });
  return {
    dir,
    store,
    tokenStore: await openPostgresTokenStore(pool),
    advisories,
    count: async (table) =>
      ((await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0] as { n: number }).n,
    async close() {
      await store.close();
      await advisories.close();
      await pool.end();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Harness<
  S extends ScannerStore = SqliteScannerStore,
  A extends AsyncAdvisoryStore = AdvisoryStore,
> {
  dir: string;
  app: FastifyInstance;
  store: S;
  tokens: ApiTokens;
  advisories: A;
  deliverer: Deliverer;
  outcomes: DeliveryOutcome[];
  metrics: ScannerMetrics;
  adminToken: string;
  /** Rows in a table. */
  count(table: string): Promise<number>;
  close(): Promise<void>;
}

/** A harness on either backend. */
export type BackendHarness = Harness<ScannerStore, AsyncAdvisoryStore>;

export interface HarnessOptions {
  bodyLimit?: number;
  rateLimit?: RateLimit;
  signInRateLimit?: RateLimit;
  linkedParts?: () => LinkedParts | undefined;
  /** Default `sqlite`. */
  backend?: ScannerBackendName;
  /** PostgreSQL: run as another replica on this database (see `openBackendStores`). */
  databaseUrl?: string;
  /** Also accept OIDC tokens (and, with `webOidc`, the dashboard's OIDC sign-in). */
  oidc?: OidcVerifier;
  webOidc?: WebOidcClient;
  eventStream?: EventStreamOptions;
  /** Mount the enforcer's action API (see ScannerAppOptions['actions']). */
  actions?: ScannerAppOptions['actions'];
  /** The app's matcher, made on the harness's advisory store (default: a local-only one). */
  matcher?: (advisories: AsyncAdvisoryStore) => PackageMatcher;
}

/** `osvDir`: a directory of OSV records (e.g. `<shared>/osv/npm`). */
export async function startHarness(
  osvDir: string,
  options?: HarnessOptions & { backend?: 'sqlite' },
): Promise<Harness>;
export async function startHarness(osvDir: string, options: HarnessOptions): Promise<BackendHarness>;
export async function startHarness(osvDir: string, options: HarnessOptions = {}): Promise<BackendHarness> {
  const stores = await openBackendStores(
    options.backend ?? 'sqlite',
    options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl },
  );
  const { dir, store, advisories } = stores;
  await importFromPath(advisories, osvDir);
  const tokens = createApiTokens({ store: stores.tokenStore });
  const guard = new TargetGuard({ allow: ['127.0.0.0/8'] });
  const outcomes: DeliveryOutcome[] = [];
  const metrics = new ScannerMetrics();
  const deliverer = new Deliverer({
    queue: store.queue,
    targets: (id) => store.triggerTarget(id),
    guard,
    pollIntervalMs: 3_600_000,
    requestTimeoutMs: 2000,
    retry: { baseMs: 20, jitter: 0, maxAttempts: 2 },
    onOutcome: (o) => {
      outcomes.push(o);
      metrics.deliveryOutcome(o);
    },
  });
  deliverer.start();
  const app = await buildScannerApp({
    store,
    advisories,
    tokens,
    deliverer,
    guard,
    metrics,
    ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
    ...(options.signInRateLimit === undefined ? {} : { signInRateLimit: options.signInRateLimit }),
    ...(options.linkedParts === undefined ? {} : { linkedParts: options.linkedParts }),
    ...(options.oidc === undefined ? {} : { oidc: options.oidc }),
    ...(options.webOidc === undefined ? {} : { webOidc: options.webOidc }),
    ...(options.eventStream === undefined ? {} : { eventStream: options.eventStream }),
    ...(options.actions === undefined ? {} : { actions: options.actions }),
    ...(options.matcher === undefined ? {} : { matcher: options.matcher(advisories) }),
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
    metrics,
    adminToken: admin.token,
    count: stores.count,
    async close() {
      await app.close();
      await deliverer.stop();
      await stores.close();
    },
  };
}

let reports = 0;

/** A valid agent report body for one pod with npm packages `[name, version]`. */
export function npmReport(
  cluster: string,
  namespace: string,
  pod: string,
  packages: readonly (readonly [string, string])[],
): Record<string, unknown> {
  reports += 1;
  return {
    reportId: `report-${process.pid}-${reports}`,
    workload: { cluster, namespace, pod, node: 'node-1', image: 'registry.local/app:1' },
    scanTime: new Date(Date.UTC(2025, 0, 1, 0, 0, reports)).toISOString(),
    inventory: {
      packages: packages.map(([name, version]) => ({
        name,
        version,
        ecosystem: 'npm',
        location: `/app/node_modules/${name}/package.json`,
        extractor: 'npm',
      })),
      insecureConfigurations: [],
    },
    inventoryHash: packages.map((p) => p.join('@')).join(','),
  };
}
