/**
 * `containment up`: the whole loop on one machine, on loopback. The scanner service (port P, SQLite
 * in the data dir), the function runtime (P+1) with the security-notices package and the reference
 * policy in namespace `local`, the enforcer's action API (P+2) over a LocalEnforcer, and the agent
 * scanning the engine's running containers. The scanner's `cloudevents` trigger points at the
 * package's web endpoint; the policy reads findings and asks for actions with `policy` tokens
 * scoped to namespace `local`. An advisory import into the data dir by another process is noticed
 * through file events at once (the scanner's poll is the fallback). Without a reachable engine there is no agent, and the action API
 * refuses every action with ENGINE_UNAVAILABLE; the scanner and the runtime run as usual.
 * `GET /v1/audit?namespace=&pod=` on the action API joins each action with its scan, event and
 * policy activation through the scanner's and the runtime's APIs.
 *
 * Monitor mode (the default; `enforce` off): the reference policy is deployed with the dry-run
 * annotation and the enforcer turns every action but Release into a dry run (decision-log.ts), so
 * decisions are recorded and reported but nothing is changed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { Agent } from '../agent/agent.js';
import { ApiError } from '../clients/http.js';
import { newWebhookSecret } from '../events/signature.js';
import { ScannerClient } from '../clients/scanner-client.js';
import { WhiskClient } from '../clients/whisk-client.js';
import { startActionApi } from '../enforcement/action-api.js';
import type { RunningActionApi } from '../enforcement/action-api.js';
import { LocalEnforcer } from '../enforcement/local-enforcer.js';
import { managedContainerGuard } from '../enforcement/managed-guard.js';
import type { Enforcer } from '../enforcement/local-enforcer.js';
import { UnavailableEnforcer } from '../enforcement/unavailable-enforcer.js';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import { deployToRuntime } from '../functions/adapters/openwhisk/policy-deploy.js';
import { readPolicy } from '../functions/adapters/policy-bundle.js';
import { runFunctions } from '../functions/run-functions.js';
import type { RunningFunctions } from '../functions/run-functions.js';
import { installSecurityNotices, securityNoticesUrl } from '../functions/security-notices.js';
import { httpEnforcement, httpFindings, PolicySdkHost } from '../functions/host/policy-sdk-host.js';
import type { NamespaceCredentials } from '../functions/host/policy-sdk-host.js';
import { TOKEN_PREFIX } from '../auth/api-tokens.js';
import { runScannerServer } from '../scanner/run-server.js';
import type { RunningServer } from '../scanner/run-server.js';
import type { LinkedParts } from '../scanner/routes/linked-parts.js';
import type { WebOidcClient } from '../scanner/routes/ui-oidc.js';
import type { OidcVerifierOptions } from '../auth/oidc.js';
import { openSqliteAdvisoryStore } from '../vulndb/sqlite-store.js';
import { auditTrail, httpAuditLookups } from '../audit/trail.js';
import { ObservedEnforcer } from './decision-log.js';
import type { Decision } from './decision-log.js';
import { watchAdvisoryImports } from './import-watch.js';
import type { AuditSources } from '../audit/trail.js';

export const UP_CLUSTER = 'local';
export const UP_NAMESPACE = 'local';
export const POLICY_ACTION = 'quarantine-or-terminate';
export const ADVISORY_DB_FILE = 'vulndb.sqlite';
const STATE_FILE = 'up-state.json';
const AGENT_TOKEN_NAME = 'up agent';
const POLICY_TOKEN_NAME = 'up policies of local';
const UP_TOKEN_NAMES = [AGENT_TOKEN_NAME, POLICY_TOKEN_NAME];
const REFERENCE_POLICY = fileURLToPath(
  new URL('../../policies/examples/quarantine-or-terminate.ts', import.meta.url),
);

export interface RunUpOptions {
  dataDir: string;
  /** The scanner's port; the runtime listens on port+1 and the action API on port+2. */
  port: number;
  engineSocket?: string;
  rescanIntervalMs: number;
  /** Watch only containers carrying all these labels (default: every container). */
  labels?: Record<string, string>;
  /** The agent's runtime sensor (default `on`; see docs/runtime-detection.md). */
  runtimeDetection?: 'on' | 'off';
  /** Grace period the reference policy gives a vulnerable container before SIGKILL. */
  gracePeriodSeconds: number;
  /** How often the scanner looks for advisory imports to re-match. */
  rematchIntervalMs: number;
  /** Carry actions out for real; otherwise (the default) monitor: every action is a dry run. */
  enforce?: boolean;
  /** OIDC JWTs the scanner accepts, and the dashboard's OIDC client (`--oidc-*`). */
  oidc?: OidcVerifierOptions;
  webOidc?: WebOidcClient;
  /** Called once per new action with its outcome (the CLI's live output). */
  onDecision?: (decision: Decision) => void;
  logger: Logger;
  /** One-line notices for the operator (stderr in the CLI). */
  notice: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export interface RunningUp {
  scannerUrl: string;
  functionsUrl: string;
  /** Always served; with no engine reachable it refuses actions (ENGINE_UNAVAILABLE, HTTP 503). */
  actionApiUrl: string;
  /** False when no engine is reachable: no live scanning, no enforcement. */
  enforcement: boolean;
  /** `monitor`: actions are recorded as dry runs; `enforce`: carried out. */
  mode: 'monitor' | 'enforce';
  /** The agent and policy tokens this start issued (those of earlier starts are revoked). */
  issuedTokens: { agent: string; policy: string };
  adminToken: string;
  /** `uuid:key` of the functions namespace `local`. */
  functionsAuth: string;
  engineSocket?: string;
  close(): Promise<void>;
}

