/**
 * The function runtime's semantics, independent of HTTP: OpenWhisk's entity rules (create/update with
 * overwrite, packages holding actions, rules joining a trigger to an action), invocation in the sandbox
 * with parameter precedence package → action → invoke-time, activation records, and trigger fires that
 * start one activation per active rule. Every error a caller can cause is a `WhiskError` with the HTTP
 * status and message OpenWhisk would give.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ContainmentError, ErrorCodes } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import {
  DEFAULT_ACTION_LIMITS,
  STATUS_CODES,
  actionPutSchema,
  annotationsOf,
  isValidName,
  packagePutSchema,
  resolveLimits,
  rulePutSchema,
  sandboxLimits,
  splitPath,
  toObject,
  triggerPutSchema,
} from './entities.js';
import type {
  Activation,
  ActionDoc,
  Collection,
  KeyValue,
  PackageDoc,
  RuleDoc,
  RuleStatus,
  StoredAction,
  TriggerDoc,
} from './entities.js';
import { checkParameters, PARAMETER_SCHEMA_ANNOTATION, parseParameterSchema } from './parameter-schema.js';
import type { ParameterSchema } from './parameter-schema.js';
import { ApiError } from '../clients/http.js';
import { ENFORCEMENT_SCOPE_ANNOTATION, enforcementScopeOf } from './host/enforcement-scope.js';
import type { PolicyHost } from './host/policy-host.js';
import { noPolicyHost } from './host/policy-host.js';
import { compilePolicy } from './sandbox/compile.js';
import { firstLine, toJsonText } from './sandbox/json.js';
import { PAYLOAD_LIMIT_BYTES } from './sandbox/sandbox.js';
import type { InvokeResult, JsonObject, JsonValue, Sandbox } from './sandbox/sandbox.js';
import { securityAnnotationProblem } from './security-annotations.js';
import type { SecurityEventLog } from './security-events.js';
import type { FunctionStore } from './store.js';

/** OpenWhisk's caps on how long a blocking invocation holds the request (WhiskActionsApi). */
export const MAX_BLOCKING_WAIT_MS = 60_000;
/** Slack past the action's own timeout, so a timed-out action still answers a blocking call. */
const BLOCKING_GRACE_MS = 1_000;

export const WhiskMessages = {
  notFound: 'The requested resource does not exist.',
  doesntExist: (what: string) => `The requested resource '${what}' does not exist.`,
  exists: 'resource already exists',
  forbidden: 'The supplied authentication is not authorized to access this resource.',
  unauthorized: 'The supplied authentication is invalid',
  malformed: (why: string) => `The request content was malformed:\n${why}`,
  badName: 'The name of the entity contains illegal characters.',
  tooLarge: (size: number, max: number) => `request larger than allowed: ${size} > ${max} bytes.`,
} as const;

export class WhiskError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    /** A stable Containment error code (ErrorCodes), sent as `errorCode` beside OpenWhisk's fields. */
    readonly errorCode?: ErrorCode,
  ) {
    super(message);
  }
}

export interface FunctionRuntimeOptions {
  store: FunctionStore;
  sandbox: Sandbox;
  logger: Logger;
  /** Where policies' SDK calls go; by default every call fails. */
  host?: PolicyHost;
  /** Where refused input and sandbox violations are recorded. */
  securityEvents?: SecurityEventLog;
}

/** Outcome of an invocation request: the record when it finished within the wait, else only the id. */
export interface InvokeOutcome {
  activationId: string;
  activation?: Activation;
}

const NODE_KIND = /^nodejs(?::\w+)?$/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

export function newActivationId(): string {
  return randomBytes(16).toString('hex');
}

export class FunctionRuntime {
  private readonly store: FunctionStore;
  private readonly sandbox: Sandbox;
  private readonly logger: Logger;
  private readonly host: PolicyHost;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly securityEvents: SecurityEventLog | undefined;

  constructor(options: FunctionRuntimeOptions) {
    this.securityEvents = options.securityEvents;
    this.store = options.store;
    this.sandbox = options.sandbox;
    this.logger = options.logger;
    this.host = options.host ?? noPolicyHost;
  }

