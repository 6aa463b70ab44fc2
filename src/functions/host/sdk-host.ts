/**
 * The policy SDK's host: what every SDK call a policy makes does, wherever the policy runs — in this
 * project's sandbox (PolicySdkHost, behind the function runtime) or bundled for Apache OpenWhisk or
 * Knative (adapters/bundled-host.ts). The arguments are checked, the pod must be in a namespace the
 * call's scope allows and, for a call that changes a workload, be one the triggering event names
 * (enforcement-scope.ts) — both before any request — then findings are read or a SecurityAction is
 * created through the scope's clients, which carry its own credentials: the scanner and the action
 * API enforce the namespace boundary too.
 *
 * Enforcement calls create SecurityActions named from (activation, method, target), so a retried
 * activation creates nothing new; in a dry run they are created with `dryRun: true` and the enforcer
 * only records what it would have done.
 *
 * Node globals only (WebCrypto for the names), and no client of its own: the OpenWhisk bundle that
 * includes it stays a plain script.
 */
import type { z } from 'zod';
import { DEFAULT_GRACE_PERIOD_SECONDS } from '../../enforcement/security-action.js';
import type { ActionKind, SecurityAction, SecurityActionInput } from '../../enforcement/security-action.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import type { JsonValue } from '../sandbox/sandbox.js';
import type { EnforcementClient } from './enforcement-client.js';
import { checkEnforcementScope } from './enforcement-scope.js';
import type { EnforcementScope } from './enforcement-scope.js';
import type { FindingsClient } from './findings-client.js';
import type { Notification } from './notifier.js';
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

/** Who makes one SDK call. */
export interface SdkCall {
  /** One of SDK_METHODS, e.g. `kubernetes.quarantine`. */
  method: string;
  /** The policy: the action's `[package/]name` in the runtime, the bundled policy's name elsewhere. */
  action: string;
  activationId: string;
  /** Enforcement creates SecurityActions with `dryRun: true`: nothing is changed. */
  dryRun: boolean;
  /**
   * The function namespace the policy runs in; part of every action name. A bundled policy has
   * none: its names are keyed on the pod's namespace instead.
   */
  namespace?: string;
  /** The workloads enforcement calls may name (enforcement-scope.ts); checked before any request. */
  scope: EnforcementScope;
}

/** What one call may reach, and with which credentials. */
export interface SdkScope {
  /** The cluster the pods are in (`local` in single-machine mode). */
  cluster: string;
  /** Pod namespaces the call may name. */
  namespaces: readonly string[];
  /** Ends the refusal `…: pod a/b is outside <this>`. */
  describe: string;
  /** Made when a call needs them (a scope is resolved for every call). */
  findings(): FindingsClient;
  enforcement(): EnforcementClient;
}

export interface SdkHostOptions {
  /** The call's scope; throws FORBIDDEN when the caller has no credentials at all. */
  scope: (call: SdkCall) => SdkScope;
  notify: (notification: Notification) => void | Promise<void>;
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

/** Label keys under this domain (and its subdomains) are the operator's: policies may not set them. */
export const RESERVED_LABEL_DOMAIN = 'containment.dev';

/** What `kubernetes.label` returns to the policy. */
export interface LabelResult extends Omit<EnforcementResult, 'action'> {
  action: 'Label';
  labels: Record<string, string>;
  /** Keys that were (or, in a dry run, would be) set or changed. */
  changed: string[];
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Buffer.from(digest).toString('hex');
}

/**
 * `<kind>-<24 hex>`, the hash over everything that identifies the request: the same activation
 * asking the same thing of the same target gets the same name, so a retry is recognised.
 */
export async function actionName(
  call: { namespace: string; action: string; context: { activationId: string } },
  kind: ActionKind,
  target: { namespace: string; pod: string; container?: string },
): Promise<string> {
  return `${kind.toLowerCase()}-${(await sha256Hex(actionNameKey(call, kind, target))).slice(0, 24)}`;
}

/** The name key's view of a call: a bundled policy's calls are keyed on the pod's namespace. */
const keyed = (call: SdkCall, pod: PodRef) => ({
  namespace: call.namespace ?? pod.namespace,
  action: call.action,
  context: { activationId: call.activationId },
});

export class SdkHost {
  private readonly now: () => Date;