interface UpState {
  adminToken: string;
  functionsAuth?: string;
}

const HOST = '127.0.0.1';

function newApiToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
}

/** Kept (mode 0600) so a second `up` on the same data dir can administer what the first created. */
function loadState(dataDir: string): UpState {
  const file = join(dataDir, STATE_FILE);
  if (!existsSync(file)) return { adminToken: newApiToken() };
  return JSON.parse(readFileSync(file, 'utf8')) as UpState;
}

function saveState(dataDir: string, state: UpState): void {
  writeFileSync(join(dataDir, STATE_FILE), `${JSON.stringify(state)}\n`, { mode: 0o600 });
}

async function reachableEngine(
  options: RunUpOptions,
  env: NodeJS.ProcessEnv,
): Promise<{ socket: string; engine: DockerEngine } | string> {
  const socket = findEngineSocket(options.engineSocket, env);
  if (socket === undefined) return 'no container engine socket found (--engine-socket or CONTAINER_HOST)';
  const engine = new DockerEngine(socket);
  try {
    await engine.ping();
    return { socket, engine };
  } catch (e) {
    return `the container engine at ${socket} does not answer (${(e as Error).message})`;
  }
}

/**
 * The advisory database in the data dir, created empty when missing. The scanner takes the newest
 * import it finds at start as already matched; a database that never had one gets an empty import,
 * so the first real import is re-matched, not swallowed.
 */
async function prepareAdvisoryDb(options: RunUpOptions): Promise<string> {
  const { dataDir } = options;
  const advisoryDbPath = join(dataDir, ADVISORY_DB_FILE);
  if (!existsSync(advisoryDbPath)) {
    options.notice(
      `no advisory database in ${dataDir}: created an empty one; fill it with \`containment db import <dir> --data-dir ${dataDir}\` (picked up while running)`,
    );
  }
  const advisories = openSqliteAdvisoryStore(advisoryDbPath, { create: true });
  try {
    if (advisories.lastImport() === undefined)
      await advisories.importRecords([], { source: 'containment up: empty database' });
  } finally {
    advisories.close();
  }
  return advisoryDbPath;
}

/**
 * The cluster `local`, and fresh agent and policy tokens: those of earlier starts (even one that
 * crashed) are revoked first, so a token copied out of an old process stops working.
 */
async function issueTokens(admin: ScannerClient): Promise<RunningUp['issuedTokens']> {
  try {
    await admin.createCluster(UP_CLUSTER);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 409)) throw e;
  }
  for (const t of await admin.listTokens())
    if (UP_TOKEN_NAMES.includes(t.name) && t.revokedAt === undefined) await admin.revokeToken(t.id);
  const agent = (
    await admin.createToken({ name: AGENT_TOKEN_NAME, role: 'agent', cluster: UP_CLUSTER, namespaces: '*' })
  ).token;
  const policy = (
    await admin.createToken({
      name: POLICY_TOKEN_NAME,
      role: 'policy',
      cluster: UP_CLUSTER,
      namespaces: [UP_NAMESPACE],
    })
  ).token;
  return { agent, policy };
}

