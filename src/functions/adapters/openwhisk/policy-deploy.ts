/**
 * Deploying a policy file as an OpenWhisk action + trigger + rule, to this project's runtime or to
 * a real Apache OpenWhisk (through any WhiskApi), and listing / removing what was deployed.
 *
 * - runtime: the policy's source is the action (`typescript` or `nodejs:20`); the runtime compiles
 *   it for its sandbox and its own SDK host gives it credentials. The trigger `security-notices` is
 *   installed with its package (and a new secret) when missing.
 * - openwhisk: the action is the policy bundled with the Node SDK (kind `nodejs:20`) inside the
 *   package `containment`, whose default parameter `__containment` holds the scanner / enforcement
 *   URLs and tokens; plus the security-notices trigger and its web action `security-notices/events`.
 * Either way the rule trigger → action is created (or replaced) and left active. The policy is
 * compiled before anything is sent, so a broken policy changes nothing.
 */
import type { WhiskApi } from '../../../clients/whisk-client.js';
import { ContainmentError, ErrorCodes } from '../../../errors.js';
import { isValidName } from '../../entities.js';
import { newWebhookSecret } from '../../../events/signature.js';
import { ENFORCEMENT_SCOPE_ANNOTATION } from '../../host/enforcement-scope.js';
import type { EnforcementScopeMode } from '../../host/enforcement-scope.js';
import { DRY_RUN_ANNOTATION } from '../../host/policy-sdk-host.js';
import { INPUT_THREATS_ANNOTATION } from '../../input-threats.js';
import { PARAMETER_SCHEMA_ANNOTATION } from '../../parameter-schema.js';
import { REQUIRED_ROLES_ANNOTATION, WEB_AUTH_ANNOTATION } from '../../web-auth.js';
import { compilePolicy } from '../../sandbox/compile.js';
import type { JsonObject, JsonValue } from '../../sandbox/sandbox.js';
import {
  EVENT_TYPES_ANNOTATION,
  installSecurityNotices,
  SECRET_ANNOTATION,
  SECURITY_NOTICES,
} from '../../security-notices.js';
import { CONFIG_PARAM } from '../bundled-config.js';
import type { BundledConfig } from '../bundled-config.js';
import { bundlePolicy, policyName } from '../policy-bundle.js';
import type { PolicySource } from '../policy-bundle.js';

/** The package holding policies deployed to OpenWhisk, with the SDK configuration as its default. */
export const OPENWHISK_POLICY_PACKAGE = 'containment';
export const NOTICES_WEB_ACTION = `${SECURITY_NOTICES}/events`;
/** Annotation marking an action as a deployed policy (what `policy list` shows). */
export const POLICY_ANNOTATION = 'containment-policy';

export interface DeployOptions {
  /** Action name (default: the file's base name). */
  name?: string;
  /** Default `security-notices`. */
  trigger?: string;
  /**
   * Runtime only: the CloudEvent types the security-notices endpoint fires `trigger` with (its
   * `event-types` annotation), so the policy sees only those; not with `security-notices` itself.
   */
  eventTypes?: string[];
  dryRun?: boolean;
  /** Default parameters of the action (`--param k=v`). */
  params?: JsonObject;
  /** ms; OpenWhisk's default is 60 s. */
  timeoutMs?: number;
  /** A JSON Schema subset the invocation parameters must match (annotation `parameter-schema`). */
  parameterSchema?: JsonValue;
  /** Which workloads enforcement calls may name: the triggering event's (default) or the namespaces'. */
  enforcementScope?: EnforcementScopeMode;
  /**
   * Runtime only: also a web action (`web-export`) answering only callers with a JWT from the
   * namespace's issuer holding every one of `requiredRoles`.
   */
  webAuth?: 'jwt';
  requiredRoles?: string[];
  /** Runtime only: check web callers' input for attacks (`report` or `block`). */
  inputThreats?: 'report' | 'block';
}

export interface DeployResult {
  action: string;
  trigger: string;
  rule: string;
  dryRun: boolean;
  /** Set when the security-notices package (runtime) or web action (OpenWhisk) was installed now. */
  generatedSecret?: string;
  /** Compiled/bundled code size in bytes. */
  codeBytes: number;
}

function names(file: string, options: DeployOptions): { name: string; trigger: string; rule: string } {
  const name = policyName(file, options.name);
  const trigger = options.trigger ?? SECURITY_NOTICES;
  if (!isValidName(trigger))
    throw new ContainmentError(ErrorCodes.USAGE, `"${trigger}" is not a valid trigger name`);
  return { name, trigger, rule: `${trigger}-${name}` };
}

function keyValues(params: JsonObject = {}): JsonValue {
  return Object.entries(params).map(([key, value]) => ({ key, value }));
}

