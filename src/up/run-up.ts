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
 * With runtime detection on, the reference runtime policy (runtime-response) is deployed beside
 * the scan policy. Each sits on a trigger of its own event types (scan events; runtime
 * detections), which the security-notices endpoint fires by the event's type, so each policy is
 * activated only by its own events.
 *
 * Monitor mode (the default; `enforce` off): the reference policies are deployed with the dry-run
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
import { EventTypes } from '../events/cloud-event.js';
import { newWebhookSecret } from '../events/signature.js';
import { ScannerClient } from '../clients/scanner-client.js';
import { WhiskClient } from '../clients/whisk-client.js';
import { startActionApi } from '../enforcement/action-api.js';
import type { ActionApiOptions, RunningActionApi } from '../enforcement/action-api.js';
import { LocalEnforcer } from '../enforcement/local-enforcer.js';
import { managedContainerGuard } from '../enforcement/managed-guard.js';
import type { Enforcer } from '../enforcement/local-enforcer.js';
import { UnavailableEnforcer } from '../enforcement/unavailable-enforcer.js';
import { DockerEngine } from '../engine/docker/docker-engine.js';
import { findEngineSocket } from '../engine/socket.js';
import {
  deployToRuntime,
  listPolicies,
  removePolicy,
} from '../functions/adapters/openwhisk/policy-deploy.js';
import { readPolicy } from '../functions/adapters/policy-bundle.js';
import { runFunctions } from '../functions/run-functions.js';
import type { RunningFunctions } from '../functions/run-functions.js';
import { installSecurityNotices, securityNoticesUrl } from '../functions/security-notices.js';
import { httpEnforcement, httpFindings, PolicySdkHost } from '../functions/host/policy-sdk-host.js';
import type { NamespaceCredentials } from '../functions/host/policy-sdk-host.js';
import { AuditNotifier } from '../functions/host/notifier.js';
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
export const RUNTIME_POLICY_ACTION = 'runtime-response';
export const ADVISORY_DB_FILE = 'vulndb.sqlite';
const STATE_FILE = 'up-state.json';
const UP_DETECTION_BATCH_MS = 10;
const AGENT_TOKEN_NAME = 'up agent';
const POLICY_TOKEN_NAME = 'up policies of local';
const UP_TOKEN_NAMES = [AGENT_TOKEN_NAME, POLICY_TOKEN_NAME];
const REFERENCE_POLICY = fileURLToPath(
  new URL('../../policies/examples/quarantine-or-terminate.ts', import.meta.url),
);
const RUNTIME_POLICY = fileURLToPath(new URL('../../policies/examples/runtime-response.ts', import.meta.url));
/** The policies' triggers, each fired by the security-notices endpoint with its event types only. */
const SCAN_TRIGGER = { name: 'scan-events', types: [EventTypes.SCAN_COMPLETED, EventTypes.FINDINGS_CHANGED] };
const DETECTION_TRIGGER = { name: 'runtime-detections', types: [EventTypes.RUNTIME_DETECTED] };

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
  /**
   * With runtime detection: learn each image's behaviour this long, then report deviations
   * (`anomaly_*`); the baselines are kept by this scanner. Unset: no baselines.
   */
  baselineLearningMs?: number;
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
  actions: ActionApiOptions,
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
    // The dashboard's Actions page and Act buttons: the same enforcer, on the scanner's origin.
    actions: { ...actions, tokens: [] },
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
      // Through up's logger (stderr), never onto stdout among the decision lines: the runtime
      // policy notifies on every detection it does not act on.
      notifier: new AuditNotifier({ logger }),
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
  await deployLoop(functions.url, functionsAuth, admin, {
    gracePeriodSeconds: options.gracePeriodSeconds,
    dryRun: options.enforce !== true,
    runtimePolicy: (options.runtimeDetection ?? 'on') === 'on',
  });
  return { functions, functionsAuth };
}

const actionApiUrlOf = (options: RunUpOptions): string => `http://${HOST}:${options.port + 2}`;

