/**
 * Which workloads a policy's enforcement calls may name. By default a policy acts only on the
 * workloads of the event that triggered it — the CloudEvent's `data.workload` (scan and runtime
 * events) or `data.target` (action events), or the same fields at the top level when the event's
 * data was passed as the parameters. An action annotated `containment.dev/enforcement-scope:
 * namespace` may act on any pod in its namespace scope instead (the namespace check in sdk-host.ts
 * applies either way).
 *
 * The scope is worked out by the host from the activation's parameters before the policy runs, so
 * the policy cannot change it. Pure (no I/O); shared by the runtime and the bundled hosts.
 */
import { ContainmentError, ErrorCodes } from '../../errors.js';
import { podLabel } from './pod-ref.js';
import type { PodRef } from './pod-ref.js';

export const ENFORCEMENT_SCOPE_ANNOTATION = 'containment.dev/enforcement-scope';
export const ENFORCEMENT_SCOPES = ['event', 'namespace'] as const;
export type EnforcementScopeMode = (typeof ENFORCEMENT_SCOPES)[number];

/** A workload an event names. */
export interface EventWorkload {
  cluster?: string;
  namespace: string;
  pod: string;
  container?: string;
}

export type EnforcementScope =
  | { mode: 'namespace' }
  /** `workloads` empty: no event (or one naming no workload) — every enforcement call is refused. */
  | { mode: 'event'; workloads: readonly EventWorkload[] };

/** SDK methods that change a workload; reading findings and notifying are not scoped to the event. */
export const SCOPED_METHODS: ReadonlySet<string> = new Set([
  'kubernetes.snapshot',
  'kubernetes.terminate',
  'kubernetes.terminateGraceful',
  'kubernetes.quarantine',
  'kubernetes.release',
  'kubernetes.label',
]);

const isText = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function workloadOf(value: unknown): EventWorkload | undefined {
  if (!isObject(value) || !isText(value.namespace) || !isText(value.pod)) return undefined;
  return {
    namespace: value.namespace,
    pod: value.pod,
    ...(isText(value.cluster) ? { cluster: value.cluster } : {}),
    ...(isText(value.container) ? { container: value.container } : {}),
  };
}

/** The workloads the triggering event names (none when the parameters hold no event). */
export function eventWorkloads(params: Record<string, unknown>): EventWorkload[] {
  const data = isObject(params.data) ? params.data : params;
  const found = [workloadOf(data.workload), workloadOf(data.target)];
  return found.filter((w): w is EventWorkload => w !== undefined);
}

/** The annotation's value as a mode; anything but `namespace` (absent, misspelt) is `event`. */
export function scopeMode(annotation: unknown): EnforcementScopeMode {
  return annotation === 'namespace' ? 'namespace' : 'event';
}

/**
 * The scope of one activation. `trusted: false` (parameters from an anonymous web request) means
 * the parameters cannot name the event: an event-scoped policy may then act on nothing.
 */
export function enforcementScopeOf(
  annotation: unknown,
  params: Record<string, unknown>,
  trusted = true,
): EnforcementScope {
  if (scopeMode(annotation) === 'namespace') return { mode: 'namespace' };
  return { mode: 'event', workloads: trusted ? eventWorkloads(params) : [] };
}

/** A container of the event's pod, or the whole pod, matches; another pod or cluster does not. */
function matches(w: EventWorkload, cluster: string, pod: PodRef): boolean {
  if (w.cluster !== undefined && w.cluster !== cluster) return false;
  if (w.namespace !== pod.namespace || w.pod !== pod.name) return false;
  return w.container === undefined || pod.container === undefined || w.container === pod.container;
}

/** Throws SCOPE_DENIED when `method` may not act on `pod` under `scope`. */
export function checkEnforcementScope(
  scope: EnforcementScope,
  method: string,
  cluster: string,
  pod: PodRef,
): void {
  if (!SCOPED_METHODS.has(method) || scope.mode === 'namespace') return;
  if (scope.workloads.some((w) => matches(w, cluster, pod))) return;
  const named =
    scope.workloads.length === 0
      ? 'the activation has no triggering event naming a workload'
      : `the triggering event names ${scope.workloads.map((w) => `${w.namespace}/${w.pod}`).join(', ')}`;
  throw new ContainmentError(
    ErrorCodes.SCOPE_DENIED,
    `${method}: pod ${podLabel(pod)} is not a workload of the triggering event (${named}); ` +
      `annotate the action ${ENFORCEMENT_SCOPE_ANNOTATION}: namespace to act more widely`,
  );
}