/** Stops what was started, in reverse order (the agent first, the scanner last). */
function closerList(logger: Logger): { push(c: () => Promise<void> | void): void; close(): Promise<void> } {
  const closers: (() => Promise<void> | void)[] = [];
  return {
    push: (c) => closers.push(c),
    async close() {
      for (const c of closers.splice(0).reverse()) {
        try {
          await c();
        } catch (e) {
          logger.error({ err: e }, 'stopping failed');
        }
      }
    },
  };
}

interface Started {
  scanner: RunningServer;
  admin: ScannerClient;
  state: UpState;
  closers: ReturnType<typeof closerList>;
}

/** The scanner, its advisory-import watch, and the tokens of this start. */
async function startScanner(
  options: RunUpOptions,
  advisoryDbPath: string,
  state: UpState,
  closers: Started['closers'],
  linked: () => LinkedParts | undefined,
): Promise<{ scanner: RunningServer; admin: ScannerClient; tokens: RunningUp['issuedTokens'] }> {
  const { dataDir, logger } = options;
  const scanner = await runScannerServer({
    host: HOST,
    port: options.port,
    dataDir,
    advisoryDbPath,
    triggerAllow: ['127.0.0.0/8'],
    adminToken: state.adminToken,
    rematchIntervalMs: options.rematchIntervalMs,
    ...(options.oidc ? { oidc: options.oidc } : {}),
    ...(options.webOidc ? { webOidc: options.webOidc } : {}),
    // The dashboard's audit and policies pages: the action API and runtime started after it.
    linkedParts: linked,
    logger,
  });
  closers.push(() => scanner.close());
  saveState(dataDir, state);
  const admin = new ScannerClient({ server: scanner.url, token: state.adminToken });
  const imports = watchAdvisoryImports(
    dataDir,
    ADVISORY_DB_FILE,
    () => admin.rematch(),
    (e) => logger.warn({ err: e }, 'advisory import watch'),
  );
  closers.push(() => imports.close());
  return { scanner, admin, tokens: await issueTokens(admin) };
}

/** The function runtime with the policy SDK host for namespace `local`, and the loop deployed in it. */
async function startFunctions(
  options: RunUpOptions,
  started: Started,
  policyToken: string,
  enforcerToken: string,
): Promise<{ functions: RunningFunctions; functionsAuth: string }> {
  const { dataDir, logger } = options;
  const env = options.env ?? process.env;
  const { scanner, admin, state, closers } = started;
  const credentials: NamespaceCredentials = {
    cluster: UP_CLUSTER,
    scannerToken: policyToken,
    enforcerToken,
  };
  const functions = await runFunctions({
    host: HOST,
    port: options.port + 1,
    dataDir: join(dataDir, 'functions'),
    logger,
    ...(env.CONTAINMENT_FUNCTIONS_AUTH ? { guestAuth: env.CONTAINMENT_FUNCTIONS_AUTH } : {}),
    policyHost: new PolicySdkHost({
      credentials: (ns) => (ns === UP_NAMESPACE ? credentials : undefined),
      findings: httpFindings(scanner.url),
      enforcement: httpEnforcement(actionApiUrlOf(options)),
    }),
  });
  closers.push(() => functions.close());
  if (state.functionsAuth === undefined) {
    state.functionsAuth = functions.addNamespace(UP_NAMESPACE);
    saveState(dataDir, state);
  }
  const functionsAuth = state.functionsAuth;
  await deployLoop(functions.url, functionsAuth, options.gracePeriodSeconds, admin, options.enforce !== true);
  return { functions, functionsAuth };
}

const actionApiUrlOf = (options: RunUpOptions): string => `http://${HOST}:${options.port + 2}`;