  /** Ends the sandbox (running invocations end as internal errors and are recorded), then waits for them. */
  async close(): Promise<void> {
    await this.sandbox.close();
    await Promise.allSettled([...this.inflight]);
  }

  // ---- entities ----

  get<T>(ns: string, collection: Collection, name: string): T {
    const doc = this.store.getEntity<T>(ns, collection, name);
    if (doc === undefined) throw new WhiskError(404, WhiskMessages.notFound);
    return doc;
  }

  getAction(ns: string, path: string): StoredAction {
    return this.get<StoredAction>(ns, 'actions', path);
  }

  list<T>(ns: string, collection: Collection, skip: number, limit: number): T[] {
    return this.store.listEntities<T>(ns, collection, { skip, limit });
  }

  async putAction(ns: string, path: string, body: unknown, overwrite: boolean): Promise<ActionDoc> {
    const { pkg, name } = splitPath(path);
    checkNames(pkg, name);
    const put = parseBody(actionPutSchema, body);
    if (pkg !== undefined && this.store.getEntity(ns, 'packages', pkg) === undefined) {
      throw new WhiskError(404, WhiskMessages.doesntExist(`${ns}/${pkg}`));
    }
    const old = this.existing<StoredAction>(ns, 'actions', path, overwrite);
    const limits = resolveLimits(put.limits, old?.doc.limits ?? DEFAULT_ACTION_LIMITS);
    if ('error' in limits)
      throw new WhiskError(400, WhiskMessages.malformed(`requirement failed: ${limits.error}`));

    let exec = old?.doc.exec;
    let compiled = old?.compiled;
    if (put.exec !== undefined) {
      const e = put.exec;
      if (e.kind === 'sequence' || e.components !== undefined)
        throw new WhiskError(400, 'sequence actions are not supported by this runtime');
      if (!NODE_KIND.test(e.kind) && e.kind !== 'typescript')
        throw new WhiskError(
          400,
          `kind '${e.kind}' is not supported; use nodejs:20, nodejs:default or typescript`,
        );
      if (e.binary === true)
        throw new WhiskError(400, 'binary (zip) actions are not supported; send the source');
      if (e.code === undefined || e.code.trim() === '') throw new WhiskError(400, 'exec.code is required');
      if (e.main !== undefined && !IDENTIFIER.test(e.main))
        throw new WhiskError(400, `exec.main must be a function name, got '${e.main}'`);
      compiled = await compileAction(e.code, e.kind, e.main, name);
      exec = { kind: e.kind, code: e.code, binary: false, ...(e.main === undefined ? {} : { main: e.main }) };
    }
    if (exec === undefined || compiled === undefined) throw new WhiskError(400, 'exec undefined');
    const annotations = put.annotations ?? old?.doc.annotations ?? [];
    const annotationProblem = securityAnnotationProblem(annotations);
    if (annotationProblem !== undefined)
      throw new WhiskError(400, WhiskMessages.malformed(annotationProblem), ErrorCodes.CONFIG_INVALID);
    const schema = annotations.find((a) => a.key === PARAMETER_SCHEMA_ANNOTATION);
    if (schema !== undefined) {
      const parsed = parseParameterSchema(schema.value);
      if ('error' in parsed)
        throw new WhiskError(400, WhiskMessages.malformed(parsed.error), ErrorCodes.CONFIG_INVALID);
    }
    const doc: ActionDoc = {
      namespace: pkg === undefined ? ns : `${ns}/${pkg}`,
      name,
      version: put.version ?? nextVersion(old?.doc.version),
      publish: put.publish ?? old?.doc.publish ?? false,
      exec,
      parameters: put.parameters ?? old?.doc.parameters ?? [],
      annotations: withExecAnnotation(annotations, exec.kind),
      limits,
      updated: Date.now(),
    };
    this.store.putEntity(ns, 'actions', path, { doc, compiled } satisfies StoredAction, doc.updated);
    return doc;
  }

