/**
 * Starts the scanner service: opens its stores (`server-stores.ts`: SQLite files by default, or
 * one PostgreSQL database shared by replicas), bootstraps the first admin token, starts the
 * deliverer and listens. `containment server` and `containment up` use it.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { createApiTokens } from '../auth/api-tokens.js';
import type { ApiTokens } from '../auth/api-tokens.js';
import { createOidcVerifier } from '../auth/oidc.js';
import type { OidcVerifierOptions } from '../auth/oidc.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { EventTypes } from '../events/cloud-event.js';
import { Deliverer } from '../events/deliverer.js';
import { TargetGuard } from '../events/ssrf.js';
import { DEFAULT_DETECTION_RETENTION_MS, DetectionRetention } from './detection-retention.js';
import { MatchWorkerPool } from './match-worker/match-pool.js';
import { DEFAULT_MATCH_CACHE } from './match-cache-mode.js';
import type { MatchCacheMode } from './match-cache-mode.js';
import { PackageMatcher } from './package-matcher.js';
import { Rematcher } from './rematch.js';
import { ScannerMetrics } from './metrics.js';
import { buildScannerApp } from './server.js';
import type { RateLimit, ScannerAppOptions } from './server.js';
import type { LinkedParts } from './routes/linked-parts.js';
import type { WebOidcClient } from './routes/ui-oidc.js';
import { openServerStores } from './server-stores.js';

export { SCANNER_DB_FILE } from './server-stores.js';
export const DEFAULT_REMATCH_INTERVAL_MS = 5000;

export interface RunServerOptions {
  host: string;
  port: number;
  /**
   * `postgres://…` (`--database`): scanner store, tokens, outbox and advisories all in that
   * database, for several replicas; `dataDir` and `advisoryDbPath` are then unused.
   */
  database?: string;
  dataDir: string;
  /** The advisory database (must exist: `containment db update|import`). */
  advisoryDbPath: string;
  /** CIDRs of private/loopback ranges trigger URLs may use. */
  triggerAllow: readonly string[];
  /** `CONTAINMENT_ADMIN_TOKEN`: registered as a global admin when given. */
  adminToken?: string;
  bodyLimit?: number;
  /** Accept OIDC JWTs from this issuer besides API tokens. */
  oidc?: OidcVerifierOptions;
  /** Per-token request limit; false turns it off. Default DEFAULT_RATE_LIMIT. */
  rateLimit?: RateLimit | false;
  /** Dashboard sign-ins (`POST /ui/session`) per client address; false turns it off. Default DEFAULT_SIGN_IN_RATE_LIMIT. */
  signInRateLimit?: RateLimit | false;
  /** The dashboard's OIDC client (needs `oidc`): `--oidc-client-id`, `--oidc-client-secret`, `--oidc-redirect-uri`. */
  webOidc?: WebOidcClient;
  /** The enforcer and policy runtime beside this scanner (`containment up`): `/v1/audit`, `/v1/policies`. */
  linkedParts?: () => LinkedParts | undefined;
  /**
   * How often to look for advisory imports (also by other processes) and re-match stored
   * inventories; default DEFAULT_REMATCH_INTERVAL_MS, 0 = only on `POST /v1/admin/rematch`.
   */
  rematchIntervalMs?: number;
  /**
   * Runtime detections last seen longer ago than this are deleted; default
   * DEFAULT_DETECTION_RETENTION_MS (30 days), 0 = kept forever.
   */
  detectionRetentionMs?: number;
  /**
   * Where matches of packages are kept (`--match-cache`): `local` (this process only) or `shared`
   * (also in the advisory database, for the other replicas and the next start); default
   * DEFAULT_MATCH_CACHE.
   */
  matchCache?: MatchCacheMode;
  logger?: FastifyBaseLogger;
  /** Serve the enforcer's action API here too (`containment up`; see ScannerAppOptions). */
  actions?: ScannerAppOptions['actions'];
}

export interface RunningServer {
  url: string;
  /** Set only when no admin existed and none was given: shown once, never stored in clear. */
  generatedAdminToken?: string;
  close(): Promise<void>;
}

const ADMIN_SCOPE = { cluster: '*', namespaces: '*' } as const;

/**
 * 30,000 requests a minute per token (500/s). Every agent of a cluster shares its cluster's token,
 * so the default must carry a whole cluster's reports; it exists to stop a runaway client.
 */
export const DEFAULT_RATE_LIMIT: RateLimit = { max: 30_000, windowMs: 60_000 };

/** 20 dashboard sign-ins a minute per address: plenty for people, slow for guessing tokens. */
export const DEFAULT_SIGN_IN_RATE_LIMIT: RateLimit = { max: 20, windowMs: 60_000 };