// Over 120 lines: the parts start in dependency order, each pushing its closer; each step is a call.
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
    const found = await reachableEngine(options, env);
    const engine = typeof found === 'string' ? undefined : found;
    const enforce = options.enforce === true;
    const evidenceDir = join(dataDir, 'evidence');
    const engineEnforcer: Enforcer =
      engine === undefined
        ? new UnavailableEnforcer(String(found))
        : new LocalEnforcer({
            engine: engine.engine,
            dataDir: join(dataDir, 'enforcer'),
            evidenceDir,
            cluster: UP_CLUSTER,
            // Least privilege: only the containers the agent below watches (same --label filter).
            guard: managedContainerGuard(engine.engine, options.labels),
          });
    const enforcer = new ObservedEnforcer(engineEnforcer, {
      enforce,
      onDecision: options.onDecision ?? (() => {}),
    });
    closers.push(() => enforcer.close());
    // Known once the scanner and the runtime listen; the audit is only asked for after that.
    const late: { auditSources?: AuditSources } = {};
    const actionApi: ActionApiOptions = {
      enforcer,
      cluster: UP_CLUSTER,
      evidenceDir,
      onBackgroundError: (e, id) => logger.error({ err: e, action: id }, 'action failed'),
      audit: (actions) =>
        late.auditSources === undefined
          ? Promise.resolve([])
          : auditTrail(httpAuditLookups(late.auditSources), actions),
    };

    const { scanner, admin, tokens } = await startScanner(
      options,
      advisoryDbPath,
      state,
      closers,
      actionApi,
      () => linked.parts,
    );
    if (engine === undefined)
      options.notice(`${String(found)}: live scanning and enforcement are OFF (scanner and functions only)`);

    const enforcerToken = `enforcer-${randomBytes(24).toString('hex')}`;
    const { functions, functionsAuth } = await startFunctions(
      options,
      { scanner, admin, state, closers },
      tokens.policy,
      enforcerToken,
    );
    late.auditSources = {
      scanner: { url: scanner.url, token: state.adminToken },
      functions: { url: functions.url, namespace: UP_NAMESPACE, auth: functionsAuth },
    };
    const running: RunningActionApi = await startActionApi({
      ...actionApi,
      host: HOST,
      port: options.port + 2,
      tokens: [
        { token: enforcerToken, name: 'policies of local', role: 'policy', namespaces: [UP_NAMESPACE] },
        // The printed admin token reads and submits actions too.
        { token: state.adminToken, name: 'admin', role: 'admin', namespaces: '*' },
      ],
      logger,
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
        ...(options.baselineLearningMs === undefined
          ? {}
          : { baselines: { learning: { durationMs: options.baselineLearningMs }, client: agentClient } }),
        // One node on loopback: a detection leaves at once rather than after the agent's 250 ms
        // batching window (it still batches while a request is in flight); the window was a third
        // of the reverse shell → quarantine time (bench:runtime).
        runtimeTuning: { forwarder: { batchMs: UP_DETECTION_BATCH_MS } },
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
 * policies and the rules to them — deployed as `containment policy deploy --trigger … --event-type …`
 * deploys to the runtime: the scan policy on scan events, the runtime policy (with runtime
 * detection on; removed otherwise) on runtime detections. The scanner gets one `cloudevents`
 * trigger at the web endpoint (an earlier run's is replaced).
 */
async function deployLoop(
  functionsUrl: string,
  auth: string,
  admin: ScannerClient,
  options: { gracePeriodSeconds: number; dryRun: boolean; runtimePolicy: boolean },
): Promise<void> {
  const { gracePeriodSeconds, dryRun } = options;
  const secret = newWebhookSecret();
  const api = new WhiskClient({ apihost: functionsUrl, auth, namespace: UP_NAMESPACE });
  await installSecurityNotices(api, secret);
  const deployed = new Map((await listPolicies(api)).map((p) => [p.action, p]));
  // A rule an earlier start left on another trigger (before routing by event type: on
  // security-notices) would fire the policy a second time, and for every event type.
  const dropStaleRules = async (action: string, trigger: string): Promise<void> => {
    for (const r of deployed.get(action)?.rules ?? [])
      if (r.trigger !== trigger) {
        if (r.status === 'active') await api.setRuleStatus(r.name, 'inactive');
        await api.delete('rules', r.name);
      }
  };
  // Deployed on every start, so the mode of this start is the one the policies run in; snapshot,
  // grace period and removal all happen while a policy waits.
  const common = { dryRun, timeoutMs: 300_000, params: { gracePeriodSeconds } };
  await dropStaleRules(POLICY_ACTION, SCAN_TRIGGER.name);
  await deployToRuntime(api, readPolicy(REFERENCE_POLICY), {
    ...common,
    name: POLICY_ACTION,
    trigger: SCAN_TRIGGER.name,
    eventTypes: SCAN_TRIGGER.types,
  });
  if (options.runtimePolicy) {
    await dropStaleRules(RUNTIME_POLICY_ACTION, DETECTION_TRIGGER.name);
    await deployToRuntime(api, readPolicy(RUNTIME_POLICY), {
      ...common,
      name: RUNTIME_POLICY_ACTION,
      trigger: DETECTION_TRIGGER.name,
      eventTypes: DETECTION_TRIGGER.types,
    });
  } else if (deployed.has(RUNTIME_POLICY_ACTION)) await removePolicy(api, RUNTIME_POLICY_ACTION);
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