  putPackage(ns: string, name: string, body: unknown, overwrite: boolean): PackageDoc {
    checkNames(undefined, name);
    const put = parseBody(packagePutSchema, body);
    if (put.binding !== undefined && Object.keys(put.binding).length > 0)
      throw new WhiskError(400, 'package bindings are not supported by this runtime');
    const old = this.existing<PackageDoc>(ns, 'packages', name, overwrite);
    const annotationProblem = securityAnnotationProblem(put.annotations ?? []);
    if (annotationProblem !== undefined)
      throw new WhiskError(400, WhiskMessages.malformed(annotationProblem), ErrorCodes.CONFIG_INVALID);
    const doc: PackageDoc = {
      namespace: ns,
      name,
      version: put.version ?? nextVersion(old?.version),
      publish: put.publish ?? old?.publish ?? false,
      parameters: put.parameters ?? old?.parameters ?? [],
      annotations: put.annotations ?? old?.annotations ?? [],
      binding: {},
      updated: Date.now(),
    };
    this.store.putEntity(ns, 'packages', name, doc, doc.updated);
    return doc;
  }

  /** A package with the actions it holds, as OpenWhisk's GET shows it. */
  getPackage(ns: string, name: string): PackageDoc & { actions: JsonValue[] } {
    const doc = this.get<PackageDoc>(ns, 'packages', name);
    const actions = this.store
      .listEntities<StoredAction>(ns, 'actions', { prefix: `${name}/` })
      .map(({ doc: a }) => ({
        name: a.name,
        version: a.version,
        annotations: a.annotations as unknown as JsonValue,
      }));
    return { ...doc, actions };
  }

  deletePackage(ns: string, name: string): PackageDoc {
    const doc = this.get<PackageDoc>(ns, 'packages', name);
    const held = this.store.listEntities(ns, 'actions', { prefix: `${name}/` }).length;
    if (held > 0)
      throw new WhiskError(409, `Package not empty (contains ${held} ${held === 1 ? 'entity' : 'entities'})`);
    this.store.deleteEntity(ns, 'packages', name);
    return doc;
  }

  putTrigger(ns: string, name: string, body: unknown, overwrite: boolean): TriggerDoc {
    checkNames(undefined, name);
    const put = parseBody(triggerPutSchema, body);
    const old = this.existing<TriggerDoc>(ns, 'triggers', name, overwrite);
    const doc: TriggerDoc = {
      namespace: ns,
      name,
      version: put.version ?? nextVersion(old?.version),
      publish: put.publish ?? old?.publish ?? false,
      parameters: put.parameters ?? old?.parameters ?? [],
      annotations: put.annotations ?? old?.annotations ?? [],
      limits: {},
      updated: Date.now(),
    };
    this.store.putEntity(ns, 'triggers', name, doc, doc.updated);
    return doc;
  }

  /** A trigger with its rules (`{ "ns/rule": { action, status } }`), as OpenWhisk's GET shows it. */
  getTrigger(ns: string, name: string): TriggerDoc & { rules: Record<string, JsonValue> } {
    const doc = this.get<TriggerDoc>(ns, 'triggers', name);
    const rules: Record<string, JsonValue> = {};
    for (const r of this.rulesOf(ns, name)) rules[`${ns}/${r.name}`] = { action: r.action, status: r.status };
    return { ...doc, rules };
  }

  putRule(ns: string, name: string, body: unknown, overwrite: boolean): RuleDoc {
    checkNames(undefined, name);
    const put = parseBody(rulePutSchema, body);
    const old = this.existing<RuleDoc>(ns, 'rules', name, overwrite);
    const triggerRef = put.trigger ?? (old ? `/${old.trigger.path}/${old.trigger.name}` : undefined);
    const actionRef = put.action ?? (old ? `/${old.action.path}/${old.action.name}` : undefined);
    if (triggerRef === undefined || actionRef === undefined)
      throw new WhiskError(400, WhiskMessages.malformed('a rule needs a trigger and an action'));
    const trigger = this.resolveRef(ns, triggerRef);
    const action = this.resolveRef(ns, actionRef);
    if (this.store.getEntity(ns, 'triggers', trigger.path) === undefined)
      throw new WhiskError(404, WhiskMessages.doesntExist(`${ns}/${trigger.path}`));
    if (this.store.getEntity(ns, 'actions', action.path) === undefined)
      throw new WhiskError(404, WhiskMessages.doesntExist(`${ns}/${action.path}`));
    const actionParts = splitPath(action.path);
    const doc: RuleDoc = {
      namespace: ns,
      name,
      version: put.version ?? nextVersion(old?.version),
      publish: put.publish ?? old?.publish ?? false,
      annotations: put.annotations ?? old?.annotations ?? [],
      status: old?.status ?? put.status ?? 'active',
      trigger: { name: trigger.path, path: ns },
      action: {
        name: actionParts.name,
        path: actionParts.pkg === undefined ? ns : `${ns}/${actionParts.pkg}`,
      },
      updated: Date.now(),
    };
    this.store.putEntity(ns, 'rules', name, doc, doc.updated);
    return doc;
  }