/** Registers the operator's bootstrap admin token; it must end up a global admin token. */
async function registerGivenAdmin(tokens: ApiTokens, token: string): Promise<void> {
  const info = await tokens
    .register(token, { name: 'admin (CONTAINMENT_ADMIN_TOKEN)', role: 'admin', scope: ADMIN_SCOPE })
    .catch((e: unknown) => {
      throw new ContainmentError(ErrorCodes.USAGE, `CONTAINMENT_ADMIN_TOKEN: ${(e as Error).message}`);
    });
  if (
    info.role !== 'admin' ||
    info.scope.cluster !== '*' ||
    info.scope.namespaces !== '*' ||
    info.revokedAt
  ) {
    throw new ContainmentError(
      ErrorCodes.USAGE,
      'CONTAINMENT_ADMIN_TOKEN is already registered with another role or scope, or was revoked',
    );
  }
}

export async function runScannerServer(options: RunServerOptions): Promise<RunningServer> {
  const guard = new TargetGuard({ allow: options.triggerAllow });
  const stores = await openServerStores({
    ...options,
    onPoolError: (e) => options.logger?.warn({ err: e }, 'idle database connection failed'),
  });
  const { store, advisories } = stores;
  const tokens = createApiTokens({ store: stores.tokenStore });
  const metrics = new ScannerMetrics();
  const deliverer = new Deliverer({
    queue: store.queue,
    targets: (id) => store.triggerTarget(id),
    guard,
    onOutcome: (o) => {
      metrics.deliveryOutcome(o);
      options.logger?.info({ delivery: o }, 'event delivery');
    },
    onError: (e) => options.logger?.error({ err: e }, 'outbox error'),
  });
  const rematcher = new Rematcher({
    store,
    advisories,
    onEvents: () => deliverer.notify(),
    pollIntervalMs: options.rematchIntervalMs ?? DEFAULT_REMATCH_INTERVAL_MS,
    onCheck: (check) => {
      metrics.eventsEnqueued(EventTypes.FINDINGS_CHANGED, check.events);
      if (check.advisories > 0) options.logger?.info({ rematch: check }, 'advisory update re-matched');
    },
    onError: (e) => options.logger?.error({ err: e }, 're-match failed'),
  });
  // Packages not matched before are matched in a worker thread with its own connection to the
  // advisory database, so the event loop keeps answering (and delivering) meanwhile.
  const matchWorkers = new MatchWorkerPool(
    options.database === undefined
      ? { advisoryDbPath: options.advisoryDbPath }
      : { database: options.database },
  );
  const matcher = new PackageMatcher(advisories, {
    remote: matchWorkers,
    shared: (options.matchCache ?? DEFAULT_MATCH_CACHE) === 'shared',
    onSharedError: (e) => options.logger?.warn({ err: e }, 'shared match cache write failed'),
  });
  const retention = new DetectionRetention({
    detections: store.detections,
    retentionMs: options.detectionRetentionMs ?? DEFAULT_DETECTION_RETENTION_MS,
    onPruned: (deleted) => options.logger?.info({ deleted }, 'old runtime detections deleted (retention)'),
    onError: (e) => options.logger?.error({ err: e }, 'detection retention failed'),
  });
  let app: Awaited<ReturnType<typeof buildScannerApp>> | undefined;
  const close = async (): Promise<void> => {
    await retention.stop();
    await rematcher.stop();
    await app?.close();
    await deliverer.stop();
    await matchWorkers.close();
    await stores.close();
  };
  try {
    let generatedAdminToken: string | undefined;
    if (options.adminToken !== undefined && options.adminToken !== '') {
      await registerGivenAdmin(tokens, options.adminToken);
    } else {
      const admins = (await tokens.list()).filter(
        (t) =>
          t.role === 'admin' &&
          t.revokedAt === undefined &&
          t.scope.cluster === '*' &&
          t.scope.namespaces === '*',
      );
      if (admins.length === 0) {
        generatedAdminToken = (
          await tokens.issue({ name: 'admin (generated)', role: 'admin', scope: ADMIN_SCOPE })
        ).token;
      }
    }
    app = await buildScannerApp({
      store,
      advisories,
      tokens,
      deliverer,
      guard,
      rematch: rematcher,
      metrics,
      matcher,
      ...(options.oidc ? { oidc: createOidcVerifier(options.oidc) } : {}),
      ...(options.rateLimit === false ? {} : { rateLimit: options.rateLimit ?? DEFAULT_RATE_LIMIT }),
      ...(options.signInRateLimit === false
        ? {}
        : { signInRateLimit: options.signInRateLimit ?? DEFAULT_SIGN_IN_RATE_LIMIT }),
      ...(options.webOidc ? { webOidc: options.webOidc } : {}),
      ...(options.linkedParts ? { linkedParts: options.linkedParts } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
      ...(options.actions === undefined ? {} : { actions: options.actions }),
    });
    deliverer.start();
    rematcher.start();
    retention.start();
    await app.listen({ host: options.host, port: options.port });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return {
      url: `http://${host}:${address.port}`,
      ...(generatedAdminToken === undefined ? {} : { generatedAdminToken }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
