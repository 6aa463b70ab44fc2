/**
 * The operator's pure decisions: status conditions, the pod UID an action resolved when it
 * started (so a resumed action never acts on a replacement pod of the same name), and the dry-run
 * plan. No I/O here.
 */
import { QUARANTINE_LABEL, quarantinePolicyName } from '../enforcement/kubernetes/quarantine-policy.js';
import type { ActionCondition, ActionSpec, ActionStatus } from '../enforcement/security-action.js';

export type ConditionStatus = ActionCondition['status'];

export function condition(
  type: string,
  status: ConditionStatus,
  reason: string,
  message: string,
  now: Date,
): ActionCondition {
  return { type, status, reason, message, lastTransitionTime: now.toISOString() };
}

export const TARGET_RESOLVED = 'TargetResolved';

/** Written with phase Running: which pod (by UID) this action acts on. */
export function targetResolved(
  pod: { namespace: string; name: string; uid: string; node: string },
  now: Date,
): ActionCondition {
  return condition(
    TARGET_RESOLVED,
    'True',
    'PodFound',
    `pod ${pod.namespace}/${pod.name} uid ${pod.uid} on node ${pod.node}`,
    now,
  );
}

/** The pod UID recorded when the action started, if any. */
export function resolvedPodUid(status: ActionStatus | undefined): string | undefined {
  const c = status?.conditions?.find((x) => x.type === TARGET_RESOLVED && x.status === 'True');
  return c?.message ? /\buid ([0-9a-f-]{32,36})\b/.exec(c.message)?.[1] : undefined;
}

export const isFinal = (status: ActionStatus | undefined): boolean =>
  status?.phase === 'Succeeded' || status?.phase === 'Failed';

/** What an action would do, in one sentence (dry run). */
export function plan(
  spec: ActionSpec,
  pod: { namespace: string; name: string; uid: string },
  localContainers: number,
  bundleDir: string,
): string {
  const what = `pod ${pod.namespace}/${pod.name}`;
  const local =
    localContainers === 0
      ? 'no process of it runs on this node, so nothing at node level'
      : `${localContainers} container(s) on this node`;
  switch (spec.action) {
    case 'Quarantine':
      return `label ${what} ${QUARANTINE_LABEL}=${pod.uid}, create the deny-all NetworkPolicy ${quarantinePolicyName(pod.name)}, and isolate with nftables ${local}`;
    case 'Release':
      return `remove the label ${QUARANTINE_LABEL} from ${what}, delete the NetworkPolicy ${quarantinePolicyName(pod.name)}, and release the nftables isolation of ${local}`;
    case 'Snapshot':
      return `write an evidence bundle of ${what} (pod object, events, processes and sockets of ${local}) to ${bundleDir}`;
    case 'TerminateGraceful':
      return `write an evidence bundle of ${what} to ${bundleDir}, then delete the pod with a ${spec.gracePeriodSeconds} s grace period`;
    case 'Terminate':
      return `kill the processes of ${local} (SIGKILL), then delete ${what} with grace period 0`;
  }
}