  setRuleStatus(ns: string, name: string, status: RuleStatus): RuleDoc {
    const doc = { ...this.get<RuleDoc>(ns, 'rules', name), status };
    this.store.putEntity(ns, 'rules', name, doc, doc.updated);
    return doc;
  }

  delete<T>(ns: string, collection: Collection, name: string): T {
    const doc = this.get<T>(ns, collection, name);
    this.store.deleteEntity(ns, collection, name);
    return doc;
  }

  private existing<T>(ns: string, collection: Collection, name: string, overwrite: boolean): T | undefined {
    const old = this.store.getEntity<T>(ns, collection, name);
    if (old !== undefined && !overwrite) throw new WhiskError(409, WhiskMessages.exists);
    return old;
  }

  /** `name`, `pkg/name`, `/ns/name` or `/ns/pkg/name` (ns may be `_`) → a path in `ns`. */
  private resolveRef(ns: string, ref: string): { path: string } {
    let path = ref;
    if (ref.startsWith('/')) {
      const [, refNs, ...rest] = ref.split('/');
      if (refNs !== '_' && refNs !== ns) throw new WhiskError(403, WhiskMessages.forbidden);
      path = rest.join('/');
    }
    const { pkg, name } = splitPath(path);
    checkNames(pkg, name);
    return { path };
  }

  private rulesOf(ns: string, trigger: string): RuleDoc[] {
    return this.store
      .listEntities<RuleDoc>(ns, 'rules')
      .filter((r) => r.trigger.path === ns && r.trigger.name === trigger);
  }

  // ---- invocation ----

