/**
 * The policy SDK as policies see it (the contract in DESIGN.md). Inside the sandbox each method is
 * a stub that sends `(method, args)` as JSON to the host's SdkHandler; the host implements them.
 */
export const SDK_MODULE = '@containment/policy-sdk';

export const SDK_METHODS = [
  'vs.getFindings',
  'kubernetes.snapshot',
  'kubernetes.terminate',
  'kubernetes.terminateGraceful',
  'kubernetes.quarantine',
  'kubernetes.release',
  'kubernetes.label',
  'notify',
] as const;

export type SdkMethod = (typeof SDK_METHODS)[number];

/** The module's top-level exports (`vs`, `kubernetes`, `notify`), plus `call(method, ...args)`. */
export const SDK_EXPORTS: readonly string[] = [
  ...new Set(SDK_METHODS.map((m) => m.split('.')[0] as string)),
  'call',
];
