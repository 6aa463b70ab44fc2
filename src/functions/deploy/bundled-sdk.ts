/**
 * The policy SDK (`@containment/policy-sdk`) for a policy that runs outside this project's runtime —
 * bundled into an Apache OpenWhisk `nodejs:20` action or a Knative CloudEvents handler. It talks
 * HTTP to the scanner's findings API and to the enforcement API with the tokens the deployment gave
 * it (OpenWhisk: a default parameter of the package; Knative: environment variables from a Secret),
 * and checks each call's arguments with the same schemas as the runtime's PolicySdkHost.
 *
 * It uses only what every Node 20 has as globals (fetch, WebCrypto), no `require`: the OpenWhisk
 * bundle is then a plain script that any OpenWhisk-compatible runtime can store and load.
 */
import { z } from 'zod';
import { DEFAULT_GRACE_PERIOD_SECONDS } from '../../enforcement/security-action.js';
import type { ActionKind, SecurityActionInput } from '../../enforcement/security-action.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { HttpEnforcementClient } from '../sdk/enforcement-client.js';
import { HttpFindingsClient } from '../sdk/findings-client.js';
import { parseSdkArgs, podLabel } from '../sdk/pod-ref.js';
import type { PodRef } from '../sdk/pod-ref.js';
import {
  ENFORCEMENT_KINDS,
  actionNameKey,
  enforcementArgs,
  findingsArgs,
  gracefulArgs,
  labelArgs,
  notifyArgs,
} from '../sdk/sdk-args.js';

/** The parameter (OpenWhisk) that carries the configuration; removed before the policy sees its params. */
export const CONFIG_PARAM = '__containment';

export const bundledConfigSchema = z.strictObject({
  /** The scanner's base URL (findings API). */
  scannerUrl: z.url(),
  scannerToken: z.string().min(1),
  /** The enforcement API's base URL (`POST /v1/actions`). */
  actionsUrl: z.url(),
  enforcerToken: z.string().min(1),
  cluster: z.string().min(1).default('local'),
  /** Pod namespaces the policy may name; the tokens' own scope is what the APIs enforce. */
  namespaces: z.array(z.string().min(1)).min(1),
  /** Enforcement calls create SecurityActions with `dryRun: true`: nothing is changed. */
  dryRun: z.boolean().default(false),
});
export type BundledConfig = z.output<typeof bundledConfigSchema>;

export interface ActivationContext {
  config: BundledConfig;
  /** The policy's name, for `requestedBy: policy/<name>@<activationId>`. */
  policy: string;
  activationId: string;
  /** Set when the activation has ended: later SDK calls are refused. */
  ended?: boolean;
}

/** Where the SDK finds the running activation: one at a time (OpenWhisk) or per async context (Knative). */
export interface ContextStore {
  get(): ActivationContext | undefined;
  run<T>(context: ActivationContext, fn: () => Promise<T>): Promise<T>;
}

/** OpenWhisk runs one activation per container at a time (the action's concurrency limit is 1). */
export const singleContext: ContextStore = (() => {
  let current: ActivationContext | undefined;
  return {
    get: () => current,
    async run(context, fn) {
      current = context;
      try {
        return await fn();
      } finally {
        context.ended = true;
        if (current === context) current = undefined;
      }
    },
  };
})();

let store: ContextStore = singleContext;
export function useContextStore(next: ContextStore): void {
  store = next;
}

function activation(method: string): ActivationContext {
  const context = store.get();
  if (context === undefined || context.ended)
    throw new ContainmentError(ErrorCodes.SDK_CALL_INVALID, `${method}: called outside an activation`);
  return context;
}

function allow(method: string, context: ActivationContext, pod: PodRef): void {
  if (!context.config.namespaces.includes(pod.namespace))
    throw new ContainmentError(
      ErrorCodes.FORBIDDEN,
      `${method}: pod ${podLabel(pod)} is outside the namespaces this policy may use (${context.config.namespaces.join(', ')})`,
    );
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Buffer.from(digest).toString('hex');
}

