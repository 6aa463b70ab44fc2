/**
 * The Kubernetes enforcement driver: what the operator does to a pod through the API server —
 * read it, add or remove the quarantine label, create or delete the deny-all NetworkPolicy, delete
 * the pod with a grace period, read its recent events, record Events. Each mutation says whether
 * it changed anything, so a resumed action does not repeat work (nor its Events).
 */
import * as k8s from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { apiMessage, isConflict, isNotFound } from '../../kubernetes/api-errors.js';
import {
  QUARANTINE_LABEL,
  isQuarantinePolicyFor,
  quarantinePolicy,
  quarantinePolicyName,
} from './quarantine-policy.js';

export interface PodRef {
  namespace: string;
  name: string;
}

export type StepChange = 'changed' | 'unchanged';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
}

export interface EventRecord {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
/** Events carry at most 1 kB of message in practice (the API server truncates larger ones). */
const MAX_EVENT_MESSAGE = 1024;

export class PodDriver {
  private readonly core: k8s.CoreV1Api;
  private readonly networking: k8s.NetworkingV1Api;

  constructor(
    kubeConfig: k8s.KubeConfig,
    private readonly component: { name: string; node: string },
  ) {
    this.core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.networking = kubeConfig.makeApiClient(k8s.NetworkingV1Api);
  }

  /** The pod, or undefined when it does not exist. */
  async getPod(ref: PodRef): Promise<k8s.V1Pod | undefined> {
    try {
      return await this.core.readNamespacedPod({ name: ref.name, namespace: ref.namespace });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Adds `containment.dev/quarantine=<uid>`; the UID in the patch makes it fail on a replaced pod. */
  async labelPod(pod: k8s.V1Pod): Promise<StepChange> {
    const { uid, labels } = podIdentity(pod);
    if (labels[QUARANTINE_LABEL] === uid) return 'unchanged';
    await this.core.patchNamespacedPod(
      {
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace ?? '',
        body: { metadata: { uid, labels: { [QUARANTINE_LABEL]: uid } } },
      },
      mergePatch,
    );
    return 'changed';
  }

  async unlabelPod(pod: k8s.V1Pod): Promise<StepChange> {
    const { uid, labels } = podIdentity(pod);
    if (labels[QUARANTINE_LABEL] === undefined) return 'unchanged';
    await this.core.patchNamespacedPod(
      {
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace ?? '',
        body: { metadata: { uid, labels: { [QUARANTINE_LABEL]: null } } },
      },
      mergePatch,
    );
    return 'changed';
  }

  /**
   * Creates the deny-all policy for this pod. An existing one for the same pod UID is kept; a
   * stale one (left by an earlier pod of the same name) is replaced.
   */
  async applyQuarantinePolicy(pod: k8s.V1Pod): Promise<StepChange> {
    const { uid, name, namespace } = podIdentity(pod);
    const body = quarantinePolicy({ name, namespace, uid });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.networking.createNamespacedNetworkPolicy({ namespace, body });
        return 'changed';
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
      const existing = await this.readPolicy(namespace, quarantinePolicyName(name));
      if (existing && isQuarantinePolicyFor(existing, uid)) return 'unchanged';
      if (existing) await this.deletePolicy(namespace, quarantinePolicyName(name));
    }
    throw new Error(
      `NetworkPolicy ${namespace}/${quarantinePolicyName(name)} keeps being recreated by someone else`,
    );
  }

  /** Deletes the pod's quarantine policy; a policy selecting another pod UID is left alone. */
  async removeQuarantinePolicy(pod: k8s.V1Pod): Promise<StepChange> {
    const { uid, name, namespace } = podIdentity(pod);
    const policyName = quarantinePolicyName(name);
    const existing = await this.readPolicy(namespace, policyName);
    if (!existing || !isQuarantinePolicyFor(existing, uid)) return 'unchanged';
    return (await this.deletePolicy(namespace, policyName)) ? 'changed' : 'unchanged';
  }

  async hasQuarantinePolicy(pod: k8s.V1Pod): Promise<boolean> {
    const { uid, name, namespace } = podIdentity(pod);
    const existing = await this.readPolicy(namespace, quarantinePolicyName(name));
    return existing !== undefined && isQuarantinePolicyFor(existing, uid);
  }

  /**
   * Deletes the pod (only this UID) with the grace period. A pod already being deleted is left to
   * finish, unless grace 0 asks for it to go now.
   */
  async deletePod(pod: k8s.V1Pod, gracePeriodSeconds: number): Promise<StepChange> {
    const { uid, name, namespace } = podIdentity(pod);
    if (pod.metadata?.deletionTimestamp && gracePeriodSeconds > 0) return 'unchanged';
    try {
      await this.core.deleteNamespacedPod({
        name,
        namespace,
        gracePeriodSeconds,
        body: { gracePeriodSeconds, preconditions: { uid } },
      });
      return 'changed';
    } catch (e) {
      // Gone already (404), or the name now belongs to another pod (409 on the UID precondition).
      if (isNotFound(e) || isConflict(e)) return 'unchanged';
      throw e;
    }
  }

  /** The pod's recent events (needs `list` on events; the caller notes a refusal). */
  async podEvents(pod: k8s.V1Pod): Promise<k8s.CoreV1Event[]> {
    const { uid, namespace } = podIdentity(pod);
    const list = await this.core.listNamespacedEvent({
      namespace,
      fieldSelector: `involvedObject.uid=${uid}`,
      limit: 500,
    });
    return list.items;
  }

  /** Records a core/v1 Event; never throws (an Event lost must not fail the action). */
  async recordEvent(target: EventTarget, event: EventRecord): Promise<string | undefined> {
    const now = new Date();
    const body: k8s.CoreV1Event = {
      metadata: {
        name: `${target.name.slice(0, 200)}.${randomBytes(8).toString('hex')}`,
        namespace: target.namespace,
      },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        namespace: target.namespace,
        name: target.name,
        ...(target.uid === undefined ? {} : { uid: target.uid }),
      },
      type: event.type,
      reason: event.reason,
      message: event.message.slice(0, MAX_EVENT_MESSAGE),
      source: { component: this.component.name, host: this.component.node },
      reportingComponent: `containment.dev/${this.component.name}`,
      reportingInstance: this.component.node,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.core.createNamespacedEvent({ namespace: target.namespace, body });
      return undefined;
    } catch (e) {
      return apiMessage(e);
    }
  }

  private async readPolicy(namespace: string, name: string): Promise<k8s.V1NetworkPolicy | undefined> {
    try {
      return await this.networking.readNamespacedNetworkPolicy({ name, namespace });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async deletePolicy(namespace: string, name: string): Promise<boolean> {
    try {
      await this.networking.deleteNamespacedNetworkPolicy({ name, namespace });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }
}

export function podIdentity(pod: k8s.V1Pod): {
  uid: string;
  name: string;
  namespace: string;
  node: string | undefined;
  labels: Record<string, string>;
} {
  return {
    uid: pod.metadata?.uid ?? '',
    name: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    node: pod.spec?.nodeName,
    labels: pod.metadata?.labels ?? {},
  };
}