export async function runUp(options: RunUpOptions): Promise<RunningUp> {
  const env = options.env ?? process.env;
  const { dataDir, logger } = options;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const advisoryDbPath = await prepareAdvisoryDb(options);
  const state = loadState(dataDir);
  if (env.CONTAINMENT_ADMIN_TOKEN) state.adminToken = env.CONTAINMENT_ADMIN_TOKEN;

  const closers = closerList(logger);
  const { close } = closers;
  try {
    // Set once the action API and the runtime below are up; until then the scanner has none.
    const linked: { parts?: LinkedParts } = {};
    const { scanner, admin, tokens } = await startScanner(
      options,
      advisoryDbPath,
      state,
      closers,
      () => linked.parts,
    );
    const found = await reachableEngine(options, env);
    const engine = typeof found === 'string' ? undefined : found;
    if (engine === undefined)
      options.notice(`${String(found)}: live scanning and enforcement are OFF (scanner and functions only)`);

    const enforcerToken = `enforcer-${randomBytes(24).toString('hex')}`;
    const { functions, functionsAuth } = await startFunctions(
      options,
      { scanner, admin, state, closers },
      tokens.policy,
      enforcerToken,
    );

    const enforce = options.enforce === true;
    const engineEnforcer: Enforcer =
      engine === undefined
        ? new UnavailableEnforcer(String(found))
        : new LocalEnforcer({
            engine: engine.engine,
            dataDir: join(dataDir, 'enforcer'),
            evidenceDir: join(dataDir, 'evidence'),
            cluster: UP_CLUSTER,
            // Least privilege: only the containers the agent below watches (same --label filter).
            guard: managedContainerGuard(engine.engine, options.labels),
          });
    const enforcer = new ObservedEnforcer(engineEnforcer, {
      enforce,
      onDecision: options.onDecision ?? (() => {}),
    });
    closers.push(() => enforcer.close());
    const auditSources: AuditSources = {
      scanner: { url: scanner.url, token: state.adminToken },
      functions: { url: functions.url, namespace: UP_NAMESPACE, auth: functionsAuth },
    };
    const running: RunningActionApi = await startActionApi({
      host: HOST,
      port: options.port + 2,
      enforcer,
      cluster: UP_CLUSTER,
      tokens: [
        { token: enforcerToken, name: 'policies of local', role: 'policy', namespaces: [UP_NAMESPACE] },
        // The printed admin token reads and submits actions too.
        { token: state.adminToken, name: 'admin', role: 'admin', namespaces: '*' },
      ],
      logger,
      onBackgroundError: (e, id) => logger.error({ err: e, action: id }, 'action failed'),
      audit: (actions) => auditTrail(httpAuditLookups(auditSources), actions),
    });
    closers.push(() => running.close());
    linked.parts = {
      cluster: UP_CLUSTER,
      actions: { url: running.url, token: state.adminToken },
      functions: { url: functions.url, namespaces: { [UP_NAMESPACE]: functionsAuth } },
    };
    if (engine !== undefined) {
      const agentClient = new ScannerClient({ server: scanner.url, token: tokens.agent });
      const agent = new Agent({
        engine: engine.engine,
        sink: agentClient,
        detections: agentClient,
        runtimeDetection: options.runtimeDetection ?? 'on',
        logger,
        cluster: UP_CLUSTER,
        rescanIntervalMs: options.rescanIntervalMs,
        ...(options.labels === undefined ? {} : { labels: options.labels }),
      });
      closers.push(() => agent.stop());
      await agent.start();
    }
    return {
      scannerUrl: scanner.url,
      functionsUrl: functions.url,
      actionApiUrl: running.url,
      enforcement: engine !== undefined,
      mode: enforce ? 'enforce' : 'monitor',
      issuedTokens: tokens,
      adminToken: state.adminToken,
      functionsAuth,
      ...(engine === undefined ? {} : { engineSocket: engine.socket }),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Namespace `local` gets the security-notices package (a new secret each start), the reference
 * policy and the rule between them — deployed as `containment policy deploy` deploys to the
 * runtime; the scanner gets one `cloudevents` trigger at the web endpoint (an earlier run's is
 * replaced).
 */
async function deployLoop(
  functionsUrl: string,
  auth: string,
  gracePeriodSeconds: number,
  admin: ScannerClient,
  dryRun: boolean,
): Promise<void> {
  const secret = newWebhookSecret();
  const api = new WhiskClient({ apihost: functionsUrl, auth, namespace: UP_NAMESPACE });
  await installSecurityNotices(api, secret);
  await deployToRuntime(api, readPolicy(REFERENCE_POLICY), {
    name: POLICY_ACTION,
    params: { gracePeriodSeconds },
    // Deployed on every start, so the mode of this start is the one the policy runs in.
    dryRun,
    // Snapshot, grace period and removal all happen while the policy waits.
    timeoutMs: 300_000,
  });
  const url = securityNoticesUrl(functionsUrl, UP_NAMESPACE);
  // An earlier run's trigger (perhaps on another port) would deliver to nothing, or to a stranger.
  const ours = (other: string): boolean => {
    const a = new URL(other);
    return a.hostname === HOST && a.pathname === new URL(url).pathname;
  };
  for (const t of await admin.listTriggers()) if (ours(t.url)) await admin.removeTrigger(t.id);
  await admin.createTrigger({
    cluster: UP_CLUSTER,
    namespaces: '*',
    url,
    kind: 'cloudevents',
    secret,
    options: { everyScan: false },
  });
}
