/**
 * `@containment/policy-sdk` as a bundled policy imports it (policies/sdk.d.ts): `vs`, `kubernetes`,
 * `notify` and `call`, each handing the call to the host its bundle bound (adapters/bundled-host.ts).
 * It does no I/O itself and imports nothing: a policy gets its capabilities only through the host.
 * (In the sandbox the same API is the guest harness's, answered by the runtime's PolicySdkHost.)
 */

export type SdkInvoke = (method: string, args: unknown[]) => Promise<unknown>;

let bound: SdkInvoke | undefined;

/** Set once by the bundle's entry, before the policy's first activation. */
export function bindPolicySdk(invoke: SdkInvoke): void {
  bound = invoke;
}

export function call(method: string, ...args: unknown[]): Promise<unknown> {
  if (bound === undefined) return Promise.reject(new Error(`${method}: no policy SDK host is bound`));
  return bound(method, args);
}

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
