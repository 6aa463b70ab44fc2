/**
 * Starts the function runtime: opens `<dataDir>/functions.sqlite`, makes sure the `guest` namespace
 * exists (key from `CONTAINMENT_FUNCTIONS_AUTH`, else generated and handed back once, as OpenWhisk's
 * standalone mode does), starts the sandbox and listens. `containment functions` and
 * `containment up` use it.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PolicyHost } from './host/policy-host.js';
import { FunctionRuntime } from './runtime.js';
import { QuickJsSandbox } from './sandbox/quickjs-sandbox.js';
import type { QuickJsSandboxOptions } from './sandbox/quickjs-sandbox.js';
import { SecurityEventLog } from './security-events.js';
import { buildFunctionsApp } from './server.js';
import type { FunctionsAppOptions } from './server.js';
import { SqliteReplayGuard } from '../events/sqlite-replay-guard.js';
import { FunctionStore, parseAuth } from './store.js';

export const FUNCTIONS_DB_FILE = 'functions.sqlite';
export const GUEST_NAMESPACE = 'guest';
export const DELIVERIES_DB_FILE = 'deliveries.sqlite';

export interface RunFunctionsOptions {
  host: string;
  port: number;
  dataDir: string;
  logger: Logger;
  /** `uuid:key` for `guest` (CONTAINMENT_FUNCTIONS_AUTH); used only when guest does not exist yet. */
  guestAuth?: string;
  policyHost?: PolicyHost;
  sandbox?: QuickJsSandboxOptions;
  /** Per-source request limits (default DEFAULT_RATE_LIMITS); `false` for none (benchmarks). */
  rateLimit?: FunctionsAppOptions['rateLimit'];
  /** @deprecated Accept the replayable pre-Standard-Webhooks schemes for one release. */
  acceptLegacySignature?: boolean;
}

export interface RunningFunctions {
  /** `http://host:port` — the `apihost` for OpenWhisk clients. */
  url: string;
  /** Set only when guest was created now without a given key: shown once, never stored in clear. */
  generatedGuestAuth?: string;
  /** Adds a namespace and returns its `uuid:key` (generated unless given). */
  addNamespace(name: string, auth?: string): string;
  close(): Promise<void>;
}

export async function runFunctions(options: RunFunctionsOptions): Promise<RunningFunctions> {
  if (options.guestAuth !== undefined) parseAuth(options.guestAuth); // a bad env value fails before anything starts
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const store = new FunctionStore(join(options.dataDir, FUNCTIONS_DB_FILE));
  let generatedGuestAuth: string | undefined;
  if (!store.hasNamespace(GUEST_NAMESPACE)) {
    const auth = store.addNamespace(GUEST_NAMESPACE, options.guestAuth);
    if (options.guestAuth === undefined) generatedGuestAuth = auth;
  }
  const sandbox = new QuickJsSandbox(options.sandbox);
  const securityEvents = new SecurityEventLog(store, options.logger);
  const runtime = new FunctionRuntime({
    store,
    sandbox,
    logger: options.logger,
    securityEvents,
    ...(options.policyHost === undefined ? {} : { host: options.policyHost }),
  });
  // Accepted delivery ids outlive a restart, so a replay right after one is still recognised.
  const replayGuard = new SqliteReplayGuard(join(options.dataDir, DELIVERIES_DB_FILE));
  const app = await buildFunctionsApp({
    replayGuard,
    acceptLegacySignature: options.acceptLegacySignature === true,
    runtime,
    store,
    logger: options.logger,
    securityEvents,
    adminNamespace: GUEST_NAMESPACE,
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
  });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (e) {
    await runtime.close();
    store.close();
    replayGuard.close();
    throw e;
  }
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    ...(generatedGuestAuth === undefined ? {} : { generatedGuestAuth }),
    addNamespace: (name, auth) => store.addNamespace(name, auth),
    async close() {
      await app.close();
      await runtime.close();
      store.close();
      replayGuard.close();
    },
  };
}
