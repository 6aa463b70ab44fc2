/**
 * The policy SDK's host side (the PolicyHost the function runtime calls for every SDK call a
 * policy makes). Each function namespace has its own credentials — a scanner token and an
 * enforcer token scoped to its namespaces — and every call goes out with those, so the scanner
 * and the action API enforce the boundary; the host also refuses early any pod outside the
 * activation's namespace and the namespaces its credentials list.
 *
 * Enforcement calls create SecurityActions named from (activation, method, target), so a retried
 * activation creates nothing new; under a dry-run annotation they are created with `dryRun: true`
 * and the enforcer only records what it would have done.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { DEFAULT_GRACE_PERIOD_SECONDS } from '../../enforcement/security-action.js';
import type { ActionKind, SecurityAction, SecurityActionInput } from '../../enforcement/security-action.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { PolicyCallContext, PolicyHost } from '../policy-host.js';
import type { JsonValue } from '../sandbox/sandbox.js';
import type { SdkMethod } from '../sandbox/sdk-methods.js';
import { HttpEnforcementClient } from './enforcement-client.js';
import type { EnforcementClient } from './enforcement-client.js';
import { HttpFindingsClient } from './findings-client.js';
import type { FindingsClient } from './findings-client.js';
import { AuditNotifier } from './notifier.js';
import type { Notifier } from './notifier.js';
import { parseSdkArgs, podLabel } from './pod-ref.js';
import type { PodRef } from './pod-ref.js';
import {
  actionNameKey,
  ENFORCEMENT_KINDS,
  enforcementArgs,
  findingsArgs,
  gracefulArgs,
  labelArgs,
  notifyArgs,
} from './sdk-args.js';
import type { gracefulOptions } from './sdk-args.js';

/** The annotation (on the action, its package or the rule) that turns enforcement into a dry run. */
export const DRY_RUN_ANNOTATION = 'containment-dry-run';

/** What one function namespace's policies may use. */
export interface NamespaceCredentials {
  /** The cluster the namespace's pods are in (`local` in single-machine mode). */
  cluster: string;
  /** Bearer token for the scanner's findings API (role `policy`, scoped to the namespaces). */
  scannerToken: string;
  /** Bearer token for the enforcer's action API (role `policy`, same scope). */
  enforcerToken: string;
  /** Pod namespaces the policies may act on besides the function namespace's own name. */
  namespaces?: readonly string[];
}

export interface PolicySdkHostOptions {
  /** Function namespace → its credentials; a namespace without any can make no SDK call but `notify`. */
  credentials: (namespace: string) => NamespaceCredentials | undefined;
  /** Findings client for one namespace's credentials (e.g. `httpFindings(scannerUrl)`). */
  findings: (credentials: NamespaceCredentials) => FindingsClient;
  /** Enforcement client for one namespace's credentials (e.g. `httpEnforcement(actionApiUrl)`). */
  enforcement: (credentials: NamespaceCredentials) => EnforcementClient;
  /** Default: an AuditNotifier (structured log + the latest notifications in memory). */
  notifier?: Notifier;
  now?: () => Date;
}

/** What an enforcement call returns to the policy. */
export interface EnforcementResult {
  name: string;
  action: ActionKind;
  target: SecurityAction['spec']['target'];
  dryRun: boolean;
  status: SecurityAction['status'] | null;
}

export const httpFindings =
  (scannerUrl: string) =>
  (credentials: NamespaceCredentials): FindingsClient =>
    new HttpFindingsClient({ url: scannerUrl, token: credentials.scannerToken });

export const httpEnforcement =
  (actionApiUrl: string) =>
  (credentials: NamespaceCredentials): EnforcementClient =>
    new HttpEnforcementClient({ url: actionApiUrl, token: credentials.enforcerToken });

interface Call {
  namespace: string;
  action: string;
  method: SdkMethod;
  context: PolicyCallContext;
}

export class PolicySdkHost implements PolicyHost {
  private readonly notifier: Notifier;
  private readonly now: () => Date;

  constructor(private readonly options: PolicySdkHostOptions) {
    this.notifier = options.notifier ?? new AuditNotifier();
    this.now = options.now ?? (() => new Date());
  }

  async invokeSdk(
    namespace: string,
    action: string,
    method: string,
    args: JsonValue[],
    context: PolicyCallContext,
  ): Promise<JsonValue> {
    const call: Call = { namespace, action, method: method as SdkMethod, context };
    switch (call.method) {
      case 'vs.getFindings': {
        const [pod, at] = parseSdkArgs(method, findingsArgs, args);
        const credentials = this.allow(call, pod);
        const found = await this.options.findings(credentials).get({
          cluster: credentials.cluster,
          namespace: pod.namespace,
          pod: pod.name,
          ...(pod.container === undefined ? {} : { container: pod.container }),
          ...(at === undefined || at === null ? {} : { at }),
        });
        return found as JsonValue;
      }
      case 'kubernetes.snapshot':
      case 'kubernetes.terminate':
      case 'kubernetes.quarantine':
      case 'kubernetes.release':
      case 'kubernetes.terminateGraceful': {
        const [pod, opts = {}] = parseSdkArgs(
          method,
          call.method === 'kubernetes.terminateGraceful' ? gracefulArgs : enforcementArgs,
          args,
        );
        const kind = ENFORCEMENT_KINDS[call.method] as ActionKind;
        // An interface has no index signature, so TypeScript cannot see that it is JSON.
        return (await this.enforce(call, kind, pod, opts)) as unknown as JsonValue;
      }
      case 'kubernetes.label': {
        const [pod, labels] = parseSdkArgs(method, labelArgs, args);
        return (await this.label(call, pod, labels)) as unknown as JsonValue;
      }
      case 'notify': {
        const [channel, message] = parseSdkArgs(method, notifyArgs, args);
        await this.notifier.notify({
          channel,
          message: message as JsonValue,
          namespace,
          action,
          activationId: context.activationId,
          dryRun: isDryRun(context),
          at: this.now().toISOString(),
        });
        return { delivered: true, channel };
      }
      default:
        throw new ContainmentError(
          ErrorCodes.SDK_CALL_INVALID,
          `unknown SDK method ${JSON.stringify(method)}`,
        );
    }
  }