  /**
   * Invokes `ns/path`. Blocking waits for the record at most min(waitMs, action timeout + grace);
   * otherwise (or past that) only the activation id comes back and the record is stored when done.
   */
  async invoke(
    ns: string,
    path: string,
    payload: JsonObject,
    options: {
      blocking: boolean;
      waitMs?: number;
      source?: string;
      /** The payload came from an anonymous caller (a web action): it cannot name the triggering event. */
      untrusted?: boolean;
    },
  ): Promise<InvokeOutcome> {
    const stored = this.getAction(ns, path);
    const { activationId, done } = this.start(
      ns,
      path,
      stored,
      payload,
      undefined,
      options.source,
      options.untrusted === true,
    );
    if (!options.blocking) return { activationId };
    const waitMs = Math.min(
      options.waitMs ?? MAX_BLOCKING_WAIT_MS,
      stored.doc.limits.timeout + BLOCKING_GRACE_MS,
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    const activation = await Promise.race([done, timedOut]);
    clearTimeout(timer);
    return activation ? { activationId, activation } : { activationId };
  }

  /**
   * Fires a trigger: with no active rule, nothing happens and undefined comes back (HTTP 204);
   * otherwise each active rule's action starts, and the trigger's own activation (logs: one JSON
   * string per rule) is recorded and its id returned.
   */
  fire(ns: string, name: string, payload: JsonObject): string | undefined {
    const trigger = this.get<TriggerDoc>(ns, 'triggers', name);
    const active = this.rulesOf(ns, name).filter((r) => r.status === 'active');
    if (active.length === 0) return undefined;
    const params = { ...toObject(trigger.parameters), ...payload };
    checkPayload(params);
    const activationId = newActivationId();
    const start = Date.now();
    const logs = active.map((rule) => {
      const actionPath =
        rule.action.path === ns
          ? rule.action.name
          : `${rule.action.path.slice(ns.length + 1)}/${rule.action.name}`;
      const entry = { rule: `${ns}/${rule.name}`, action: `${ns}/${actionPath}` };
      try {
        const started = this.start(
          ns,
          actionPath,
          this.getAction(ns, actionPath),
          params,
          activationId,
          `trigger ${name}`,
        );
        return JSON.stringify({ statusCode: 0, success: true, activationId: started.activationId, ...entry });
      } catch (e) {
        const error =
          e instanceof WhiskError && e.statusCode === 404
            ? 'The requested resource does not exist.'
            : firstLine(e);
        return JSON.stringify({ statusCode: 1, success: false, error, ...entry });
      }
    });
    const end = Date.now();
    this.store.insertActivation(name, {
      namespace: ns,
      name,
      subject: ns,
      activationId,
      start,
      end,
      duration: end - start,
      response: { status: 'success', statusCode: 0, success: true, result: params },
      logs,
      annotations: [{ key: 'path', value: `${ns}/${name}` }],
      version: trigger.version,
      publish: false,
    });
    return activationId;
  }

  // Over 120 lines: one activation in order (parameters, checks, the sandbox run and callbacks, the record).
  /** Starts an activation in the sandbox; its record is stored when it ends, whatever the outcome. */
  private start(
    ns: string,
    path: string,
    stored: StoredAction,
    payload: JsonObject,
    cause?: string,
    source = 'api',
    untrusted = false,
  ): { activationId: string; done: Promise<Activation> } {
    const { doc } = stored;
    const { pkg } = splitPath(path);
    const pkgDoc = pkg === undefined ? undefined : this.store.getEntity<PackageDoc>(ns, 'packages', pkg);
    const params = { ...toObject(pkgDoc?.parameters ?? []), ...toObject(doc.parameters), ...payload };
    checkPayload(params);
    const endpoint = `actions/${path}`;
    const annotations = annotationsOf(pkgDoc?.annotations ?? [], doc.annotations);
    const schema = annotations[PARAMETER_SCHEMA_ANNOTATION];
    if (schema !== undefined) {
      // Checked when the action was stored, so a parse failure here means a hand-edited store.
      const parsed = parseParameterSchema(schema);
      const bad = 'error' in parsed ? parsed.error : checkParameters(parsed as ParameterSchema, params);
      if (bad !== undefined) {
        this.securityEvents?.record({ namespace: ns, kind: 'invalid-input', endpoint, source, reason: bad });
        throw new WhiskError(
          400,
          `The request content was malformed: parameters do not match the action's ${PARAMETER_SCHEMA_ANNOTATION}: ${bad}`,
          ErrorCodes.POLICY_PARAMS_INVALID,
        );
      }
    }
    const activationId = newActivationId();
    const start = Date.now();
    // Fixed before the policy runs: which workloads its enforcement calls may name.
    const scope = enforcementScopeOf(annotations[ENFORCEMENT_SCOPE_ANNOTATION], params, !untrusted);
    const violation = (
      reason: string,
      kind: 'sandbox-violation' | 'scope-denied' = 'sandbox-violation',
    ): void =>
      this.securityEvents?.record({
        namespace: ns,
        kind,
        endpoint,
        source: `activation ${activationId}`,
        reason,
      });
    const run = this.sandbox
      .invoke({
        actionKey: `${ns}/${path}@${doc.version}`,
        code: stored.compiled,
        params,
        limits: sandboxLimits(doc.limits),
        sdk: (method, args) =>
          this.host
            .invokeSdk(ns, path, method, args, { activationId, annotations, scope })
            .catch((e: unknown) => {
              // A policy reaching for a pod outside its namespaces is an attempt to leave its sandbox.
              if ((e instanceof ContainmentError || e instanceof ApiError) && e.code === ErrorCodes.FORBIDDEN)
                violation(e.message);
              if (e instanceof ContainmentError && e.code === ErrorCodes.SCOPE_DENIED) {
                violation(e.message, 'scope-denied');
                // The guest sees only the message: it carries the stable code first.
                throw new Error(`${e.code}: ${e.message}`);
              }
              throw e;
            }),
      })
      .catch((e: unknown): InvokeResult => {
        const message = firstLine(e);
        return {
          status: 'whisk internal error',
          result: { error: message },
          error: message,
          logs: [],
          durationMs: 0,
          coldStart: false,
        };
      })
      .then((r) => {
        const end = Date.now();
        const timedOut =
          r.status === 'action developer error' && /exceeded its time limits/.test(r.error ?? '');
        if (
          r.status === 'action developer error' &&
          /exhausted its memory|stack overflow/i.test(r.error ?? '')
        )
          violation(r.error ?? r.status);
        const activation: Activation = {
          namespace: ns,
          name: doc.name,
          subject: ns,
          activationId,
          start,
          end,
          duration: end - start,
          response: {
            status: r.status,
            statusCode: STATUS_CODES[r.status],
            success: r.status === 'success',
            result: r.result ?? { error: r.error ?? r.status },
          },
          logs: r.logs,
          annotations: [
            { key: 'path', value: `${ns}/${path}` },
            { key: 'kind', value: doc.exec.kind },
            { key: 'limits', value: doc.limits as unknown as JsonValue },
            { key: 'waitTime', value: 0 },
            ...(r.coldStart ? [{ key: 'initTime', value: Math.round(r.durationMs) }] : []),
            ...(timedOut ? [{ key: 'timeout', value: true }] : []),
          ] satisfies KeyValue[],
          version: doc.version,
          publish: false,
          ...(cause === undefined ? {} : { cause }),
        };
        this.store.insertActivation(path, activation);
        this.logger.info(
          { activationId, namespace: ns, action: path, status: r.status, durationMs: activation.duration },
          'activation',
        );
        return activation;
      });
    const done = run.catch((e: unknown) => {
      // Storing failed (disk, closed store): keep the process alive and say so.
      this.logger.error({ activationId, err: e }, 'could not record activation');
      throw e;
    });
    const tracked = done.catch(() => undefined);
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
    return { activationId, done };
  }
}

function checkNames(pkg: string | undefined, name: string): void {
  if ((pkg !== undefined && !isValidName(pkg)) || !isValidName(name))
    throw new WhiskError(400, WhiskMessages.badName);
}

function parseBody<T>(
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: T }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  body: unknown,
): T {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  throw new WhiskError(400, WhiskMessages.malformed(`${where}${issue?.message ?? 'invalid body'}`));
}

