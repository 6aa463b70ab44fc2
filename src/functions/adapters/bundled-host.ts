/**
 * The host side of a policy that runs outside this project's runtime — bundled into an Apache
 * OpenWhisk `nodejs:20` action or a Knative CloudEvents handler: binds the policy's SDK module
 * (sdk/policy-sdk.ts) to the one SDK host (host/sdk-host.ts) with HTTP clients for the scanner's
 * findings API and the enforcement API and the tokens the deployment gave (OpenWhisk: a default
 * parameter of the package; Knative: environment variables from a Secret). Notifications go to
 * stdout, which the platform keeps (OpenWhisk activation logs, Knative pod logs).
 *
 * It uses only what every Node 20 has as globals (fetch, WebCrypto), no `require`: the OpenWhisk
 * bundle is then a plain script that any OpenWhisk-compatible runtime can store and load.
 */
import { ActionApiClient } from '../../clients/action-client.js';
import { ScannerClient } from '../../clients/scanner-client.js';
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { enforcementScopeOf } from '../host/enforcement-scope.js';
import type { EnforcementScope, EnforcementScopeMode } from '../host/enforcement-scope.js';
import { SdkHost } from '../host/sdk-host.js';
import { bindPolicySdk } from '../sdk/policy-sdk.js';
import type { BundledConfig } from './bundled-config.js';

export { bundledConfigSchema, CONFIG_PARAM } from './bundled-config.js';
export type { BundledConfig } from './bundled-config.js';

export interface ActivationContext {
  config: BundledConfig;
  /** The policy's name, for `requestedBy: policy/<name>@<activationId>`. */
  policy: string;
  activationId: string;
  /** Which workloads enforcement calls may name, fixed from the event before the policy runs. */
  scope: EnforcementScope;
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

const host = new SdkHost({
  scope: (call) => {
    const { config } = activation(call.method);
    return {
      cluster: config.cluster,
      namespaces: config.namespaces,
      describe: `the namespaces this policy may use (${config.namespaces.join(', ')})`,
      findings: () => {
        const client = new ScannerClient({ server: config.scannerUrl, token: config.scannerToken });
        return { get: (query) => client.findings(query) };
      },
      enforcement: () => new ActionApiClient({ url: config.actionsUrl, token: config.enforcerToken }),
    };
  },
  notify: (n) => {
    console.log(
      JSON.stringify({
        msg: 'policy notification',
        channel: n.channel,
        message: n.message,
        policy: n.action,
        activationId: n.activationId,
        dryRun: n.dryRun,
        at: n.at,
      }),
    );
  },
});

/** One SDK call of the running activation. */
export async function call(method: string, args: unknown[]): Promise<unknown> {
  const context = activation(method);
  const sdkCall = {
    method,
    action: context.policy,
    activationId: context.activationId,
    dryRun: context.config.dryRun,
    scope: context.scope,
  };
  try {
    return await host.call(sdkCall, args);
  } catch (e) {
    // The security-event log of a bundled policy is the platform's log of its output.
    if (e instanceof ContainmentError && e.code === ErrorCodes.SCOPE_DENIED)
      console.log(
        JSON.stringify({
          msg: 'security event',
          securityEvent: {
            time: new Date().toISOString(),
            kind: 'scope-denied',
            policy: context.policy,
            activationId: context.activationId,
            reason: e.message,
          },
        }),
      );
    throw e;
  }
}

bindPolicySdk(call);

type PolicyModule = { main?: unknown; default?: unknown };

function entryOf(policy: PolicyModule): (params: Record<string, unknown>) => unknown {
  if (typeof policy.main === 'function') return policy.main as (p: Record<string, unknown>) => unknown;
  if (typeof policy.default === 'function') return policy.default as (p: Record<string, unknown>) => unknown;
  throw new TypeError("Action entrypoint 'main' is not a function.");
}

/**
 * Runs the policy's main for one activation with `config`; `params` never carry the config on.
 * `scopeMode` is fixed when the policy is bundled (`policy deploy --enforcement-scope`).
 */
export function runPolicy(
  policy: PolicyModule,
  name: string,
  activationId: string,
  config: BundledConfig,
  params: Record<string, unknown>,
  scopeMode: EnforcementScopeMode = 'event',
): Promise<unknown> {
  const main = entryOf(policy);
  const scope = enforcementScopeOf(scopeMode, params);
  return store.run({ config, policy: name, activationId, scope }, async () => main(params));
}