async function enforce(method: string, args: unknown[]): Promise<unknown> {
  const context = activation(method);
  const graceful = method === 'kubernetes.terminateGraceful';
  const [pod, opts = {}] = parseSdkArgs(method, graceful ? gracefulArgs : enforcementArgs, args) as [
    PodRef,
    { wait?: boolean; reason?: string; findingsRef?: string; gracePeriodSeconds?: number }?,
  ];
  allow(method, context, pod);
  const kind = ENFORCEMENT_KINDS[method] as ActionKind;
  const target = {
    namespace: pod.namespace,
    pod: pod.name,
    ...(pod.container === undefined ? {} : { container: pod.container }),
  };
  const call = { namespace: pod.namespace, action: context.policy, context };
  const request: SecurityActionInput = {
    metadata: {
      name: `${kind.toLowerCase()}-${(await sha256Hex(actionNameKey(call, kind, target))).slice(0, 24)}`,
      namespace: pod.namespace,
    },
    spec: {
      target,
      action: kind,
      ...(kind === 'TerminateGraceful'
        ? { gracePeriodSeconds: opts.gracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS }
        : {}),
      reason: opts.reason ?? `${method} by policy ${context.policy}`,
      ...(opts.findingsRef === undefined ? {} : { findingsRef: opts.findingsRef }),
      requestedBy: `policy/${context.policy}@${context.activationId}`,
      dryRun: context.config.dryRun,
    },
  };
  const client = new HttpEnforcementClient({
    url: context.config.actionsUrl,
    token: context.config.enforcerToken,
  });
  const done = await client.create(request, { wait: opts.wait === true });
  return {
    name: done.metadata.name,
    action: done.spec.action,
    target: done.spec.target,
    dryRun: done.spec.dryRun,
    status: done.status ?? null,
  };
}

export async function call(method: string, ...args: unknown[]): Promise<unknown> {
  switch (method) {
    case 'vs.getFindings': {
      const context = activation(method);
      const [pod, at] = parseSdkArgs(method, findingsArgs, args);
      allow(method, context, pod);
      return new HttpFindingsClient({
        url: context.config.scannerUrl,
        token: context.config.scannerToken,
      }).get({
        cluster: context.config.cluster,
        namespace: pod.namespace,
        pod: pod.name,
        ...(pod.container === undefined ? {} : { container: pod.container }),
        ...(at === undefined || at === null ? {} : { at }),
      });
    }
    case 'kubernetes.snapshot':
    case 'kubernetes.terminate':
    case 'kubernetes.terminateGraceful':
    case 'kubernetes.quarantine':
    case 'kubernetes.release':
      return enforce(method, args);
    case 'kubernetes.label': {
      const context = activation(method);
      const [pod] = parseSdkArgs(method, labelArgs, args);
      allow(method, context, pod);
      throw new ContainmentError(
        ErrorCodes.ENFORCEMENT_FAILED,
        `kubernetes.label(${podLabel(pod)}): labels cannot be changed through the action API`,
      );
    }
    case 'notify': {
      const context = activation(method);
      const [channel, message] = parseSdkArgs(method, notifyArgs, args);
      // The platform keeps the action's stdout (OpenWhisk activation logs, Knative pod logs).
      console.log(
        JSON.stringify({
          msg: 'policy notification',
          channel,
          message,
          policy: context.policy,
          activationId: context.activationId,
          dryRun: context.config.dryRun,
          at: new Date().toISOString(),
        }),
      );
      return { delivered: true, channel };
    }
    default:
      throw new ContainmentError(ErrorCodes.SDK_CALL_INVALID, `unknown SDK method ${JSON.stringify(method)}`);
  }
}

// The module's exports as policies import them (policies/sdk.d.ts).
export const vs = { getFindings: (...args: unknown[]) => call('vs.getFindings', ...args) };
export const kubernetes = {
  snapshot: (...args: unknown[]) => call('kubernetes.snapshot', ...args),
  terminate: (...args: unknown[]) => call('kubernetes.terminate', ...args),
  terminateGraceful: (...args: unknown[]) => call('kubernetes.terminateGraceful', ...args),
  quarantine: (...args: unknown[]) => call('kubernetes.quarantine', ...args),
  release: (...args: unknown[]) => call('kubernetes.release', ...args),
  label: (...args: unknown[]) => call('kubernetes.label', ...args),
};
export const notify = (...args: unknown[]) => call('notify', ...args);
export default { vs, kubernetes, notify, call };

type PolicyModule = { main?: unknown; default?: unknown };

function entryOf(policy: PolicyModule): (params: Record<string, unknown>) => unknown {
  if (typeof policy.main === 'function') return policy.main as (p: Record<string, unknown>) => unknown;
  if (typeof policy.default === 'function') return policy.default as (p: Record<string, unknown>) => unknown;
  throw new TypeError("Action entrypoint 'main' is not a function.");
}

/** Runs the policy's main for one activation with `config`; `params` never carry the config on. */
export function runPolicy(
  policy: PolicyModule,
  name: string,
  activationId: string,
  config: BundledConfig,
  params: Record<string, unknown>,
): Promise<unknown> {
  const main = entryOf(policy);
  return store.run({ config, policy: name, activationId }, async () => main(params));
}
