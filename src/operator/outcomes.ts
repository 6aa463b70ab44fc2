/**
 * The operator's pure decisions: status conditions, the pod UID an action resolved when it
 * started (so a resumed action never acts on a replacement pod of the same name), and the dry-run
 * plan. No I/O here.
 */
import type { CarryOutResult } from '../enforcement/enforcer.js';
import { condition } from '../enforcement/enforcer.js';
import type { EventRecord } from '../enforcement/kubernetes/pod-driver.js';
import { QUARANTINE_LABEL, quarantinePolicyName } from '../enforcement/kubernetes/quarantine-policy.js';
import type {
  ActionCondition,
  ActionSpec,
  ActionStatus,
  EvidenceItem,
} from '../enforcement/security-action.js';

export { condition };
export type ConditionStatus = ActionCondition['status'];

/** What an action came to: its final status, and the Event for its pod when something changed. */
export interface Outcome {
  phase: 'Succeeded' | 'Failed';
  message: string;
  conditions: ActionCondition[];
  evidence: EvidenceItem[];
  podEvent?: EventRecord;
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

/** The enforcer's result as the operator reports it: one message, and a pod Event when it changed something. */
export function outcomeOf(spec: ActionSpec, what: string, done: CarryOutResult): Outcome {
  const { conditions, evidence } = done;
  if (done.dryRun)
    return {
      phase: 'Succeeded',
      message: `dry run: would ${done.plan ?? ''}; nothing was changed`,
      conditions,
      evidence: [],
    };
  if (done.phase === 'Failed')
    return {
      phase: 'Failed',
      message: `${spec.action} of ${what} failed at ${done.failedAt ?? ''}`,
      conditions,
      evidence,
    };
  const snapshot = conditions.find((c) => c.type === 'EvidenceCollected')?.message ?? '';
  const messages: Record<ActionSpec['action'], string[]> = {
    Quarantine: [`${what} quarantined: NetworkPolicy applied`],
    Release: [`${what} released`],
    Snapshot: [snapshot],
    TerminateGraceful: [`${what} deleted with a ${spec.gracePeriodSeconds} s grace period`, snapshot],
    Terminate: [`${what} terminated (grace period 0)`],
  };
  const skipped = conditions.filter((c) => c.status === 'Unknown').map((c) => c.message);
  const message = [...messages[spec.action], ...skipped].join('; ');
  return {
    phase: 'Succeeded',
    message,
    conditions,
    evidence,
    ...(done.changed
      ? {
          podEvent: {
            type: spec.action === 'Release' ? 'Normal' : 'Warning',
            reason: podEventReason(spec),
            message,
          },
        }
      : {}),
  };
}

function podEventReason(spec: ActionSpec): string {
  switch (spec.action) {
    case 'Quarantine':
      return 'Quarantined';
    case 'Release':
      return 'Released';
    case 'Snapshot':
      return 'Snapshotted';
    case 'TerminateGraceful':
      return 'TerminatedGracefully';
    case 'Terminate':
      return 'Terminated';
  }
}
