/**
 * The one enforcer: which steps a SecurityAction takes, in which order, and what happens when one
 * fails — written once for both front ends (the local action API's `LocalEnforcer`, one container
 * through the engine; the Kubernetes `Operator`, one pod through the API server and this node).
 *
 * The work itself is done by drivers, one per layer, bound to the resolved target: the container
 * engine (`drivers/engine-driver.ts`), Linux (`drivers/linux-driver.ts`: nftables in the target's
 * network namespace, signals through `/proc`) and Kubernetes (`drivers/kubernetes-driver.ts`:
 * labels, the deny-all NetworkPolicy, pod delete, pod evidence). A driver implements the
 * operations its layer has; the others are skipped.
 *
 * Order: containment closes from the outside in — labels first, then the cluster's policy, then
 * the node's netns — and termination works from the inside out: the processes die before the
 * object that owns them is deleted. Drivers are given outermost first.
 */
import type { ActionCondition, ActionSpec, EvidenceItem } from './security-action.js';

/** What one step did. */
export interface StepResult {
  condition: ActionCondition;
  evidence?: EvidenceItem[];
  /** False when the state was already as wanted (a resumed action): no Event for it. */
  changed?: boolean;
  /** The sentence the step adds to the action's message (default: the condition's message). */
  message?: string;
}

export interface StepContext {
  /** What the earlier steps of this action did (a termination reports the snapshot it followed). */
  readonly done: readonly StepResult[];
}

/** One operation of one driver: `type` names the condition it writes, also when it fails. */
export interface DriverStep {
  type: string;
  run(context: StepContext): Promise<StepResult>;
}

export type Mode = 'set' | 'clear';

/** One layer's operations on one resolved target (undefined: this layer has no such step). */
export interface EnforcementDriver {
  /** Marks the target quarantined (or not) where others can see it. */
  label?(mode: Mode): DriverStep | undefined;
  /** Cuts (or restores) the target's network at this layer. */
  isolate?(mode: Mode): DriverStep | undefined;
  /** Writes an evidence bundle. */
  snapshot?(): DriverStep | undefined;
  /** Ends the target: `graceful` with the grace period, `abrupt` at once. */
  terminate?(how: 'graceful' | 'abrupt', gracePeriodSeconds: number): DriverStep | undefined;
}

/** The resolved target, as the guard and the messages see it. */
export interface EnforcementTarget {
  kind: 'container' | 'pod';
  namespace: string;
  name: string;
  uid: string;
  node: string;
}

/**
 * The one place that decides whether this enforcer may act on a target at all (e.g. only
 * managed targets): called after the target is resolved and before anything — a dry run
 * included — is done. Throw a ContainmentError to refuse; the action then fails with its message
 * (the operator also records a `TargetAllowed` False condition).
 */
export const TARGET_ALLOWED = 'TargetAllowed';

export type TargetGuard = (target: EnforcementTarget, spec: ActionSpec) => void | Promise<void>;

export interface CarryOutInput {
  spec: ActionSpec;
  target: EnforcementTarget;
  /** Outermost first (see the file comment). */
  drivers: readonly EnforcementDriver[];
  /** For a dry run: what the action would do, in one sentence. */
  plan: () => string | Promise<string>;
  guard?: TargetGuard | undefined;
  /**
   * A step that throws: `rethrow` hands the error to the front end (the local enforcer fails the
   * action with it; the operator retries transient API failures), `record` ends the action as
   * failed with a False condition for the step and the conditions gathered so far.
   */
  onError: (e: unknown) => 'rethrow' | 'record';
  /** The message of a recorded failure (default: the error's message). */
  describeError?: (e: unknown) => string;
  /** Called after each completed step (the operator's tests stop it there). */
  afterStep?: (type: string) => Promise<void>;
  now: () => Date;
}

export interface CarryOutResult {
  phase: 'Succeeded' | 'Failed';
  dryRun: boolean;
  results: StepResult[];
  conditions: ActionCondition[];
  evidence: EvidenceItem[];
  changed: boolean;
  /** Set when a step failed: `<step type>: <why>`. */
  failedAt?: string;
  /** Dry run only: the plan sentence. */
  plan?: string;
}

export function condition(
  type: string,
  status: ActionCondition['status'],
  reason: string,
  message: string,
  now: Date,
): ActionCondition {
  return { type, status, reason, message, lastTransitionTime: now.toISOString() };
}

/** The steps of an action, in order, from the drivers that have them. */
export function stepsFor(spec: ActionSpec, drivers: readonly EnforcementDriver[]): DriverStep[] {
  const outsideIn = [...drivers];
  const insideOut = [...drivers].reverse();
  const each = (
    list: EnforcementDriver[],
    pick: (d: EnforcementDriver) => DriverStep | undefined,
  ): DriverStep[] => list.map(pick).filter((s): s is DriverStep => s !== undefined);
  switch (spec.action) {
    case 'Quarantine':
    case 'Release': {
      const mode: Mode = spec.action === 'Quarantine' ? 'set' : 'clear';
      return [...each(outsideIn, (d) => d.label?.(mode)), ...each(outsideIn, (d) => d.isolate?.(mode))];
    }
    case 'Snapshot':
      return each(outsideIn, (d) => d.snapshot?.());
    case 'TerminateGraceful':
      return [
        ...each(outsideIn, (d) => d.snapshot?.()),
        ...each(insideOut, (d) => d.terminate?.('graceful', spec.gracePeriodSeconds)),
      ];
    case 'Terminate':
      return each(insideOut, (d) => d.terminate?.('abrupt', 0));
  }
}

/** Guards, then runs the action's steps (or only plans them, for a dry run). */
export async function carryOut(input: CarryOutInput): Promise<CarryOutResult> {
  const { spec, now } = input;
  const result: CarryOutResult = {
    phase: 'Succeeded',
    dryRun: spec.dryRun,
    results: [],
    conditions: [],
    evidence: [],
    changed: false,
  };
  try {
    await input.guard?.(input.target, spec);
  } catch (e) {
    if (input.onError(e) === 'rethrow') throw e;
    const message = input.describeError?.(e) ?? (e as Error).message;
    result.conditions.push(condition(TARGET_ALLOWED, 'False', 'Refused', message, now()));
    return { ...result, phase: 'Failed', failedAt: `${TARGET_ALLOWED}: ${message}` };
  }
  if (spec.dryRun) {
    result.plan = await input.plan();
    result.conditions.push(condition('DryRun', 'True', 'DryRun', 'nothing was changed', now()));
    return result;
  }
  for (const step of stepsFor(spec, input.drivers)) {
    let done: StepResult;
    try {
      done = await step.run({ done: result.results });
    } catch (e) {
      if (input.onError(e) === 'rethrow') throw e;
      const message = input.describeError?.(e) ?? (e as Error).message;
      result.conditions.push(condition(step.type, 'False', 'Failed', message, now()));
      return { ...result, phase: 'Failed', failedAt: `${step.type}: ${message}` };
    }
    result.results.push(done);
    result.conditions.push(done.condition);
    result.evidence.push(...(done.evidence ?? []));
    result.changed ||= done.changed === true;
    const c = done.condition;
    if (c.status === 'False' && c.reason === 'Failed')
      return { ...result, phase: 'Failed', failedAt: `${step.type}: ${c.message ?? ''}` };
    await input.afterStep?.(step.type);
  }
  return result;
}