function policyAnnotations(options: DeployOptions): JsonValue {
  return [
    { key: POLICY_ANNOTATION, value: true },
    { key: ENFORCEMENT_SCOPE_ANNOTATION, value: options.enforcementScope ?? 'event' },
    ...(options.dryRun ? [{ key: DRY_RUN_ANNOTATION, value: true }] : []),
    ...(options.webAuth === undefined
      ? []
      : [
          { key: 'web-export', value: true },
          { key: WEB_AUTH_ANNOTATION, value: options.webAuth },
          ...(options.requiredRoles?.length
            ? [{ key: REQUIRED_ROLES_ANNOTATION, value: options.requiredRoles }]
            : []),
        ]),
    ...(options.inputThreats === undefined
      ? []
      : [{ key: INPUT_THREATS_ANNOTATION, value: options.inputThreats }]),
    ...(options.parameterSchema === undefined
      ? []
      : [{ key: PARAMETER_SCHEMA_ANNOTATION, value: options.parameterSchema }]),
  ];
}

async function ensureTrigger(api: WhiskApi, trigger: string, eventTypes?: string[]): Promise<void> {
  if (eventTypes !== undefined)
    // Replaced: the types of this deployment are the ones the trigger is fired with.
    await api.put('triggers', trigger, { annotations: [{ key: EVENT_TYPES_ANNOTATION, value: eventTypes }] });
  else if ((await api.get('triggers', trigger)) === undefined) await api.put('triggers', trigger, {});
}

async function activeRule(api: WhiskApi, rule: string, trigger: string, action: string): Promise<void> {
  await api.put('rules', rule, { trigger: `/_/${trigger}`, action: `/_/${action}`, status: 'active' });
  // Replacing a rule keeps its old status; a deployment means "on".
  await api.setRuleStatus(rule, 'active');
}

/** Standard Webhooks secrets (`whsec_…`); the scanner's trigger signs with the same one. */
const newSecret = newWebhookSecret;

/** To this project's runtime: the source is the action; the runtime compiles it for its sandbox. */
export async function deployToRuntime(
  api: WhiskApi,
  source: PolicySource,
  options: DeployOptions = {},
): Promise<DeployResult> {
  const { name, trigger, rule } = names(source.filename, options);
  if (options.eventTypes !== undefined && (trigger === SECURITY_NOTICES || options.eventTypes.length === 0))
    throw new ContainmentError(
      ErrorCodes.USAGE,
      `event types need a trigger of their own (not ${SECURITY_NOTICES}, which gets every event) and at least one type`,
    );
  const { code } = await compilePolicy(source.contents, { filename: source.filename, loader: source.loader });
  await api.put('actions', name, {
    exec: { kind: source.loader === 'ts' ? 'typescript' : 'nodejs:20', code: source.contents },
    parameters: keyValues(options.params),
    annotations: policyAnnotations(options),
    ...(options.timeoutMs === undefined ? {} : { limits: { timeout: options.timeoutMs } }),
  });
  let generatedSecret: string | undefined;
  if (trigger === SECURITY_NOTICES && (await api.get('packages', SECURITY_NOTICES)) === undefined) {
    generatedSecret = newSecret();
    await installSecurityNotices(api, generatedSecret);
  } else await ensureTrigger(api, trigger, options.eventTypes);
  await activeRule(api, rule, trigger, name);
  return {
    action: name,
    trigger,
    rule,
    dryRun: options.dryRun === true,
    codeBytes: Buffer.byteLength(code),
    ...(generatedSecret === undefined ? {} : { generatedSecret }),
  };
}

export interface OpenWhiskDeployOptions extends DeployOptions {
  /** Scanner and enforcement API access for the bundled SDK. */
  sdk: Omit<BundledConfig, 'dryRun'>;
  /** The web action's `require-whisk-auth` secret; default: keep the installed one, else generate. */
  secret?: string;
}