  /** The namespace's credentials when `pod` is in a namespace they allow; FORBIDDEN otherwise. */
  private allow(call: Call, pod: PodRef): NamespaceCredentials {
    const credentials = this.options.credentials(call.namespace);
    if (!credentials) {
      throw new ContainmentError(
        ErrorCodes.FORBIDDEN,
        `${call.method}: function namespace ${call.namespace} has no scanner or enforcer credentials`,
      );
    }
    if (pod.namespace !== call.namespace && !(credentials.namespaces ?? []).includes(pod.namespace)) {
      throw new ContainmentError(
        ErrorCodes.FORBIDDEN,
        `${call.method}: pod ${podLabel(pod)} is outside the namespaces function namespace ${call.namespace} may use`,
      );
    }
    return credentials;
  }

  /**
   * Pod labels, in cluster mode only: checked (namespace, reserved keys) before any API call, then
   * a merge patch through the runtime's client. Container labels cannot change after start, so
   * the local action API has no way to do this.
   */
  private async label(call: Call, pod: PodRef, labels: Record<string, string>): Promise<LabelResult> {
    const what = `kubernetes.label(${podLabel(pod)})`;
    const credentials = this.allow(call, pod);
    if (pod.container !== undefined) {
      throw new ContainmentError(
        ErrorCodes.SDK_CALL_INVALID,
        `${what}: labels belong to the pod, not to container ${pod.container}`,
      );
    }
    const keys = Object.keys(labels).sort();
    if (keys.length === 0)
      throw new ContainmentError(ErrorCodes.SDK_CALL_INVALID, `${what}: no labels given`);
    const reserved = keys.filter((k) => {
      const prefix = k.includes('/') ? k.slice(0, k.indexOf('/')) : '';
      return prefix === RESERVED_LABEL_DOMAIN || prefix.endsWith(`.${RESERVED_LABEL_DOMAIN}`);
    });
    if (reserved.length > 0) {
      throw new ContainmentError(
        ErrorCodes.SDK_CALL_INVALID,
        `${what}: ${reserved.join(', ')}: labels under ${RESERVED_LABEL_DOMAIN}/ belong to the Containment operator`,
      );
    }
    const client = this.options.enforcement(credentials);
    if (!client.label) {
      throw new ContainmentError(
        ErrorCodes.ENFORCEMENT_FAILED,
        `${what}: labels cannot be changed through the local action API`,
      );
    }
    const dryRun = isDryRun(call.context);
    const target = { namespace: pod.namespace, pod: pod.name };
    const done = await client.label(target, labels, { dryRun });
    const key = [
      call.namespace,
      call.action,
      call.context.activationId,
      'Label',
      pod.namespace,
      pod.name,
      ...keys.map((k) => `${k}=${labels[k]}`),
    ].join('\0');
    return {
      name: `label-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`,
      action: 'Label',
      target: { ...target, uid: done.uid },
      dryRun,
      labels,
      changed: done.changed,
      status: { phase: 'Succeeded', message: done.message, evidence: [], conditions: [] },
    };
  }

  private async enforce(
    call: Call,
    kind: ActionKind,
    pod: PodRef,
    opts: z.output<typeof gracefulOptions>,
  ): Promise<EnforcementResult> {
    const credentials = this.allow(call, pod);
    const target = {
      namespace: pod.namespace,
      pod: pod.name,
      ...(pod.container === undefined ? {} : { container: pod.container }),
    };
    const dryRun = isDryRun(call.context);
    const request: SecurityActionInput = {
      metadata: { name: actionName(call, kind, target), namespace: pod.namespace },
      spec: {
        target,
        action: kind,
        ...(kind === 'TerminateGraceful'
          ? { gracePeriodSeconds: opts.gracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS }
          : {}),
        reason: opts.reason ?? `${call.method} by policy ${call.action}`,
        ...(opts.findingsRef === undefined ? {} : { findingsRef: opts.findingsRef }),
        requestedBy: `policy/${call.action}@${call.context.activationId}`,
        dryRun,
      },
    };
    const done = await this.options.enforcement(credentials).create(request, { wait: opts.wait === true });
    return {
      name: done.metadata.name,
      action: done.spec.action,
      target: done.spec.target,
      dryRun: done.spec.dryRun,
      status: done.status ?? null,
    };
  }
}

/** Label keys under this domain (and its subdomains) are the operator's: policies may not set them. */
export const RESERVED_LABEL_DOMAIN = 'containment.dev';

/** What `kubernetes.label` returns to the policy. */
export interface LabelResult extends Omit<EnforcementResult, 'action'> {
  action: 'Label';
  labels: Record<string, string>;
  /** Keys that were (or, in a dry run, would be) set or changed. */
  changed: string[];
}

export function isDryRun(context: PolicyCallContext): boolean {
  return context.annotations[DRY_RUN_ANNOTATION] === true;
}

/**
 * `<kind>-<24 hex>`, the hash over everything that identifies the request: the same activation
 * asking the same thing of the same target gets the same name, so a retry is recognised.
 */
export function actionName(
  call: { namespace: string; action: string; context: { activationId: string } },
  kind: ActionKind,
  target: { namespace: string; pod: string; container?: string },
): string {
  const key = actionNameKey(call, kind, target);
  return `${kind.toLowerCase()}-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}