function checkPayload(params: JsonObject): void {
  try {
    toJsonText(params, PAYLOAD_LIMIT_BYTES);
  } catch (e) {
    throw new WhiskError(413, `The request content was malformed: parameters ${firstLine(e)}`);
  }
}

/** OpenWhisk bumps the patch version on every update. */
function nextVersion(old: string | undefined): string {
  if (old === undefined) return '0.0.1';
  const [major = '0', minor = '0', patch = '0'] = old.split('.');
  return `${major}.${minor}.${Number(patch) + 1}`;
}

function withExecAnnotation(annotations: KeyValue[], kind: string): KeyValue[] {
  return [
    ...annotations.filter((a) => a.key !== 'exec'),
    { key: 'exec', value: kind.startsWith('nodejs') ? 'nodejs' : kind },
  ];
}

/**
 * Compiles action source. OpenWhisk's Node.js runtime calls a global function (`main`, or `exec.main`)
 * rather than an export, so a script that declares one without exporting it gets the export added.
 */
async function compileAction(
  code: string,
  kind: string,
  main: string | undefined,
  name: string,
): Promise<string> {
  const loader = kind === 'typescript' ? 'ts' : 'js';
  const filename = `${name}.${loader}`;
  const entry = main ?? 'main';
  try {
    if (entry !== 'main')
      return (await compilePolicy(`${code}\nexport { ${entry} as main };`, { filename, loader })).code;
    return (await compilePolicy(code, { filename, loader })).code;
  } catch (first) {
    if (!(first instanceof ContainmentError) || first.code !== ErrorCodes.POLICY_COMPILE_FAILED) throw first;
    if (entry === 'main' && /must export/.test(first.message)) {
      try {
        return (await compilePolicy(`${code}\nexport { main };`, { filename, loader })).code;
      } catch {
        // fall through to the original, clearer message
      }
    }
    throw new WhiskError(400, first.message);
  }
}
