/**
 * Starts the scanner service on SQLite: opens the scanner database (`<data dir>/scanner.sqlite`,
 * which also holds API tokens and the outbox) and the advisory database, bootstraps the first
 * admin token, starts the deliverer and listens. `containment server` and `containment up` use it.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { createApiTokens } from '../auth/api-tokens.js';
import type { ApiTokens } from '../auth/api-tokens.js';
import { openSqliteTokenStore } from '../auth/sqlite-token-store.js';
import { ContainmentError, ErrorCodes } from '../errors.js';
import { Deliverer } from '../events/deliverer.js';
import { TargetGuard } from '../events/ssrf.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { buildScannerApp } from './server.js';
import { SqliteScannerStore } from './store/sqlite-scanner-store.js';

export const SCANNER_DB_FILE = 'scanner.sqlite';

export interface RunServerOptions {
  host: string;
  port: number;
  dataDir: string;
  /** The advisory database (must exist: `containment db update|import`). */
  advisoryDbPath: string;
  /** CIDRs of private/loopback ranges trigger URLs may use. */
  triggerAllow: readonly string[];
  /** `CONTAINMENT_ADMIN_TOKEN`: registered as a global admin when given. */
  adminToken?: string;
  bodyLimit?: number;
  logger?: FastifyBaseLogger;
}

export interface RunningServer {
  url: string;
  /** Set only when no admin existed and none was given: shown once, never stored in clear. */
  generatedAdminToken?: string;
  close(): Promise<void>;
}

const ADMIN_SCOPE = { cluster: '*', namespaces: '*' } as const;

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
  const advisories = openSqliteAdvisoryStore(options.advisoryDbPath);
  const store = SqliteScannerStore.open(join(options.dataDir, SCANNER_DB_FILE));
  const tokenStore = openSqliteTokenStore(store.db);
  const tokens = createApiTokens({ store: tokenStore });
  const deliverer = new Deliverer({
    queue: store.queue,
    targets: (id) => store.triggerTarget(id),
    guard,
    onOutcome: (o) => options.logger?.info({ delivery: o }, 'event delivery'),
    onError: (e) => options.logger?.error({ err: e }, 'outbox error'),
  });
  let app: Awaited<ReturnType<typeof buildScannerApp>> | undefined;
  const close = async (): Promise<void> => {
    await app?.close();
    await deliverer.stop();
    await store.close();
    advisories.close();
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
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
    });
    deliverer.start();
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