  constructor(private readonly options: SdkHostOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** Runs one SDK call; its result is JSON for the policy. */
  async call(call: SdkCall, args: unknown): Promise<unknown> {
    const { method } = call;
    switch (method) {
      case 'vs.getFindings': {
        const [pod, at] = parseSdkArgs(method, findingsArgs, args);
        const scope = this.allow(call, pod);
        return scope.findings().get({
          cluster: scope.cluster,
          namespace: pod.namespace,
          pod: pod.name,
          ...(pod.container === undefined ? {} : { container: pod.container }),
          ...(at === undefined || at === null ? {} : { at }),
        });
      }
      case 'kubernetes.snapshot':
      case 'kubernetes.terminate':
      case 'kubernetes.quarantine':
      case 'kubernetes.release':
      case 'kubernetes.terminateGraceful': {
        const graceful = method === 'kubernetes.terminateGraceful';
        const [pod, opts = {}] = parseSdkArgs(method, graceful ? gracefulArgs : enforcementArgs, args);
        return this.enforce(call, ENFORCEMENT_KINDS[method] as ActionKind, pod, opts);
      }
      case 'kubernetes.label': {
        const [pod, labels] = parseSdkArgs(method, labelArgs, args);
        return this.label(call, pod, labels);
      }
      case 'notify': {
        const [channel, message] = parseSdkArgs(method, notifyArgs, args);
        await this.options.notify({
          channel,
          message: message as JsonValue,
          namespace: call.namespace ?? '',
          action: call.action,
          activationId: call.activationId,
          dryRun: call.dryRun,
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

  /**
   * The call's scope when `pod` is in a namespace it allows (FORBIDDEN otherwise) and, for a call
   * that changes a workload, one the enforcement scope allows (SCOPE_DENIED otherwise).
   */
  private allow(call: SdkCall, pod: PodRef): SdkScope {
    const scope = this.options.scope(call);
    if (!scope.namespaces.includes(pod.namespace))
      throw new ContainmentError(
        ErrorCodes.FORBIDDEN,
        `${call.method}: pod ${podLabel(pod)} is outside ${scope.describe}`,
      );
    checkEnforcementScope(call.scope, call.method, scope.cluster, pod);
    return scope;
  }

  private async enforce(
    call: SdkCall,
    kind: ActionKind,
    pod: PodRef,
    opts: z.output<typeof gracefulOptions>,
  ): Promise<EnforcementResult> {
    const scope = this.allow(call, pod);
    const target = {
      namespace: pod.namespace,
      pod: pod.name,
      ...(pod.container === undefined ? {} : { container: pod.container }),
    };
    const request: SecurityActionInput = {
      metadata: { name: await actionName(keyed(call, pod), kind, target), namespace: pod.namespace },
      spec: {
        target,
        action: kind,
        ...(kind === 'TerminateGraceful'
          ? { gracePeriodSeconds: opts.gracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS }
          : {}),
        reason: opts.reason ?? `${call.method} by policy ${call.action}`,
        ...(opts.findingsRef === undefined ? {} : { findingsRef: opts.findingsRef }),
        requestedBy: `policy/${call.action}@${call.activationId}`,
        dryRun: call.dryRun,
      },
    };
    const done = await scope.enforcement().create(request, { wait: opts.wait === true });
    return {
      name: done.metadata.name,
      action: done.spec.action,
      target: done.spec.target,
      dryRun: done.spec.dryRun,
      status: done.status ?? null,
    };
  }

  /**
   * Pod labels, in cluster mode only: checked (namespace, reserved keys) before any API call, then
   * a merge patch through the enforcement client. Container labels cannot change after start, so
   * the local action API has no way to do this.
   */
  private async label(call: SdkCall, pod: PodRef, labels: Record<string, string>): Promise<LabelResult> {
    const what = `kubernetes.label(${podLabel(pod)})`;
    const scope = this.allow(call, pod);
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
    const client = scope.enforcement();
    if (!client.label) {
      throw new ContainmentError(
        ErrorCodes.ENFORCEMENT_FAILED,
        `${what}: labels cannot be changed through the local action API`,
      );
    }
    const target = { namespace: pod.namespace, pod: pod.name };
    const done = await client.label(target, labels, { dryRun: call.dryRun });
    const key = [
      keyed(call, pod).namespace,
      call.action,
      call.activationId,
      'Label',
      pod.namespace,
      pod.name,
      ...keys.map((k) => `${k}=${labels[k]}`),
    ].join('\0');
    return {
      name: `label-${(await sha256Hex(key)).slice(0, 24)}`,
      action: 'Label',
      target: { ...target, uid: done.uid },
      dryRun: call.dryRun,
      labels,
      changed: done.changed,
      status: { phase: 'Succeeded', message: done.message, evidence: [], conditions: [] },
    };
  }
}
