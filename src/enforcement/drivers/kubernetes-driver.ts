/**
 * The Kubernetes driver: the quarantine label, the deny-all NetworkPolicy, the pod's evidence
 * bundle (pod object, events, and what this node's `/proc` shows of its containers) and the pod
 * delete, all through `PodDriver`. Each step says whether it changed anything, so a resumed
 * action reports `AlreadyLabelled`, `AlreadyPresent`, … and records no second Event.
 */
import type * as k8s from '@kubernetes/client-node';
import { apiMessage, apiStatus, isTransient } from '../../kubernetes/api-errors.js';
import type { PodProcess } from '../../linux/proc-pods.js';
import type { EnforcementDriver, StepResult } from '../enforcer.js';
import { condition } from '../enforcer.js';
import { podIdentity } from '../kubernetes/pod-driver.js';
import type { PodDriver } from '../kubernetes/pod-driver.js';
import { podEvidenceItems, writePodEvidence } from '../kubernetes/pod-evidence.js';
import { QUARANTINE_LABEL, quarantinePolicyName } from '../kubernetes/quarantine-policy.js';

export interface PodSnapshotOptions {
  evidenceDir: string;
  /** The SecurityAction the bundle belongs to. */
  action: { namespace: string; name: string; uid: string };
  node: string;
  podLogsDir?: string | undefined;
  hostRoot?: string | undefined;
  maxLayerBytes?: number | undefined;
  maxLogBytes?: number | undefined;
}

export interface KubernetesDriverOptions {
  driver: PodDriver;
  pod: k8s.V1Pod;
  /** The pod's processes on this node (for the snapshot). */
  processes: () => Promise<PodProcess[]>;
  snapshot: PodSnapshotOptions;
  now: () => Date;
}

export function kubernetesDriver(options: KubernetesDriverOptions): EnforcementDriver {
  const { driver, pod, now } = options;
  const id = podIdentity(pod);
  const what = `pod ${id.namespace}/${id.name}`;
  const result = (
    type: string,
    status: 'True' | 'False',
    changed: boolean,
    reasons: [changed: string, unchanged: string],
    message: string,
  ): StepResult => ({
    condition: condition(type, status, changed ? reasons[0] : reasons[1], message, now()),
    changed,
  });

  const label = async (mode: 'set' | 'clear'): Promise<StepResult> => {
    if (mode === 'set') {
      const changed = (await driver.labelPod(pod)) === 'changed';
      return result(
        'PodLabelled',
        'True',
        changed,
        ['Labelled', 'AlreadyLabelled'],
        `${what} labelled ${QUARANTINE_LABEL}=${id.uid}`,
      );
    }
    const changed = (await driver.unlabelPod(pod)) === 'changed';
    return result(
      'PodLabelled',
      'False',
      changed,
      ['Unlabelled', 'NotLabelled'],
      `${what} carries no ${QUARANTINE_LABEL} label`,
    );
  };

  const policy = async (mode: 'set' | 'clear'): Promise<StepResult> => {
    if (mode === 'set') {
      const changed = (await driver.applyQuarantinePolicy(pod)) === 'changed';
      return result(
        'NetworkPolicyApplied',
        'True',
        changed,
        ['Created', 'AlreadyPresent'],
        `NetworkPolicy ${id.namespace}/${quarantinePolicyName(id.name)} denies all ingress and egress of this pod only`,
      );
    }
    const changed = (await driver.removeQuarantinePolicy(pod)) === 'changed';
    return result(
      'NetworkPolicyApplied',
      'False',
      changed,
      ['Deleted', 'NotPresent'],
      `no quarantine NetworkPolicy selects this pod`,
    );
  };

  const remove = async (how: 'graceful' | 'abrupt', gracePeriodSeconds: number): Promise<StepResult> => {
    const changed = (await driver.deletePod(pod, gracePeriodSeconds)) === 'changed';
    return how === 'graceful'
      ? result(
          'PodDeleted',
          'True',
          changed,
          ['GracefulDeletion', 'AlreadyDeleting'],
          `${what} deletion requested with a ${gracePeriodSeconds} s grace period`,
        )
      : result(
          'PodDeleted',
          'True',
          changed,
          ['ForceDeleted', 'AlreadyGone'],
          `${what} deleted with grace period 0`,
        );
  };

  return {
    label: (mode) => ({ type: 'PodLabelled', run: () => label(mode) }),
    isolate: (mode) => ({ type: 'NetworkPolicyApplied', run: () => policy(mode) }),
    snapshot: () => ({ type: 'EvidenceCollected', run: () => snapshotPod(options) }),
    terminate: (how, gracePeriodSeconds) => ({
      type: 'PodDeleted',
      run: () => remove(how, gracePeriodSeconds),
    }),
  };
}

/** The pod's evidence bundle: its object, recent events, and what this node shows of its containers. */
async function snapshotPod(options: KubernetesDriverOptions): Promise<StepResult> {
  const { driver, pod, now } = options;
  const s = options.snapshot;
  let events: unknown[] | { error: string };
  try {
    events = await driver.podEvents(pod);
  } catch (e) {
    if (isTransient(e)) throw e;
    events = { error: apiStatus(e) === 403 ? `forbidden: ${apiMessage(e)}` : apiMessage(e) };
  }
  const local = await options.processes();
  const bundle = await writePodEvidence({
    evidenceDir: s.evidenceDir,
    namespace: s.action.namespace,
    actionName: s.action.name,
    actionUid: s.action.uid,
    node: s.node,
    pod,
    events,
    containers: local.map((p) => ({ containerId: p.containerId, pid: p.pid })),
    ...(s.podLogsDir === undefined ? {} : { podLogsDir: s.podLogsDir }),
    ...(s.hostRoot === undefined ? {} : { hostRoot: s.hostRoot }),
    ...(s.maxLayerBytes === undefined ? {} : { maxLayerBytes: s.maxLayerBytes }),
    ...(s.maxLogBytes === undefined ? {} : { maxLogBytes: s.maxLogBytes }),
    now,
  });
  const notes = bundle.manifest.notes.length > 0 ? ` (${bundle.manifest.notes.join('; ')})` : '';
  const message = `evidence bundle of ${bundle.manifest.files.length} files at ${bundle.dir}${notes}`;
  return {
    condition: condition(
      'EvidenceCollected',
      'True',
      bundle.reused ? 'AlreadyCollected' : 'Snapshot',
      message,
      now(),
    ),
    changed: !bundle.reused,
    evidence: podEvidenceItems(bundle),
  };
}