/** To a real Apache OpenWhisk: the policy bundled with its SDK, the web action, trigger and rule. */
export async function deployToOpenWhisk(
  api: WhiskApi,
  source: PolicySource,
  options: OpenWhiskDeployOptions,
): Promise<DeployResult> {
  const { name, trigger, rule } = names(source.filename, options);
  if (options.webAuth !== undefined || options.inputThreats !== undefined)
    // Apache OpenWhisk knows neither annotation: deploying would leave the action unprotected.
    throw new ContainmentError(
      ErrorCodes.USAGE,
      "web-action JWT auth and input-threat checks are enforced by this project's runtime only (--target runtime)",
    );
  if (options.eventTypes !== undefined)
    // The bundled notices web action fires security-notices only: the policy would never run.
    throw new ContainmentError(
      ErrorCodes.USAGE,
      "routing by event type is done by this project's runtime only (--target runtime)",
    );
  const action = `${OPENWHISK_POLICY_PACKAGE}/${name}`;
  const code = await bundlePolicy('openwhisk', source, name, options.enforcementScope ?? 'event');
  const notices =
    trigger === SECURITY_NOTICES
      ? await bundlePolicy('openwhisk-notices', undefined, NOTICES_WEB_ACTION)
      : undefined;
  const config: BundledConfig = { ...options.sdk, dryRun: options.dryRun === true };
  await api.put('packages', OPENWHISK_POLICY_PACKAGE, {
    parameters: [{ key: CONFIG_PARAM, value: config as unknown as JsonValue }],
    annotations: [{ key: 'description', value: 'Containment policies and their SDK configuration' }],
  });
  await api.put('actions', action, {
    exec: { kind: 'nodejs:20', code, binary: false },
    parameters: keyValues(options.params),
    annotations: policyAnnotations(options),
    // One activation per container at a time: the bundled SDK keeps the running one in module state.
    limits: { concurrency: 1, ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }) },
  });
  let generatedSecret: string | undefined;
  if (notices !== undefined) {
    const existing = await api.get('actions', NOTICES_WEB_ACTION);
    const installed = (existing?.annotations as { key: string; value: JsonValue }[] | undefined)?.find(
      (a) => a.key === SECRET_ANNOTATION,
    )?.value;
    const secret =
      options.secret ??
      (typeof installed === 'string' && installed !== '' ? installed : (generatedSecret = newSecret()));
    const description = {
      key: 'description',
      value: 'Signed (Standard Webhooks) structured CloudEvents in, trigger security-notices fired',
    };
    if ((await api.get('packages', SECURITY_NOTICES)) === undefined)
      await api.put('packages', SECURITY_NOTICES, { annotations: [description] });
    await api.put('actions', NOTICES_WEB_ACTION, {
      exec: { kind: 'nodejs:20', code: notices, binary: false },
      // The entry verifies Standard Webhooks with it; `final` keeps a request from overriding it.
      parameters: [{ key: 'webhookSecret', value: secret }],
      annotations: [
        { key: 'web-export', value: true },
        { key: 'raw-http', value: true },
        { key: 'final', value: true },
        { key: SECRET_ANNOTATION, value: secret },
        // Newer OpenWhisk passes the API key (to fire the trigger) only when asked.
        { key: 'provide-api-key', value: true },
        description,
      ],
      limits: { timeout: 60_000 },
    });
  }
  await ensureTrigger(api, trigger);
  await activeRule(api, rule, trigger, action);
  return {
    action,
    trigger,
    rule,
    dryRun: options.dryRun === true,
    codeBytes: Buffer.byteLength(code),
    ...(generatedSecret === undefined ? {} : { generatedSecret }),
  };
}

export interface DeployedPolicy {
  action: string;
  version: string;
  dryRun: boolean;
  rules: { name: string; trigger: string; status: string }[];
}

function actionPath(doc: JsonObject): string {
  // OpenWhisk lists an action in a package with namespace `ns/pkg`.
  const ns = String(doc.namespace ?? '');
  const slash = ns.indexOf('/');
  return slash < 0 ? String(doc.name) : `${ns.slice(slash + 1)}/${String(doc.name)}`;
}

const annotationOf = (doc: JsonObject, key: string): JsonValue | undefined =>
  (doc.annotations as { key: string; value: JsonValue }[] | undefined)?.find((a) => a.key === key)?.value;

/** The deployed policies (actions annotated as such) with the rules that fire them. */
export async function listPolicies(api: WhiskApi): Promise<DeployedPolicy[]> {
  const [actions, rules] = await Promise.all([api.list('actions'), api.list('rules')]);
  const ruleDocs = await Promise.all(rules.map((r) => api.get('rules', String(r.name))));
  return actions
    .filter((a) => annotationOf(a, POLICY_ANNOTATION) === true)
    .map((a) => {
      const path = actionPath(a);
      return {
        action: path,
        version: String(a.version ?? ''),
        dryRun: annotationOf(a, DRY_RUN_ANNOTATION) === true,
        rules: ruleDocs
          .filter((r): r is JsonObject => r !== undefined)
          .filter((r) => {
            const ref = r.action as { name?: string; path?: string } | undefined;
            const pathParts = String(ref?.path ?? '').split('/');
            const full =
              pathParts.length > 1 ? `${pathParts.slice(1).join('/')}/${ref?.name}` : String(ref?.name);
            return full === path;
          })
          .map((r) => ({
            name: String(r.name),
            trigger: String((r.trigger as { name?: string } | undefined)?.name ?? ''),
            status: String(r.status ?? ''),
          })),
      };
    })
    .sort((x, y) => x.action.localeCompare(y.action));
}

/** Deletes a deployed policy's rules, then its action. The trigger and packages stay (others may use them). */
export async function removePolicy(
  api: WhiskApi,
  action: string,
): Promise<{ action: string; rules: string[] }> {
  const found = (await listPolicies(api)).find(
    (p) => p.action === action || p.action === `${OPENWHISK_POLICY_PACKAGE}/${action}`,
  );
  if (found === undefined)
    throw new ContainmentError(ErrorCodes.TARGET_NOT_FOUND, `no deployed policy named "${action}"`);
  for (const r of found.rules) {
    // Older OpenWhisk refuses to delete an active rule.
    if (r.status === 'active') await api.setRuleStatus(r.name, 'inactive');
    await api.delete('rules', r.name);
  }
  await api.delete('actions', found.action);
  return { action: found.action, rules: found.rules.map((r) => r.name) };
}
